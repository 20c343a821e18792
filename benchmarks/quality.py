"""Side-by-side quality on the held-out validation set: shipped models, noisereduce, RNNoise.

    python benchmarks/corpus_split.py --corpus ../shared/corpus --out work_data   # once
    python benchmarks/quality.py --valset work_data/valset | tee benchmarks/quality.txt

Needs the peers (see benchmarks/requirements.txt). Each system denoises every noisy file of the
validation set (16 kHz and 8 kHz parts); all are scored by ``denoise.evaluate`` against the clean
references: PESQ (wide-band at 16 kHz, narrow-band at 8 kHz), STOI, SI-SDR. Prints one table per
rate (averages) and one per SNR band.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from denoise import audio as audio_io  # noqa: E402
from denoise.enhance import enhance_signal  # noqa: E402
from denoise.evaluate import evaluate  # noqa: E402
from denoise.model_io import SHIPPED_MODELS, WEIGHTS_DIR, load_model  # noqa: E402


def rnnoise(audio: np.ndarray, rate: int) -> np.ndarray:
    """RNNoise (48 kHz, 10 ms frames) with its output re-aligned to the input."""
    from pyrnnoise import rnnoise as rn

    x = audio_io.resample(audio, rate, rn.SAMPLE_RATE)
    n = len(x)
    x = np.pad(x, (0, rn.FRAME_SIZE * (int(np.ceil(n / rn.FRAME_SIZE)) + 2) - n))
    pcm = (np.clip(x, -1.0, 1.0) * 32767).astype(np.int16)  # RNNoise takes 16-bit frames
    state = rn.create()
    try:
        frames = [rn.process_mono_frame(state, pcm[i : i + rn.FRAME_SIZE])[0]
                  for i in range(0, len(pcm), rn.FRAME_SIZE)]
    finally:
        rn.destroy(state)
    y = np.concatenate(frames).astype(np.float32) / 32767.0
    # RNNoise delays its output by a frame's overlap; find the lag by cross-correlation.
    lags = range(0, 2 * rn.FRAME_SIZE + 1)
    best = max(lags, key=lambda lag: float(np.dot(x[: n], y[lag : lag + n])))
    return audio_io.resample(y[best : best + n], rn.SAMPLE_RATE, rate)[: len(audio)]


def noisereduce_fn(audio: np.ndarray, rate: int) -> np.ndarray:
    import noisereduce

    return noisereduce.reduce_noise(y=audio, sr=rate).astype(np.float32)


def ours(weights: Path):
    loaded = load_model(weights)

    def run(audio: np.ndarray, rate: int) -> np.ndarray:
        return enhance_signal(audio[:, None], rate, loaded.settings, loaded.predict)[:, 0]

    return run


def run_system(fn, noisy_dir: Path, out_dir: Path) -> float:
    """Denoise every file; return the real-time factor."""
    shutil.rmtree(out_dir, ignore_errors=True)
    spent = seconds = 0.0
    for path in audio_io.find_audio_files(noisy_dir):
        data, rate = audio_io.read_audio(path)
        x = audio_io.to_mono(data)
        start = time.perf_counter()
        y = fn(x, rate)
        spent += time.perf_counter() - start
        seconds += len(x) / rate
        target = out_dir / path.relative_to(noisy_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        audio_io.write_audio(target, y, rate, subtype="FLOAT")
    return spent / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--valset", type=Path, default=Path("work_data/valset"))
    ap.add_argument("--weights-dir", type=Path, default=WEIGHTS_DIR)
    ap.add_argument("--work", type=Path, default=Path("work_data/bench"))
    ap.add_argument("--rates", default="16k,8k")
    args = ap.parse_args()
    for part in args.rates.split(","):
        rate = int(part.rstrip("k")) * 1000
        clean_dir, noisy_dir = args.valset / part / "clean", args.valset / part / "noisy"
        systems = {"denoise (ours)": ours(args.weights_dir / SHIPPED_MODELS[rate]),
                   "RNNoise": rnnoise, "noisereduce": noisereduce_fn}
        reports = {}
        rtf = {}
        reports["noisy input"] = evaluate(clean_dir, noisy_dir, noisy_dir)
        for name, fn in systems.items():
            out = args.work / part / name.split()[0]
            rtf[name] = run_system(fn, noisy_dir, out)
            reports[name] = evaluate(clean_dir, noisy_dir, out)
        pesq = "PESQ-WB" if rate == 16000 else "PESQ-NB"
        n = len(reports["noisy input"].rows)
        print(f"\n## {part} validation set: {n} files of 4 s, SNR -5..20 dB, held-out speakers and noises\n")
        print(f"| system | {pesq} | STOI | SI-SDR dB | real-time factor |")
        print("|---|---|---|---|---|")
        for name, rep in reports.items():
            a = rep.averages()
            speed = f"{rtf[name]:.3f}" if name in rtf else ""
            print(f"| {name} | {a['pesq_output']:.2f} | {a['stoi_output']:.3f} | {a['si_sdr_output']:.1f} | {speed} |")
        print(f"\nPer SNR band ({pesq} / SI-SDR dB):\n")
        bands = sorted(reports["noisy input"].groups(), key=lambda g: int(g[3:]))
        print("| system | " + " | ".join(bands) + " |")
        print("|---|" + "---|" * len(bands))
        for name, rep in reports.items():
            g = rep.groups()
            cells = [f"{g[b]['pesq_output']:.2f} / {g[b]['si_sdr_output']:.1f}" for b in bands]
            print(f"| {name} | " + " | ".join(cells) + " |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
