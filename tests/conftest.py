"""Shared fixtures: a seeded rng, tiny settings, and a tiny synthetic corpus of speech-like tones and noise."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import soundfile as sf

from denoise.settings import ModelSettings, Settings

# 16 bins x 16 frames: tiny spectrograms so trainings take seconds.
TINY = Settings(sample_rate=8000, frame_length=128, n_fft=31, hop_length=8)
TINY_MODEL = ModelSettings(base_filters=4, depth=2)
TINY_CLI = ["--sample-rate", "8000", "--frame-length", "128", "--n-fft", "31", "--hop-length", "8"]
BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def benchmark_script(name: str) -> ModuleType:
    """A script of benchmarks/ loaded as a module (they are not a package), so tests call its functions."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def tiny() -> Settings:
    return TINY


def speech_like(rng: np.random.Generator, seconds: float, rate: int) -> np.ndarray:
    """A voiced-speech stand-in: a gliding harmonic tone with syllable-rate amplitude modulation."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = rng.uniform(100, 220) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 6))
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6)))
    return (0.2 * voiced * envelope).astype(np.float32)


def write(path: Path, audio: np.ndarray, rate: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, rate)
    return path


def write_encoded(path: Path, audio: np.ndarray, rate: int, codec: str = "aac", fmt: str | None = None,
                  sample_format: str | None = None, frame: int = 1024) -> Path:
    """Encode audio (samples[, channels]) with PyAV, timestamped as recorders do (so an m4a records
    AAC's encoder delay): AAC in .m4a as phones record, Opus in .webm, ALAC (``sample_format``
    's32p': 24-bit), raw ADTS (``fmt='adts'``)..."""
    import fractions

    import av

    audio = np.asarray(audio, np.float32).reshape(len(audio), -1)
    path.parent.mkdir(parents=True, exist_ok=True)
    layout = {1: "mono", 2: "stereo"}[audio.shape[1]]
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate, layout=layout)
        if sample_format:
            stream.format = sample_format
        for i in range(0, len(audio), frame):
            piece = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio[i:i + frame].T), format="fltp", layout=layout)
            piece.sample_rate, piece.pts, piece.time_base = rate, i, fractions.Fraction(1, rate)
            for packet in stream.encode(piece):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def write_video(path: Path, audio: np.ndarray, rate: int, video_codec: str = "mpeg4", audio_codec: str = "aac",
                sound_start: float = 0.0, fps: int = 25, origin: float = 0.0, sound_title: str | None = None) -> Path:
    """A small video: a picture that changes every frame (so its packets differ), and ``audio``
    (samples[, channels]) as its sound track, starting ``sound_start`` seconds after the picture
    (before it if negative); the earlier of the two at ``origin`` seconds on the file's timeline."""
    import fractions

    import av

    audio = np.asarray(audio, np.float32).reshape(len(audio), -1)
    path.parent.mkdir(parents=True, exist_ok=True)
    layout = {1: "mono", 2: "stereo", 6: "5.1"}[audio.shape[1]]
    with av.open(str(path), "w") as container:
        video = container.add_stream(video_codec, rate=fps)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        sound = container.add_stream(audio_codec, rate=rate, layout=layout)
        if sound_title:  # a track's name, as Matroska and mp4 hold it ("Stereo", "Commentary")
            sound.metadata["title"] = sound_title
        if audio_codec == "vorbis":  # FFmpeg's own Vorbis encoder, as browsers' WebM once held
            sound.codec_context.options = {"strict": "experimental"}
        picture_at = origin + max(0.0, -sound_start)
        for i in range(int((max(sound_start, 0.0) + len(audio) / rate) * fps)):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), (i * 7) % 256, np.uint8), format="rgb24")
            frame.pts, frame.time_base = round(picture_at * fps) + i, fractions.Fraction(1, fps)
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        offset = round((origin + max(sound_start, 0.0)) * rate)
        planar = sound.codec_context.format.is_planar
        for i in range(0, len(audio), 960):
            samples = audio[i:i + 960].T if planar else audio[i:i + 960].reshape(1, -1)
            if sound.codec_context.format.name == "s16":
                samples = (samples * 32767).astype(np.int16)
            piece = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format=sound.codec_context.format.name,
                                               layout=layout)
            piece.sample_rate, piece.pts, piece.time_base = rate, offset + i, fractions.Fraction(1, rate)
            for packet in sound.encode(piece):
                container.mux(packet)
        for packet in sound.encode(None):
            container.mux(packet)
    return path


