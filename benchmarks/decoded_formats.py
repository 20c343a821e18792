"""What reading and writing phone formats (AAC in .m4a, through PyAV) adds to `denoise predict`.

    python benchmarks/decoded_formats.py --minutes 2 --rate 48000 --channels 2 | tee benchmarks/decoded_formats.txt

One synthetic recording (long_file.py's speech-like tones in noise) as 16-bit WAV and as AAC in .m4a;
each is denoised by the CLI in a child process into its own format (WAV -> WAV, m4a -> m4a), best of
``--repeat`` runs, with the child's peak resident memory; and the m4a's decoding and the encoding
of the same audio timed alone. Checks that each output has the input's length.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from long_file import write_recording  # noqa: E402

from denoise import audio as audio_io  # noqa: E402


def run_predict(src: Path, out: Path, repeat: int) -> tuple[float, float]:
    """(best wall seconds, peak resident MB of the children so far) of `denoise predict src out`."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "denoise", "predict", str(src), str(out), "--overwrite"],
                       check=True, stdout=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - start)
    return best, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=2)
    ap.add_argument("--rate", type=int, default=48000)
    ap.add_argument("--channels", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    print(f"input: {args.minutes:g} min, {args.rate} Hz, {args.channels} channel(s); "
          f"denoise predict IN OUT, shipped model, best of {args.repeat}\n")
    print("| input -> output | wall s | real-time factor | peak memory MB | output length |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        wav, m4a = Path(tmp) / "rec.wav", Path(tmp) / "rec.m4a"
        n = write_recording(wav, args.minutes, args.rate, args.channels)
        start = time.perf_counter()
        audio_io.encode_m4a(wav, m4a)
        encode_s = time.perf_counter() - start
        start = time.perf_counter()
        decoded = audio_io.decode_to(m4a, Path(tmp) / "decoded.w64")
        decode_s = time.perf_counter() - start
        for src in (wav, m4a):
            out = src.with_name(f"out{src.suffix}")
            wall, peak = run_predict(src, out, args.repeat)
            frames = audio_io.audio_info(out)[0]
            print(f"| {src.suffix[1:]} -> {out.suffix[1:]} | {wall:.1f} | {wall / (args.minutes * 60):.3f} | "
                  f"{peak:.0f} (largest so far) | {'same' if frames == n else f'DIFFERS: {frames} of {n}'} |")
    print(f"\nalone: encoding the WAV into .m4a {encode_s:.2f} s, decoding the .m4a {decode_s:.2f} s "
          f"({decoded[0]} samples, {'exact' if decoded[0] == n else 'LENGTH DIFFERS'})")


if __name__ == "__main__":
    main()
