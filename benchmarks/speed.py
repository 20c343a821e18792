"""Speed and memory of `denoise predict` next to RNNoise and noisereduce, on this machine's CPU.

    python benchmarks/speed.py --runs 5 | tee -a benchmarks/RESULTS.md

Each measurement is a fresh process, from its start to the output file written: a 10-second and a
10-minute 16 kHz mono recording (real speech from the bundled example, looped, with noise). Prints
the median wall time over ``--runs`` runs, the real-time factor (wall time / audio duration) and the
peak resident memory of the process. RNNoise and
noisereduce through its `reduce_noise` on the whole file, each in its own process too.
RNNoise runs through `pyrnnoise`'s frame API (its file API fails with the installed audiolab).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "data_layout" / "example" / "noisy_example.wav"

MEASURE = """
import resource, subprocess, sys, time
start = time.perf_counter()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
"""

# pyrnnoise's own file API fails with the installed audiolab ('Reader' has no 'rate'): use its
# frame API, with soxr to and from RNNoise's 48 kHz.
RNNOISE = """
import sys
import numpy as np, soundfile as sf, soxr
from pyrnnoise import rnnoise as rn
audio, rate = sf.read(sys.argv[1], dtype="float32")
x = soxr.resample(audio, rate, rn.SAMPLE_RATE)
x = (np.clip(np.pad(x, (0, -len(x) % rn.FRAME_SIZE)), -1, 1) * 32767).astype(np.int16)
state = rn.create()
y = np.concatenate([rn.process_mono_frame(state, x[i:i + rn.FRAME_SIZE])[0] for i in range(0, len(x), rn.FRAME_SIZE)])
rn.destroy(state)
out = soxr.resample(y.astype(np.float32) / 32767, rn.SAMPLE_RATE, rate)[:len(audio)]
sf.write(sys.argv[2], out, rate, subtype="PCM_16")
"""

NOISEREDUCE = """
import sys
import noisereduce, soundfile as sf
audio, rate = sf.read(sys.argv[1], dtype="float32")
sf.write(sys.argv[2], noisereduce.reduce_noise(y=audio, sr=rate), rate, subtype="PCM_16")
"""


def make_input(path: Path, seconds: float) -> None:
    speech, rate = sf.read(str(EXAMPLE), dtype="float32")
    n = int(seconds * rate)
    audio = np.tile(speech, int(np.ceil(n / len(speech))))[:n]
    sf.write(str(path), audio, rate, subtype="PCM_16")


def measure(cmd: list[str], runs: int) -> tuple[float, float]:
    """(median wall seconds, max peak RSS in MB) of ``cmd`` over ``runs`` fresh processes."""
    walls, peaks = [], []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", MEASURE, *cmd], check=True, capture_output=True, text=True)
        wall, peak = map(float, out.stdout.split())
        walls.append(wall)
        peaks.append(peak)
    return statistics.median(walls), max(peaks)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--weights", default=str(ROOT / "weights" / "denoise_16k.keras"))
    ap.add_argument("--long-minutes", type=float, default=10.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cases = [("10 s", 10.0, args.runs), (f"{args.long_minutes:g} min", args.long_minutes * 60, max(1, (args.runs + 1) // 2))]
        systems = {
            "denoise (LiteRT)": lambda i, o: [sys.executable, "-m", "denoise", "predict", i, o, "--overwrite",
                                              "--weights", args.weights, "--runtime", "lite"],
            "denoise (LiteRT, --overlap 0.5)": lambda i, o: [sys.executable, "-m", "denoise", "predict", i, o,
                                                             "--overwrite", "--weights", args.weights,
                                                             "--runtime", "lite", "--overlap", "0.5"],
            "denoise (Keras)": lambda i, o: [sys.executable, "-m", "denoise", "predict", i, o, "--overwrite",
                                             "--weights", args.weights, "--runtime", "keras"],
            "RNNoise (pyrnnoise)": lambda i, o: [sys.executable, "-c", RNNOISE, i, o],
            "noisereduce": lambda i, o: [sys.executable, "-c", NOISEREDUCE, i, o],
        }
        print(f"\n### `python benchmarks/speed.py --runs {args.runs}` on {platform.machine()}, "
              f"{os.cpu_count()} CPU cores, {time.strftime('%Y-%m-%d')}\n")
        for args_ in (["--help"], ["predict", "--help"]):
            wall, peak = measure([sys.executable, "-m", "denoise", *args_], args.runs)
            print(f"- `denoise {' '.join(args_)}`: {wall:.2f} s median, {peak:.0f} MB")
        print()
        print("| system | input | median wall s | real-time factor | peak memory MB |")
        print("|---|---|---|---|---|")
        for label, seconds, runs in cases:
            src = tmp / f"in_{int(seconds)}.wav"
            make_input(src, seconds)
            for name, cmd in systems.items():
                wall, peak = measure(cmd(str(src), str(tmp / f"out_{int(seconds)}.wav")), runs)
                print(f"| {name} | {label} 16 kHz mono | {wall:.2f} | {wall / seconds:.3f} | {peak:.0f} |", flush=True)


if __name__ == "__main__":
    main()
