"""Above the model's band: compare three ways of treating it, on real speech and noise.

    python benchmarks/high_band.py --valset work_data/valset --weights weights/denoise_8k.keras \
        | tee benchmarks/high_band.txt

The corpus is 16 kHz, so the test runs the 8 kHz model on the 16 kHz validation set: the band
4-8 kHz is above the model's Nyquist frequency and holds real speech (fricatives) and real noise.
Each mode denoises every file; all are scored against the clean references at 16 kHz:
  drop  removes the high band (a muffled output),
  keep  passes it through untouched (its noise too),
  gain  applies, frame by frame, the gain the model applied to its own top band (the default).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from denoise import audio as audio_io  # noqa: E402
from denoise.enhance import HIGH_BAND_MODES, enhance_signal  # noqa: E402
from denoise.evaluate import evaluate  # noqa: E402
from denoise.model_io import load_model  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--valset", type=Path, default=Path("work_data/valset"))
    ap.add_argument("--weights", type=Path, default=Path("weights/denoise_8k.keras"))
    ap.add_argument("--work", type=Path, default=Path("work_data/high_band"))
    args = ap.parse_args()
    loaded = load_model(args.weights)
    clean_dir, noisy_dir = args.valset / "16k" / "clean", args.valset / "16k" / "noisy"
    rows = {"noisy input": evaluate(clean_dir, noisy_dir, noisy_dir).averages()}
    for mode in HIGH_BAND_MODES:
        out_dir = args.work / mode
        for path in audio_io.find_audio_files(noisy_dir):
            data, rate = audio_io.read_audio(path)
            y = enhance_signal(data, rate, loaded.settings, loaded.predict, high_band=mode)
            target = out_dir / path.relative_to(noisy_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            audio_io.write_audio(target, y, rate, subtype="FLOAT")
        rows[f"high band: {mode}"] = evaluate(clean_dir, noisy_dir, out_dir).averages()
    print(f"{loaded.settings.sample_rate} Hz model ({args.weights}) on 16 kHz input, "
          f"{rows['noisy input']['files']} validation files\n")
    print("| output | PESQ-WB | STOI | SI-SDR dB |")
    print("|---|---|---|---|")
    for name, a in rows.items():
        side = "input" if name == "noisy input" else "output"
        print(f"| {name} | {a[f'pesq_{side}']:.3f} | {a[f'stoi_{side}']:.3f} | {a[f'si_sdr_{side}']:.2f} |")


if __name__ == "__main__":
    main()
