"""The figure of docs/how-it-works.md: the shipped model on the bundled example, as noisy, denoised and clean spectrograms.

    python benchmarks/figure.py            # writes docs/example_spectrograms.png

Denoises data_layout/example/noisy_example.wav with the shipped model that suits its rate (as
`denoise predict` does) and stacks its spectrogram, the output's and the clean reference's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from denoise import audio as audio_io  # noqa: E402
from denoise.enhance import enhance_file  # noqa: E402
from denoise.model_io import ModelChooser  # noqa: E402
from denoise.plots import plot_before_after  # noqa: E402

EXAMPLE = ROOT / "data_layout" / "example"


def shrink_png(path: Path, colors: int = 128) -> None:
    """Re-save with a 128-colour palette: a third of the size in the repository, no visible change."""
    from PIL import Image

    tmp = path.with_name(f".{path.stem}.tmp.png")
    Image.open(path).convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT).save(tmp, optimize=True)
    tmp.replace(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--noisy", type=Path, default=EXAMPLE / "noisy_example.wav")
    ap.add_argument("--clean", type=Path, default=EXAMPLE / "clean_example.wav")
    ap.add_argument("--weights", type=Path, help="model (default: the shipped one for the file's rate)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "example_spectrograms.png")
    args = ap.parse_args()
    _, rate, _ = audio_io.audio_info(args.noisy)
    loaded = ModelChooser(args.weights).for_rate(rate)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        denoised = Path(tmp) / "denoised_example.wav"
        enhance_file(args.noisy, denoised, loaded.settings, loaded.predict)
        plot_before_after(args.noisy, denoised, args.out, clean_path=args.clean)
    shrink_png(args.out)
    print(f"Wrote {args.out} (model {loaded.path.name})")


if __name__ == "__main__":
    main()
