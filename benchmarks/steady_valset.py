"""A validation part of steady noise: the held-out clean speech of the validation set under room
tone (white, pink and brown noise) and mains hum, at the same SNR bands and levels, at 16 and 8 kHz.

Recorded noise clips, the corpus's and the validation set's, are rarely steady, while the noise
under most podcasts and lectures is: a room's air conditioning, a fan, a computer, hum from a
mains-powered amplifier. The noise is made here by its own generator (not data creation's), so a
model trained with ``--steady-share`` is not scored on the noise it was trained on.

    python benchmarks/steady_valset.py --valset work_data/valset     # writes 16k_steady and 8k_steady
    python benchmarks/quality.py --valset work_data/valset --rates 16k_steady,8k_steady

File names start with the noise ("pink-..."), so quality.py's per-noise-class table has one row each.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus_split import write_pair  # noqa: E402

KINDS = ("white", "pink", "brown", "hum")


def coloured(rng: np.random.Generator, n: int, rate: int, slope_db_per_octave: float) -> np.ndarray:
    """Gaussian noise whose power changes by ``slope_db_per_octave``, rolled off below 40 Hz."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / rate)
    spectrum *= (np.maximum(freqs, 40.0) / 1000.0) ** (slope_db_per_octave / 6.0206)
    spectrum *= 1.0 / np.sqrt(1.0 + (40.0 / np.maximum(freqs, 1.0)) ** 4)  # a 40 Hz high-pass, 2nd order
    return np.fft.irfft(spectrum, n)


def steady(kind: str, rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    """``n`` samples of one kind of steady noise."""
    if kind != "hum":
        return coloured(rng, n, rate, {"white": 0.0, "pink": -3.0, "brown": -6.0}[kind])
    t = np.arange(n) / rate
    mains = float(rng.choice([50.0, 60.0]))
    # A buzz: odd harmonics strongest, falling about 3 dB each; a room's pink floor 25 dB under it.
    hum = sum((1.0 if k % 2 else 0.5) * 10 ** (-3.0 * (k - 1) / 20) * np.sin(2 * np.pi * k * mains * t + rng.uniform(0, 6.3))
              for k in range(1, 13))
    floor = coloured(rng, n, rate, -3.0)
    return hum / np.std(hum) + floor / np.std(floor) * 10 ** (-25 / 20)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--valset", type=Path, default=Path("work_data/valset"))
    ap.add_argument("--seed", type=int, default=23)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    clean_files = sorted((args.valset / "16k" / "clean").rglob("*.wav"))
    if not clean_files:
        sys.exit(f"{args.valset}/16k/clean: no validation set (run benchmarks/corpus_split.py first)")
    for i, path in enumerate(clean_files):
        clean, rate = sf.read(str(path), dtype="float64")
        kind = KINDS[i % len(KINDS)]
        snr = int(path.parent.name.removeprefix("snr"))
        noise = steady(kind, rng, len(clean), rate)
        rms = lambda x: np.sqrt(np.mean(np.square(x)))  # noqa: E731
        noise *= rms(clean) / (rms(noise) * 10 ** (snr / 20))
        noisy = clean + noise
        gain = min(1.0, 0.9 / np.max(np.abs(noisy)))  # the clean file keeps the validation set's level
        name = f"{path.parent.name}/{kind}-{path.name.split('-', 1)[1]}"
        write_pair(args.valset, "_steady", name, (clean * gain, noisy * gain), rate, (16000, 8000))
    print(f"{len(clean_files)} pairs in {args.valset}/16k_steady and 8k_steady ({', '.join(KINDS)})")


if __name__ == "__main__":
    main()
