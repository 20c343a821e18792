"""How a constant (DC) offset moves DNSMOS: the clean references of a validation part scored as they
are, with an offset of 0.2 added (speechmos as it is), and with the offset added as
``denoise.evaluate.dnsmos`` scores it (an offset over -60 dBFS taken out first). With ``--tiny``,
also a folder of outputs with digital silence (RNNoise's) as they are and with 1e-5 added: why
``dnsmos`` leaves smaller offsets and digital silence alone.

    python benchmarks/dnsmos_offset.py --folder work_data/valset/16k/clean --every 4 \
        --tiny work_data/bench/16k/RNNoise
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
    ap.add_argument("--tiny", type=Path, help="Also score these files as they are and with 1e-5 added.")
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
    if args.tiny:
        tiny = audio_io.find_audio_files(args.tiny)[:: args.every]
        pairs = [(raw(x), raw(x + 1e-5)) for x in (audio_io.load_mono(p, DNSMOS_RATE).astype(np.float64) for p in tiny)]
        silent = sum(bool(np.any(audio_io.load_mono(p, DNSMOS_RATE) == 0)) for p in tiny)
        print(f"\n{len(tiny)} files of {args.tiny} ({silent} with digital silence)\n\n| input | DNSMOS SIG | BAK | OVRL |\n|---|---|---|---|")
        for i, key in enumerate(("as they are", "+1e-5 (-100 dBFS)")):
            print(f"| {key} | " + " | ".join(f"{m:.2f}" for m in np.mean([p[i] for p in pairs], axis=0)) + " |")


if __name__ == "__main__":
    main()
