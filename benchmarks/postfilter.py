"""Can post-processing the model's noise estimate buy DNSMOS (background noise, BAK) without losing
PESQ? Variants of the shipped 16 kHz model's output on the validation set, per SNR band.

    python benchmarks/postfilter.py --valset work_data/valset | tee benchmarks/postfilter.txt
    python benchmarks/postfilter.py --valset work_data/trainlike --variants "shipped,two passes"

Every variant changes only what is done with the model's predicted noise share (dB per bin):
  shipped        as `denoise predict` (strength 1, floor -40 dB)
  floor -70      the most removed from any bin 70 dB instead of 40
  over-sub A     the predicted share multiplied by A (over-subtraction, strength above 1)
  two passes     the output denoised again (three passes: once more)
  spectral 2nd pass  the model run again on its own clean estimate of each block, in the spectrogram
                 domain (no inverse STFT in between), both shares removed
  max 3x3        each bin's share the largest of its 3x3 neighbourhood (time and frequency)
  mean 3x3       the share smoothed over 3x3 bins (fewer isolated bins: "musical noise")
  gate E         frames more than 30 dB below their block's loudest (estimated clean) lose E dB more
Scored as in quality.py: PESQ-WB, STOI, SI-SDR against the clean references, DNSMOS without one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.ndimage import maximum_filter, uniform_filter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from denoise import audio as audio_io  # noqa: E402
from denoise.enhance import FLOOR_DB, enhance_signal  # noqa: E402
from denoise.evaluate import dnsmos, read_pair, score  # noqa: E402
from denoise.model_io import SHIPPED_MODELS, WEIGHTS_DIR, load_model  # noqa: E402
from denoise.spectrogram import unscale_input, unscale_target  # noqa: E402

METRICS = ("pesq", "stoi", "si_sdr", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak")
PAUSE_BELOW_DB = 30.0


def gate(predict, settings, extra_db: float):
    """Frames whose estimated clean energy is far below the block's loudest frame lose extra_db more."""

    def run(x: np.ndarray) -> np.ndarray:
        y = predict(x)
        clean_db = unscale_input(x[..., 0], settings) - np.clip(unscale_target(y[..., 0], settings), 0.0, -FLOOR_DB)
        energy = 10 * np.log10(np.mean(10 ** (clean_db / 10), axis=1) + 1e-12)  # (blocks, frames)
        pause = energy < energy.max(axis=1, keepdims=True) - PAUSE_BELOW_DB
        return y + (pause[:, None, :, None] * extra_db / settings.out_scale_db).astype(np.float32)

    return run


def spectral_second_pass(predict, settings):
    """The model again on its own clean estimate of each block (dB, in the spectrogram domain)."""

    def run(x: np.ndarray) -> np.ndarray:
        first = np.clip(unscale_target(predict(x)[..., 0], settings), 0.0, -FLOOR_DB)
        again = predict(x - (first / settings.in_scale_db)[..., None].astype(np.float32))
        second = np.clip(unscale_target(again[..., 0], settings), 0.0, None)
        return ((first + second) / settings.out_scale_db)[..., None].astype(np.float32)

    return run


def variants(predict, settings) -> dict[str, tuple]:
    """name -> (predict function, passes, floor_db)."""
    return {
        "shipped": (predict, 1, FLOOR_DB),
        "floor -70": (predict, 1, -70.0),
        **{f"over-sub {a}": ((lambda x, a=a: predict(x) * a), 1, FLOOR_DB) for a in (1.3, 1.6, 2.0)},
        "over-sub 1.6, floor -70": ((lambda x: predict(x) * 1.6), 1, -70.0),
        "two passes": (predict, 2, FLOOR_DB),
        "three passes": (predict, 3, FLOOR_DB),
        "spectral 2nd pass": (spectral_second_pass(predict, settings), 1, FLOOR_DB),
        "max 3x3": ((lambda x: maximum_filter(predict(x), size=(1, 3, 3, 1), mode="nearest")), 1, FLOOR_DB),
        "mean 3x3": ((lambda x: uniform_filter(predict(x), size=(1, 3, 3, 1), mode="nearest")), 1, FLOOR_DB),
        **{f"gate {e:g}": (gate(predict, settings, e), 1, FLOOR_DB) for e in (10.0, 20.0)},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("--valset", type=Path, default=Path("work_data/valset"))
    ap.add_argument("--weights", type=Path, default=WEIGHTS_DIR / SHIPPED_MODELS[16000])
    ap.add_argument("--variants", help="comma-separated names (default: all)")
    args = ap.parse_args()
    loaded = load_model(args.weights)
    chosen = variants(loaded.predict, loaded.settings)
    if args.variants:
        unknown = set(args.variants.split(",")) - set(chosen)
        if unknown:
            raise SystemExit(f"--variants: unknown {', '.join(sorted(unknown))}; choose from {', '.join(chosen)}")
        chosen = {name: chosen[name] for name in args.variants.split(",")}
    noisy_dir, clean_dir = args.valset / "16k" / "noisy", args.valset / "16k" / "clean"
    files = audio_io.find_audio_files(noisy_dir)
    inputs = [(path.parent.name, *read_pair(clean_dir / path.relative_to(noisy_dir), path)) for path in files]
    bands = sorted({b for b, *_ in inputs}, key=lambda g: int(g[3:]))
    results = {}
    for name, (predict, passes, floor_db) in chosen.items():
        rows = []
        for band, clean, noisy, rate in inputs:
            y = noisy
            for _ in range(passes):
                y = enhance_signal(y[:, None], rate, loaded.settings, predict, floor_db=floor_db)[:, 0]
            rows.append({"band": band, **score(clean, y, rate), **dnsmos(y, rate)})
        results[name] = rows
        print(f"scored {name}", file=sys.stderr)

    def avg(rows, key):
        return float(np.nanmean([r[key] for r in rows]))

    print(f"\n## {len(files)} files of {args.valset / '16k'}, {args.weights.name}\n")
    print("| variant | PESQ-WB | STOI | SI-SDR dB | DNSMOS OVRL | DNSMOS SIG | DNSMOS BAK |")
    print("|---|---|---|---|---|---|---|")
    for name, rows in results.items():
        print(f"| {name} | " + " | ".join(f"{avg(rows, k):.3f}" if k == "stoi" else f"{avg(rows, k):.2f}"
                                          for k in METRICS) + " |")
    for key, label in (("pesq", "PESQ-WB"), ("si_sdr", "SI-SDR dB"), ("dnsmos_ovrl", "DNSMOS OVRL"),
                       ("dnsmos_bak", "DNSMOS BAK")):
        print(f"\nPer SNR band, {label}:\n")
        print("| variant | " + " | ".join(bands) + " |")
        print("|---|" + "---|" * len(bands))
        for name, rows in results.items():
            print(f"| {name} | " + " | ".join(f"{avg([r for r in rows if r['band'] == b], key):.2f}"
                                              for b in bands) + " |")


if __name__ == "__main__":
    main()
