"""What reading and writing phone formats and videos (through PyAV) adds to `denoise predict`.

    python benchmarks/decoded_formats.py --minutes 2 --rate 48000 --channels 2 | tee benchmarks/decoded_formats.txt

One synthetic recording (long_file.py's speech-like tones in noise) as 16-bit WAV, as AAC in .m4a,
and as the sound of an .mp4 video (H.264, 1280x720 at 25 frames a second, a moving picture); each
is denoised by the CLI in a child process into its own format (WAV -> WAV, m4a -> m4a, mp4 -> mp4:
the picture copied), best of ``--repeat`` runs, with the child's peak resident memory; and the m4a's
decoding and the encoding of the same audio timed alone. Checks that each output has the input's
length, and that the video's picture is copied unchanged.
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


def write_video(wav: Path, dest: Path, fps: int = 25) -> None:
    """``dest``: an H.264 picture (a gradient that moves, so every frame costs bits) with the WAV as
    its AAC sound track, interleaved second by second as a camera writes them."""
    import fractions

    import av
    import numpy as np
    import soundfile as sf

    with sf.SoundFile(str(wav)) as audio, av.open(str(dest), "w") as container:
        rate, layout = audio.samplerate, {1: "mono", 2: "stereo"}[audio.channels]
        video = container.add_stream("libx264", rate=fps, options={"preset": "veryfast"})
        video.width, video.height, video.pix_fmt = 1280, 720, "yuv420p"
        sound = container.add_stream("aac", rate=rate, layout=layout)
        ramp = np.add.outer(np.arange(720), np.arange(1280)).astype(np.uint8)
        done, i = 0, 0
        for block in audio.blocks(blocksize=rate, dtype="float32", always_2d=True):
            for _ in range(fps):
                shift = np.uint8(3 * i % 256)
                picture = np.stack([ramp + shift, ramp - shift, ramp ^ shift], axis=2)
                frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
                frame.pts, frame.time_base = i, fractions.Fraction(1, fps)
                i += 1
                container.mux(video.encode(frame))
            piece = av.AudioFrame.from_ndarray(np.ascontiguousarray(block.reshape(1, -1)), format="flt", layout=layout)
            piece.sample_rate, piece.pts, piece.time_base = rate, done, fractions.Fraction(1, rate)
            done += block.shape[0]
            container.mux(sound.encode(piece))
        container.mux(video.encode(None))
        container.mux(sound.encode(None))


def picture_packets(path: Path) -> list[bytes]:
    import av

    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(video=0) if p.size]


def run_predict(src: Path, out: Path, repeat: int) -> tuple[float, float]:
    """(best wall seconds, peak resident MB of the children so far) of `denoise predict src out`."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "denoise", "predict", str(src), str(out), "--overwrite"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
        audio_io.encode_av(wav, m4a)
        encode_s = time.perf_counter() - start
        start = time.perf_counter()
        decoded = audio_io.decode_to(m4a, Path(tmp) / "decoded.w64")
        decode_s = time.perf_counter() - start
        mp4 = Path(tmp) / "rec.mp4"
        write_video(wav, mp4)
        for src in (wav, m4a, mp4):
            out = src.with_name(f"out{src.suffix}")
            wall, peak = run_predict(src, out, args.repeat)
            frames = audio_io.audio_info(out)[0]
            same = "same" if frames == n else f"DIFFERS: {frames} of {n}"
            if src == mp4:
                same += ", picture " + ("copied unchanged" if picture_packets(out) == picture_packets(src) else "CHANGED")
                same += f" ({src.stat().st_size / 1e6:.0f} MB in, {out.stat().st_size / 1e6:.0f} MB out)"
            print(f"| {src.suffix[1:]} -> {out.suffix[1:]} | {wall:.1f} | {wall / (args.minutes * 60):.3f} | "
                  f"{peak:.0f} (largest so far) | {same} |")
    print(f"\nalone: encoding the WAV into .m4a {encode_s:.2f} s, decoding the .m4a {decode_s:.2f} s "
          f"({decoded[0]} samples, {'exact' if decoded[0] == n else 'LENGTH DIFFERS'})")


if __name__ == "__main__":
    main()