@pytest.fixture
def corpus(tmp_path: Path, rng: np.random.Generator) -> tuple[Path, Path]:
    """(voice_dir, noise_dir): nested speech-like files at 16 kHz (wav, flac) and noise files (wav, ogg)."""
    voice_dir, noise_dir = tmp_path / "voice", tmp_path / "noise"
    for i in range(3):
        write(voice_dir / f"spk{i}" / "ch1" / f"utt{i}.flac", speech_like(rng, 1.0, 16000), 16000)
    write(voice_dir / "spk9" / "utt.wav", speech_like(rng, 0.8, 16000), 16000)
    write(noise_dir / "white.wav", 0.1 * rng.standard_normal(12000).astype(np.float32), 16000)
    brown = np.cumsum(rng.standard_normal(12000)).astype(np.float32)
    write(noise_dir / "sub" / "brown.ogg", 0.5 * brown / np.abs(brown).max(), 16000)
    return voice_dir, noise_dir


def zero_noise_model(settings: Settings = TINY):
    """A U-Net whose last layer is zeroed: it predicts no noise at all."""
    from denoise.model import build_unet

    model = build_unet(settings, TINY_MODEL)
    layer = model.get_layer("noise")
    layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    return model


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> dict[str, Path]:
    """A tiny dataset and a one-epoch tiny model, made once for the whole session."""
    from denoise.mixing import MixOptions, create_dataset
    from denoise.train import TrainOptions, train

    root = tmp_path_factory.mktemp("trained")
    voice, noise = corpus.__wrapped__(root, np.random.default_rng(7))
    data = root / "data"
    create_dataset(voice, noise, data, TINY, MixOptions(nb_samples=30, shard_size=12, seed=3))
    out = root / "run"
    train(data, out, TrainOptions(epochs=1, batch_size=8), TINY_MODEL, log=lambda _: None, verbose=0)
    return {"voice": voice, "noise": noise, "data": data, "run": out, "model": out / "best.keras"}


ESC50_ROWS = [  # (file name, class): a few rows of meta/esc50.csv, three classes, folds 1, 2 and 5
    ("1-100032-A-0.wav", "dog"), ("1-57316-A-38.wav", "clock_tick"), ("2-109505-A-25.wav", "footsteps"),
    ("5-200334-A-38.wav", "clock_tick"), ("5-9032-A-0.wav", "dog"),
]


@pytest.fixture
def librispeech(tmp_path: Path, rng: np.random.Generator) -> Path:
    """A tiny LibriSpeech as its archives unpack: LibriSpeech/train-clean-100/SPEAKER/CHAPTER/*.flac
    with a transcript beside them, and the corpus's text files at the top. Returns the subset folder."""
    root = tmp_path / "LibriSpeech"
    subset = root / "train-clean-100"
    for speaker, chapter in (("19", "198"), ("26", "495")):
        folder = subset / speaker / chapter
        for utterance in range(2):
            write(folder / f"{speaker}-{chapter}-{utterance:04d}.flac", speech_like(rng, 0.3, 16000), 16000)
        (folder / f"{speaker}-{chapter}.trans.txt").write_text(f"{speaker}-{chapter}-0000 HELLO\n")
    for name in ("README.TXT", "SPEAKERS.TXT", "CHAPTERS.TXT", "LICENSE.TXT"):
        (root / name).write_text("; LibriSpeech metadata\n")
    return subset


@pytest.fixture
def esc50(tmp_path: Path, rng: np.random.Generator) -> Path:
    """A tiny ESC-50 as its archive unpacks: ESC-50-master/audio/*.wav (44.1 kHz), meta/esc50.csv and
    the repository's other files. Returns the ESC-50-master folder."""
    root = tmp_path / "ESC-50-master"
    lines = ["filename,fold,target,category,esc10,src_file,take"]
    for name, category in ESC50_ROWS:
        fold, src, take, target = name[:-4].split("-")
        lines.append(f"{name},{fold},{target},{category},False,{src},{take}")
        write(root / "audio" / name, 0.1 * rng.standard_normal(4410).astype(np.float32), 44100)
    (root / "meta").mkdir()
    (root / "meta" / "esc50.csv").write_text("\n".join(lines) + "\n")
    (root / "meta" / "esc50-human.xlsx").write_bytes(b"PK\x03\x04")
    (root / "README.md").write_text("# ESC-50\n")
    (root / "esc50.gif").write_bytes(b"GIF89a")
    return root
