"""Rumble: why brown noise (-6 dB per octave) is barely removed, and what a high-pass before
denoising does about it.

Part 1: 6 s of steady noise alone (no speech; white, pink, brown from steady_valset's generator, its
300-4000 Hz band at -45 dBFS), denoised as it is and after a 2nd-order Butterworth high-pass (as an
editor's low-cut or ``ffmpeg -af highpass=f=100``); the change per octave band, dB, measured against
the noise before the high-pass.
Part 2: the validation set's files denoised as they are and after the high-pass, scored against the
untouched clean references; paired change per file, mean +- 1.96 standard errors.

    python benchmarks/rumble.py > benchmarks/rumble.txt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import butter, sosfilt, welch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from steady_valset import coloured  # noqa: E402

from denoise.enhance import enhance_signal  # noqa: E402
from denoise.evaluate import score  # noqa: E402
from denoise.model_io import load_model  # noqa: E402

EDGES = (0, 150, 300, 600, 1200, 2400, 4800, 8000)


def high_pass(x: np.ndarray, hz: float | None, rate: int) -> np.ndarray:
    return x if hz is None else sosfilt(butter(2, hz, "high", fs=rate, output="sos"), x).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=Path("weights/denoise_16k.keras"))
    ap.add_argument("--valset", type=Path, default=Path("work_data/valset"))
    ap.add_argument("--cutoffs", default="80,100,150")
    args = ap.parse_args()
    model = load_model(args.model)
    rate = model.settings.sample_rate
    cutoffs = [None] + [float(c) for c in args.cutoffs.split(",")]
    edges = [e for e in EDGES if e <= rate // 2]
    print(f"$ python benchmarks/rumble.py --model {args.model} --cutoffs {args.cutoffs}\n")
    print("Part 1: steady noise alone, 300-4000 Hz at -45 dBFS; change per band after denoising, dB "
          "(against the noise before any high-pass)\n")
    print(f"| noise | high-pass | {' | '.join(f'{a}-{b} Hz' for a, b in zip(edges[:-1], edges[1:]))} |")
    print("|---|---|" + "---|" * (len(edges) - 1))
    for kind, slope in (("white", 0.0), ("pink", -3.0), ("brown", -6.0)):
        for hz in cutoffs:
            x = coloured(np.random.default_rng(1), rate * 6, rate, slope)
            f, p = welch(x, rate, nperseg=1024)
            band = (f >= 300) & (f <= 4000)
            x = (x * 10 ** (-45 / 20) / np.sqrt(np.sum(p[band]) * (f[1] - f[0]))).astype(np.float32)
            y = enhance_signal(high_pass(x, hz, rate), rate, model.settings, model.predict)
            f, px = welch(x[rate:], rate, nperseg=1024)
            _, py = welch(y[rate:], rate, nperseg=1024)
            cells = [10 * np.log10(py[(f >= a) & (f < b)].sum() / px[(f >= a) & (f < b)].sum())
                     for a, b in zip(edges[:-1], edges[1:])]
            print(f"| {kind} | {'none' if hz is None else f'{hz:.0f} Hz'} | {' | '.join(f'{c:.1f}' for c in cells)} |")
    print("\nPart 2: validation files with a high-pass before denoising, minus without; scored against "
          "the untouched clean references\n")
    print("| files | high-pass | PESQ | STOI | SI-SDR dB |")
    print("|---|---|---|---|---|")
    part = f"{rate // 1000}k"
    sets = {f"{part} (held-out, recorded noise)": sorted((args.valset / part / "clean").rglob("*.wav")),
            f"{part}_steady, brown": sorted((args.valset / f"{part}_steady" / "clean").rglob("brown-*.wav"))}
    for label, files in sets.items():
        plain = []
        for path in files:
            clean, file_rate = sf.read(str(path), dtype="float32")
            noisy, _ = sf.read(str(path).replace("/clean/", "/noisy/"), dtype="float32")
            plain.append((clean, noisy, score(clean, enhance_signal(noisy, file_rate, model.settings, model.predict),
                                              file_rate)))
        base = {k: np.mean([s[k] for _, _, s in plain]) for k in ("pesq", "stoi", "si_sdr")}
        print(f"| {label}, {len(files)} | none | {base['pesq']:.3f} | {base['stoi']:.3f} | {base['si_sdr']:.2f} |")
        for hz in cutoffs[1:]:
            change = {k: [] for k in base}
            for clean, noisy, before in plain:
                after = score(clean, enhance_signal(high_pass(noisy, hz, rate), rate, model.settings, model.predict),
                              rate)
                for k in change:
                    change[k].append(after[k] - before[k])
            cells = [f"{np.mean(v):+.3f} ± {1.96 * np.std(v, ddof=1) / np.sqrt(len(v)):.3f}" for v in change.values()]
            print(f"| {label}, {len(files)} | {hz:.0f} Hz | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
