"""Peak memory and time of `denoise predict` on a long multichannel recording.

    python benchmarks/long_file.py --minutes 60 --rate 44100 --channels 2 | tee benchmarks/long_file.txt

Writes a synthetic recording (speech-like tones in noise, 16-bit WAV, streamed to disk so this
script itself stays small), denoises it with the CLI in a child process and reports the child's
peak resident memory (ru_maxrss), wall time and real-time factor, and checks the output's length.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf


def write_recording(path: Path, minutes: float, rate: int, channels: int) -> int:
    rng = np.random.default_rng(0)
    total = int(minutes * 60 * rate)
    with sf.SoundFile(str(path), "w", rate, channels, subtype="PCM_16") as f:
        for start in range(0, total, rate * 10):
            n = min(rate * 10, total - start)
            t = (start + np.arange(n)) / rate
            voice = 0.2 * np.sin(2 * np.pi * 180 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
            f.write((voice[:, None] + 0.05 * rng.standard_normal((n, channels))).astype(np.float32))
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--rate", type=int, default=44100)
    ap.add_argument("--channels", type=int, default=2)
    ap.add_argument("--weights", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "long.wav", Path(tmp) / "long_denoised.wav"
        n = write_recording(src, args.minutes, args.rate, args.channels)
        cmd = [sys.executable, "-m", "denoise", "predict", str(src), str(out)]
        if args.weights:
            cmd += ["--weights", args.weights]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        info = sf.info(str(out))
    print(f"command: {' '.join(Path(c).name if i == 0 else c for i, c in enumerate(cmd))}")
    print(f"input: {args.minutes:g} min, {args.rate} Hz, {args.channels} channel(s), 16-bit WAV")
    print(f"output: {info.frames} samples x {info.channels} channel(s) (input {n}): "
          f"{'same length' if info.frames == n else 'LENGTH DIFFERS'}")
    print(f"wall time {wall:.1f} s, real-time factor {wall / (args.minutes * 60):.3f}, "
          f"peak resident memory {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
