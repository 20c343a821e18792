"""Split the shared corpus by speaker and by noise file, and build the held-out validation set.

    python benchmarks/corpus_split.py --corpus ../shared/corpus --out work_data

The corpus is a folder with ``manifest.csv`` beside its audio; the columns read are ``path``
(relative to the corpus; its first folder is dropped in the split), ``kind`` (speech or noise),
``speaker_or_class`` (a speaker id, or a noise class), and ``bandwidth_hz`` (the speech's 99.5 %
energy bandwidth).
Deterministic (no randomness in the split; a fixed seed for the validation mixes). Writes:
  OUT/split/train/speech_16k  training speakers whose speech really has wide-band content
                              (99.5 % energy bandwidth >= 3500 Hz, see the corpus README)
  OUT/split/train/speech_8k   all training speakers (8 kHz needs content below 4 kHz only)
  OUT/split/train/noise       training noise files
  OUT/split/val/{speech,noise} the held-out speakers and noise files
  OUT/valset/{16k,8k}/{clean,noisy}/snr+XX/CLASS-SPEAKER-N.wav   noisy/clean pairs, 4 s each
  OUT/valset/16k_reverb/...   the same pairs with the speech reverberant (a simulated room, RT60
                              0.2-1.0 s) before the noise is added; the clean side is the dry speech
  OUT/valset/{16k,8k}_high/... the same pairs with the speech played 1.19-1.5 times as fast (3-7
                              semitones higher, formants too: voices like children's) before mixing
  OUT/split.json              which file went where
Every fifth speaker (sorted by id) and every fifth noise file of each class is held out; the two
noise classes that are one long recording each are cut in time (first 70 % train, last 30 % val).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from pathlib import Path

import sys

import numpy as np
import soundfile as sf
import soxr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from denoise.mixing import shift_pitch  # noqa: E402
from denoise.reverb import reverberate, room_impulse_response  # noqa: E402

SNRS = (-5, 0, 5, 10, 15, 20)
SEGMENT_S = 4.0
SEGMENTS_PER_SPEAKER = 3
WIDEBAND_HZ = 3500


def speaker_key(name: str):
    return (not name.isdigit(), int(name) if name.isdigit() else name)


def link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.exists():
        os.symlink(src.resolve(), dst)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=Path("../shared/corpus"))
    ap.add_argument("--out", type=Path, default=Path("work_data"))
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args()
    if not (args.corpus / "manifest.csv").is_file():
        raise SystemExit(f"{args.corpus / 'manifest.csv'}: not found; --corpus names the shared corpus folder")
    rows = list(csv.DictReader(open(args.corpus / "manifest.csv")))
    speech = [r for r in rows if r["kind"] == "speech"]
    noise = [r for r in rows if r["kind"] == "noise"]

    speakers = sorted({r["speaker_or_class"] for r in speech}, key=speaker_key)
    val_speakers = {s for i, s in enumerate(speakers) if i % 5 == 0}
    split = {"val_speakers": sorted(val_speakers, key=speaker_key), "train": {}, "val": {}}
    split_dir = args.out / "split"
    for r in speech:
        src = args.corpus / r["path"]
        rel = Path(*Path(r["path"]).parts[1:])
        if r["speaker_or_class"] in val_speakers:
            link(src, split_dir / "val" / "speech" / rel)
            split["val"].setdefault("speech", []).append(r["path"])
        else:
            link(src, split_dir / "train" / "speech_8k" / rel)
            split["train"].setdefault("speech_8k", []).append(r["path"])
            if int(r["bandwidth_hz"]) >= WIDEBAND_HZ:
                link(src, split_dir / "train" / "speech_16k" / rel)
                split["train"].setdefault("speech_16k", []).append(r["path"])

    by_class: dict[str, list[dict]] = {}
    for r in noise:
        by_class.setdefault(r["speaker_or_class"], []).append(r)
    for cls, files in sorted(by_class.items()):
        files.sort(key=lambda r: r["path"])
        if len(files) == 1:  # one long recording: cut in time
            audio, rate = sf.read(str(args.corpus / files[0]["path"]), dtype="float32")
            cut = int(0.7 * len(audio))
            for part, piece in (("train", audio[:cut]), ("val", audio[cut:])):
                dst = split_dir / part / "noise" / cls / f"{cls}_{part}.flac"
                dst.parent.mkdir(parents=True, exist_ok=True)
                sf.write(str(dst), piece, rate)
                split[part].setdefault("noise", []).append(f"{files[0]['path']} ({part} part)")
            continue
        for i, r in enumerate(files):
            part = "val" if i % 5 == 0 else "train"
            link(args.corpus / r["path"], split_dir / part / "noise" / cls / Path(r["path"]).name)
            split[part].setdefault("noise", []).append(r["path"])

    make_valset(split_dir / "val", args.out / "valset", args.seed)
    (args.out / "split.json").write_text(json.dumps(split, indent=1) + "\n")
    for part in ("train", "val"):
        print(part, {k: len(v) for k, v in split[part].items()})


def write_pair(out: Path, part: str, name: str, pair: tuple[np.ndarray, np.ndarray], rate: int,
               rates: tuple[int, ...]) -> None:
    """Write (clean, noisy) at ``rate`` Hz as 16-bit files under OUT/{N}k{part}/{clean,noisy}/name, one set per rate."""
    for sr in rates:
        for kind, signal in zip(("clean", "noisy"), pair):
            dst = out / f"{sr // 1000}k{part}" / kind / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            data = signal if sr == rate else soxr.resample(signal, rate, sr, quality="HQ")
            sf.write(str(dst), data.astype(np.float32), sr, subtype="PCM_16")


def make_valset(val_dir: Path, out: Path, seed: int) -> None:
    """4-second noisy/clean pairs of held-out speakers and noises at each SNR band, 16 and 8 kHz."""
    rng = np.random.default_rng(seed)
    room_rng = np.random.default_rng(seed + 1)  # its own stream: the dry pairs stay as they were
    speed_rng = np.random.default_rng(seed + 2)  # and so on for each added part
    rate = 16000
    seg = int(SEGMENT_S * rate)
    noises = sorted((val_dir / "noise").rglob("*.flac"))
    voices = sorted((val_dir / "speech").rglob("*.flac"))
    count = 0
    for voice_path in voices:
        voice, vr = sf.read(str(voice_path), dtype="float32")
        assert vr == rate
        for k in range(SEGMENTS_PER_SPEAKER):
            start = int(0.3 * rate) + k * seg
            clean = voice[start : start + seg]
            if len(clean) < seg:
                break
            noise_path = noises[rng.integers(len(noises))]
            noise, _ = sf.read(str(noise_path), dtype="float32")
            noise = np.tile(noise, int(np.ceil(2 * seg / len(noise))))
            offset = rng.integers(len(noise) - seg)
            noise = noise[offset : offset + seg]
            snr = SNRS[count % len(SNRS)]
            rms = lambda x: np.sqrt(np.mean(np.square(x, dtype=np.float64)))  # noqa: E731
            noise = noise * rms(clean) / (rms(noise) * 10 ** (snr / 20))
            noisy = clean + noise
            gain = 10 ** (rng.uniform(-32, -20) / 20) / rms(noisy)
            gain = min(gain, 0.9 / np.max(np.abs(noisy)))
            name = f"snr{snr:+03d}/{noise_path.parent.name}-{voice_path.parent.name}-{k}.wav"
            write_pair(out, "", name, (clean * gain, noisy * gain), rate, (16000, 8000))
            rir = room_impulse_response(room_rng, rate, float(room_rng.uniform(0.2, 1.0)))
            wet = reverberate(voice, start, seg, rir)
            noisy_wet = wet + noise * rms(wet) / rms(clean)  # the same SNR against the reverberant voice
            gain_wet = min(gain * rms(noisy) / rms(noisy_wet), 0.9 / np.max(np.abs(noisy_wet)))
            write_pair(out, "_reverb", name, (clean * gain_wet, noisy_wet * gain_wet), rate, (16000,))
            high = shift_pitch(voice, start, seg, float(speed_rng.uniform(3.0, 7.0)))
            if high is not None:
                noisy_high = high + noise * rms(high) / rms(clean)  # the same SNR against the faster voice
                gain_high = min(gain * rms(noisy) / rms(noisy_high), 0.9 / np.max(np.abs(noisy_high)))
                write_pair(out, "_high", name, (high * gain_high, noisy_high * gain_high), rate, (16000, 8000))
            count += 1
    print(f"validation set: {count} pairs of {SEGMENT_S:.0f} s in {out}")


if __name__ == "__main__":
    main()
