"""How a constant (DC) offset moves DNSMOS: the clean references of a validation part scored as they
are, with an offset of 0.2 added (speechmos as it is), and with the offset added as
``denoise.evaluate.dnsmos`` scores it (the mean taken out first).

    python benchmarks/dnsmos_offset.py --folder work_data/valset/16k/clean --every 4
"""

import argparse
from pathlib import Path

import numpy as np
from speechmos import dnsmos as model

from denoise import audio as audio_io
from denoise.evaluate import DNSMOS_RATE, dnsmos

OFFSET = 0.2


def raw(x: np.ndarray) -> tuple[float, float, float]:
    """speechmos on the signal as given (a clip shorter than one window repeated to its length)."""
    window = int(model.INPUT_LENGTH * DNSMOS_RATE)
    r = model.run(np.resize(x, window) if len(x) < window else x, DNSMOS_RATE)
    return r["sig_mos"], r["bak_mos"], r["ovrl_mos"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", type=Path, required=True, help="Clean recordings (searched recursively).")
    ap.add_argument("--every", type=int, default=1, help="Score every n-th file only.")
    args = ap.parse_args()
    files = audio_io.find_audio_files(args.folder)[:: args.every]
    rows: dict[str, list] = {"as they are": [], f"+{OFFSET} offset, raw": [], f"+{OFFSET} offset, mean taken out": []}
    for path in files:
        x = audio_io.load_mono(path, DNSMOS_RATE).astype(np.float64)
        rows["as they are"].append(raw(x))
        rows[f"+{OFFSET} offset, raw"].append(raw(x + OFFSET))
        d = dnsmos(x + OFFSET, DNSMOS_RATE)
        rows[f"+{OFFSET} offset, mean taken out"].append((d["dnsmos_sig"], d["dnsmos_bak"], d["dnsmos_ovrl"]))
    print(f"{len(files)} files of {args.folder}\n\n| input | DNSMOS SIG | BAK | OVRL |\n|---|---|---|---|")
    for key, values in rows.items():
        print(f"| {key} | " + " | ".join(f"{m:.2f}" for m in np.mean(values, axis=0)) + " |")


if __name__ == "__main__":
    main()
