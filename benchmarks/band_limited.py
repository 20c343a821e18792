"""Band-limited speech in a 16 kHz file: how much less does the 16 kHz model remove?

    python benchmarks/band_limited.py --valset work_data/valset | tee benchmarks/band_limited.txt

The 16 kHz model was trained on wide-band speech only. Many 16 kHz files hold less: a recording
made at 11.025 or 8 kHz and resampled up, or a codec's low-pass. Each file of the 16 kHz
validation set (noisy and clean alike) is sent through a resampling round trip to each rate of
``--via`` and back to 16 kHz, which empties the band above that rate's Nyquist frequency, then
denoised with predict's defaults and scored against its own equally band-limited clean reference.
"""

from __future__ import annotations

import argparse
import sys
from math import gcd
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from denoise import audio as audio_io  # noqa: E402
from denoise.enhance import enhance_signal  # noqa: E402
from denoise.evaluate import read_pair, score  # noqa: E402
from denoise.model_io import SHIPPED_MODELS, WEIGHTS_DIR, load_model  # noqa: E402

METRICS = (("pesq", "PESQ-WB"), ("stoi", "STOI"), ("si_sdr", "SI-SDR dB"))


def round_trip(x: np.ndarray, rate: int, via: int) -> np.ndarray:
    """``x`` at ``rate`` resampled to ``via`` and back: nothing left above via / 2."""
    g = gcd(rate, via)
    down = resample_poly(x, via // g, rate // g)
    return resample_poly(down, rate // g, via // g)[: x.shape[0]].astype(np.float32)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--valset", type=Path, default=Path("work_data/valset"))
    ap.add_argument("--weights", type=Path, default=WEIGHTS_DIR / SHIPPED_MODELS[16000])
    ap.add_argument("--via", default="11025,8000", help="rates of the round trip, comma-separated")
    args = ap.parse_args(argv)
    loaded = load_model(args.weights)
    noisy_dir, clean_dir = args.valset / "16k" / "noisy", args.valset / "16k" / "clean"
    files = audio_io.find_audio_files(noisy_dir)
    rows: dict[str, list[dict]] = {}
    for label, via in [("full band (as recorded)", None)] + [
            (f"band-limited to {int(v) / 2000:.1f} kHz (round trip through {int(v)} Hz)", int(v))
            for v in args.via.split(",")]:
        rows[label] = []
        for path in files:
            clean, noisy, rate = read_pair(clean_dir / path.relative_to(noisy_dir), path)
            if via:
                clean, noisy = round_trip(clean, rate, via), round_trip(noisy, rate, via)
            out = enhance_signal(noisy[:, None], rate, loaded.settings, loaded.predict)[:, 0]
            rows[label].append({"in": score(clean, noisy, rate), "out": score(clean, out, rate)})
        print(f"scored {label}", file=sys.stderr)
    print(f"$ python benchmarks/band_limited.py --valset {args.valset} --via {args.via}\n")
    print(f"{len(files)} files of the 16 kHz validation set, {args.weights.name}, predict's defaults; "
          "input -> output (gain)\n")
    print("| speech | " + " | ".join(name for _, name in METRICS) + " |")
    print("|---|" + "---|" * len(METRICS))
    for label, results in rows.items():
        cells = []
        for key, _ in METRICS:
            a = float(np.mean([r["in"][key] for r in results]))
            b = float(np.mean([r["out"][key] for r in results]))
            digits = 3 if key == "stoi" else 2
            cells.append(f"{a:.{digits}f} -> {b:.{digits}f} ({b - a:+.{digits}f})")
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
