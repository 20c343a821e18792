"""Quiet, loud and offset recordings: what predict's level matching and DC-offset removal are worth.

    python benchmarks/level.py --valset work_data/valset | tee benchmarks/level.txt

The network reads magnitudes in dB relative to full scale and was trained on mixtures at -35 to
-15 dBFS; the validation set lies at -34 to -20. Each file of a validation part (noisy and clean
alike) is played ``--gains`` dB quieter or louder, denoised with predict's defaults with and without
level matching, and scored against its clean reference (PESQ, STOI and SI-SDR ignore the level;
every output is scored less its mean, as the offsets below need).
The last column is the -5 dB band's SI-SDR, where the level changes the most. ``--offsets`` adds a
constant (DC) offset to each noisy file at its own level, as a cheap interface does; prediction takes
it out before the network and puts it back.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from denoise import audio as audio_io  # noqa: E402
from denoise.enhance import enhance_signal  # noqa: E402
from denoise.evaluate import pesq_rate, read_pair, score  # noqa: E402
from denoise.model_io import SHIPPED_MODELS, WEIGHTS_DIR, load_model  # noqa: E402

RATES = {"16k": 16000, "8k": 8000}


def run_part(valset: Path, part: str, gains: list[float], offsets: list[float], weights: Path | None) -> list[str]:
    """Markdown rows for one validation part: each gain with and without level matching, then each offset."""
    rate_hz = RATES[part]
    model_path = weights or WEIGHTS_DIR / SHIPPED_MODELS[rate_hz]
    loaded = load_model(model_path)
    noisy_dir, clean_dir = valset / part / "noisy", valset / part / "clean"
    files = audio_io.find_audio_files(noisy_dir)
    if not files:
        raise SystemExit(f"{noisy_dir}: no audio files")
    pairs = [read_pair(clean_dir / p.relative_to(noisy_dir), p) + (p.parent.name,) for p in files]
    levels = [audio_io.rms_db(noisy) for _, noisy, _, _ in pairs]
    metric = "PESQ-" + pesq_rate(rate_hz)[1].upper()
    rows = [f"## {part}: {len(files)} files of {valset / part}, {model_path.name}, predict's defaults",
            "", f"| gain (levels) | level matching | {metric} | STOI | SI-SDR dB | -5 dB band SI-SDR |",
            "|---|---|---|---|---|---|"]
    def cells(change, **options) -> str:
        """Each file changed by ``change``, denoised and scored (output less its mean): the row's last cells."""
        results, low = [], []
        for clean, noisy, rate, band in pairs:
            out = enhance_signal(change(noisy), rate, loaded.settings, loaded.predict, **options)
            results.append(score(clean, out - np.mean(out), rate))
            if band == "snr-05":
                low.append(results[-1]["si_sdr"])
        mean = {k: float(np.nanmean([r[k] for r in results])) for k in ("pesq", "stoi", "si_sdr")}
        return f"| {mean['pesq']:.3f} | {mean['stoi']:.3f} | {mean['si_sdr']:.2f} | {np.mean(low):.2f} |"

    for gain in gains:
        factor = np.float32(10 ** (gain / 20))
        span = f"{gain:+.0f} dB ({min(levels) + gain:.0f}..{max(levels) + gain:.0f} dBFS)"
        for match in ((True,) if gain == 0 else (False, True)):
            rows.append(f"| {span} | {'on' if match else 'off'}{' (the same at this level)' if gain == 0 else ''} "
                        + cells(lambda x: x * factor, match_level=match))
            print(f"{part} {gain:+.0f} dB match={match}: done", file=sys.stderr)
    for offset in offsets:
        rows.append(f"| DC offset {offset:+g} ({20 * np.log10(abs(offset)):.0f} dBFS) | on "
                    + cells(lambda x: x + np.float32(offset)))
        print(f"{part} offset {offset:+g}: done", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--valset", type=Path, default=Path("work_data/valset"))
    ap.add_argument("--parts", default="16k,8k", help="validation parts, comma-separated (16k, 8k)")
    ap.add_argument("--gains", default="-30,-20,0,10", help="dB added to every file, comma-separated")
    ap.add_argument("--offsets", default="0.01,0.03,0.1", help="DC offsets added to every file, comma-separated "
                                                              "(empty: none)")
    ap.add_argument("--weights", type=Path, help="model (default: the shipped one for the part's rate)")
    args = ap.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in parts if p not in RATES]
    if unknown:
        raise SystemExit(f"--parts: unknown part {unknown[0]!r} (choose from {', '.join(RATES)})")
    gains = [float(g) for g in args.gains.split(",") if g.strip()]
    offsets = [float(o) for o in args.offsets.split(",") if o.strip()]
    print(f"$ python benchmarks/level.py --valset {args.valset} --parts {args.parts} --gains {args.gains}"
          f" --offsets {args.offsets}"
          + (f" --weights {args.weights}" if args.weights else "") + "\n")
    for part in parts:
        print("\n".join(run_part(args.valset, part, gains, offsets, args.weights)) + "\n")


if __name__ == "__main__":
    main()
