"""Enhancement: predict the noise in overlapping spectrogram blocks and subtract it.

The whole signal gets one STFT; its scaled dB magnitude is cut into blocks of ``n_frames`` frames
overlapping by half, the model predicts each block's noise share, the predictions are cross-faded
back together, and the noise share is subtracted from the noisy magnitude in dB (a gain of at most
1 on each bin). The inverse STFT uses the noisy phase and the input's exact length.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from . import audio as audio_io
from .errors import DenoiseError
from .settings import Settings
from .spectrogram import (
    block_starts,
    istft,
    magnitude_db,
    overlap_add,
    scale_input,
    split_blocks,
    stft,
    unscale_target,
)

PredictFn = Callable[[np.ndarray], np.ndarray]


def keras_predict_fn(model, batch_size: int = 16) -> PredictFn:
    """Wrap a Keras model: (n, n_bins, n_frames, 1) float32 -> same shape, in batches, on the CPU."""

    def predict(x: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        out = []
        with tf.device("/CPU:0"):
            for start in range(0, x.shape[0], batch_size):
                out.append(np.asarray(model(x[start : start + batch_size], training=False)))
        return np.concatenate(out).astype(np.float32)

    return predict


def noise_share_db(noisy_spec: np.ndarray, settings: Settings, predict: PredictFn) -> np.ndarray:
    """Predicted noise share in dB for every bin of a complex STFT, shape (n_bins, n_frames_total)."""
    total = noisy_spec.shape[1]
    block = settings.n_frames
    starts = block_starts(total, block, block // 2)
    scaled = scale_input(magnitude_db(noisy_spec, settings), settings)
    blocks = split_blocks(scaled, starts, block, fill=float(scale_input(np.float32(settings.floor_db), settings)))
    predicted = predict(blocks[..., None])[..., 0]
    return unscale_target(overlap_add(predicted, starts, total), settings)


def enhance(audio: np.ndarray, settings: Settings, predict: PredictFn) -> np.ndarray:
    """Denoise mono audio at the model's rate.

    audio: float32, shape (n_samples,), at settings.sample_rate Hz. Returns the same shape.
    """
    audio = np.asarray(audio, dtype=np.float32)
    spec = stft(audio, settings)
    share = np.maximum(noise_share_db(spec, settings, predict), 0.0)
    gain = np.power(10.0, -share / 20.0, dtype=np.float32)
    return istft(spec * gain, settings, length=audio.shape[0])


def enhance_signal(audio: np.ndarray, rate: int, settings: Settings, predict: PredictFn) -> np.ndarray:
    """Denoise audio at any rate, each channel on its own.

    audio: float32, shape (n_samples, channels), at ``rate`` Hz. Returns the same shape and rate.
    The model works at its own rate; what it removes there is resampled back and subtracted from
    the original, so a model that removes nothing gives back the input exactly.
    """
    out = np.empty_like(audio, dtype=np.float32)
    for ch in range(audio.shape[1]):
        x = audio[:, ch].astype(np.float32)
        x_model = audio_io.resample(x, rate, settings.sample_rate)
        removed = x_model - enhance(x_model, settings, predict)
        removed = audio_io.resample(removed, settings.sample_rate, rate)
        removed = np.pad(removed, (0, max(0, x.shape[0] - removed.shape[0])))[: x.shape[0]]
        out[:, ch] = x - removed
    return out


@dataclass
class FileResult:
    input: Path
    output: Path
    seconds: float
    sample_rate: int
    clipped: int


def enhance_file(in_path: Path, out_path: Path, settings: Settings, predict: PredictFn) -> FileResult:
    """Denoise one file into ``out_path`` (format from its extension, same rate and channels)."""
    in_path, out_path = Path(in_path), Path(out_path)
    if out_path.resolve() == in_path.resolve():
        raise audio_io.AudioError(f"{out_path}: output would overwrite its input")
    if not out_path.parent.is_dir():
        raise audio_io.AudioError(f"{out_path}: output folder {out_path.parent} does not exist")
    data, rate = audio_io.read_audio(in_path)
    audio_io.check_audio(data, str(in_path))
    out = enhance_signal(data, rate, settings, predict)
    clipped = int(np.count_nonzero(np.abs(out) > 1.0))
    subtype = audio_io.output_subtype(in_path, out_path)
    if clipped and subtype is not None and subtype.startswith("PCM"):
        out = np.clip(out, -1.0, 1.0)
    audio_io.write_audio(out_path, out, rate, subtype=subtype)
    return FileResult(in_path, out_path, data.shape[0] / rate, rate, clipped)


def enhance_tree(
    in_dir: Path, out_dir: Path, model_for_rate: Callable[[int], object],
    progress: Callable[[int], None] | None = None,
) -> tuple[list[FileResult], list[str]]:
    """Denoise every audio file under ``in_dir`` into ``out_dir``, keeping relative paths.

    ``model_for_rate(rate)`` returns a loaded model (with ``settings`` and ``predict``) for a file's
    sample rate. Returns the results and one line per file that failed.
    """
    results, failures = [], []
    for path in audio_io.find_audio_files(in_dir):
        target = Path(out_dir) / path.relative_to(in_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            _, rate, _ = audio_io.audio_info(path)
            loaded = model_for_rate(rate)
            results.append(enhance_file(path, target, loaded.settings, loaded.predict))
        except DenoiseError as exc:
            failures.append(str(exc))
        if progress is not None:
            progress(1)
    return results, failures
