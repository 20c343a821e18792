"""Would cleaner training targets buy DNSMOS? The validation set's clean references, denoised once more.

    python benchmarks/reference_cleaning.py --valset work_data/valset --part 16k | tee benchmarks/reference_cleaning.txt

DeepFilterNet3's DNSMOS BAK (background) on noisy input is above that of the clean references
themselves: it removes the recordings' own background too, which a model trained to give back the
reference learns to keep. If so, training toward references with their background removed could close
the DNSMOS gap. This estimates what that could give: each clean reference of a part denoised by
DeepFilterNet3, by noisereduce (stationary, 90 %) and by the shipped model, scored with DNSMOS and
against the original reference (PESQ, SI-SDR): what a model that learnt those targets perfectly
would return on clean input. In brackets: 95 % intervals of the paired differences from the
reference, over the files where both scores are finite.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from quality import deepfilternet3, ours  # noqa: E402

from denoise import audio as audio_io  # noqa: E402
from denoise.evaluate import dnsmos, score  # noqa: E402
from denoise.model_io import SHIPPED_MODELS, WEIGHTS_DIR  # noqa: E402

COLUMNS = ("ovrl", "sig", "bak", "pesq", "si_sdr")


def noisereduce_stationary(audio: np.ndarray, rate: int) -> np.ndarray:
    """noisereduce's stationary mode, 90 % of the estimated noise taken out."""
    import noisereduce

    return noisereduce.reduce_noise(y=audio, sr=rate, stationary=True, prop_decrease=0.9).astype(np.float32)


def scores(reference: np.ndarray, y: np.ndarray, rate: int) -> dict[str, float]:
    """DNSMOS of ``y``; PESQ and SI-SDR of ``y`` against the original reference."""
    s, metrics = dnsmos(y, rate), score(reference, y, rate)
    return {"ovrl": s["dnsmos_ovrl"], "sig": s["dnsmos_sig"], "bak": s["dnsmos_bak"],
            "pesq": metrics["pesq"], "si_sdr": metrics["si_sdr"]}


def cell(values: list[float], base: list[float] | None, digits: int) -> str:
    """Mean over the finite values; with ``base``, the paired difference and its 95 % interval."""
    v = np.array(values, dtype=float)
    if base is None:
        finite = v[np.isfinite(v)]
        note = "" if len(finite) == len(v) else f" ({len(finite)} of {len(v)} files)"
        return (f"{finite.mean():.{digits}f}" if len(finite) else "n/a") + note
    b = np.array(base, dtype=float)
    both = np.isfinite(v) & np.isfinite(b)
    if both.sum() < 2:
        return "n/a"
    diffs = v[both] - b[both]
    half = 1.96 * diffs.std(ddof=1) / np.sqrt(len(diffs))
    note = "" if both.all() else f", {int(both.sum())} of {len(v)} files"
    return f"{v[both].mean():.{digits}f} ({diffs.mean():+.{digits}f} ± {half:.{digits}f}{note})"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--valset", type=Path, required=True, help="benchmarks/corpus_split.py's validation set")
    ap.add_argument("--part", default="16k", help="a part of it with clean/ (default 16k)")
    args = ap.parse_args(argv)
    clean_dir = args.valset / args.part / "clean"
    files = audio_io.find_audio_files(clean_dir)
    if not files:
        sys.exit(f"{clean_dir}: no audio files")
    rate = audio_io.read_audio(files[0])[1]
    if rate not in SHIPPED_MODELS:
        sys.exit(f"{files[0]}: {rate} Hz, and no model is shipped for it")
    systems: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
        "reference itself": lambda x, r: x,
        "DeepFilterNet3 (reference)": deepfilternet3,
        "noisereduce, stationary (reference)": noisereduce_stationary,
        "denoise, shipped (reference)": ours(WEIGHTS_DIR / SHIPPED_MODELS[rate]),
    }
    table: dict[str, list[dict[str, float]]] = {name: [] for name in systems}
    for path in files:
        data, file_rate = audio_io.read_audio(path)
        if file_rate != rate:
            sys.exit(f"{path}: {file_rate} Hz, where {files[0].name} is {rate} Hz")
        x = audio_io.to_mono(data)
        for name, fn in systems.items():
            table[name].append(scores(x, fn(x, rate), rate))
    print(f"\n## {len(files)} clean references of {args.part} ({clean_dir}), each denoised once more\n")
    print("Means; in brackets, the difference from the reference itself, file by file, with a 95 % interval.\n")
    print("| system | DNSMOS OVRL | DNSMOS SIG | DNSMOS BAK | PESQ vs reference | SI-SDR dB vs reference |")
    print("|---|---|---|---|---|---|")
    base = table["reference itself"]
    for name, rows in table.items():
        cells = []
        for key in COLUMNS:
            values = [r[key] for r in rows]
            if name == "reference itself" and key == "si_sdr":
                cells.append("exact")
            elif name == "reference itself" or key in ("pesq", "si_sdr"):
                cells.append(cell(values, None, 1 if key == "si_sdr" else 3))
            else:
                cells.append(cell(values, [r[key] for r in base], 3))
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
