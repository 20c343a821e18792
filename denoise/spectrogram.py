"""Spectrogram maths: STFT and its inverse, dB magnitudes, scaling, and block framing.

Pure functions of numpy arrays and a ``Settings``; the same functions serve data creation,
training and prediction so the features cannot drift apart.
"""

from __future__ import annotations

import numpy as np

from .settings import Settings


def hann(n_fft: int) -> np.ndarray:
    """Periodic Hann window (as librosa and scipy use for spectral analysis), float32."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)


def stft(audio: np.ndarray, settings: Settings, center: bool = True) -> np.ndarray:
    """Complex STFT, complex64, shape (n_bins, n_frames): Hann window, hop_length apart.

    audio: float32, shape (n_samples,). With ``center`` frame t is centred on sample t * hop_length
    (zero-padded by n_fft // 2 each side), giving 1 + n_samples // hop_length frames for the
    default odd n_fft, as librosa.stft(center=True, pad_mode="constant") does; inputs shorter than
    n_fft are zero-padded to n_fft first. Without ``center`` frame t starts at t * hop_length.
    Plain numpy: prediction does not pay for importing librosa.
    """
    n_fft, hop = settings.n_fft, settings.hop_length
    audio = np.asarray(audio, dtype=np.float32)
    if center:
        if audio.shape[0] < n_fft:
            audio = np.pad(audio, (0, n_fft - audio.shape[0]))
        audio = np.pad(audio, (n_fft // 2, n_fft // 2))
    frames = np.lib.stride_tricks.sliding_window_view(audio, n_fft)[::hop]
    return np.fft.rfft(frames * hann(n_fft), axis=1).T.astype(np.complex64)


def istft(spec: np.ndarray, settings: Settings, length: int | None = None, center: bool = True) -> np.ndarray:
    """Inverse of :func:`stft` (weighted overlap-add, normalised by the summed squared window).

    n_fft comes from the settings, never from the number of bins (128 bins could be n_fft 254 or
    255). Returns float32 of ``length`` samples (trimmed or zero-padded) when given.
    """
    n_fft, hop = settings.n_fft, settings.hop_length
    window = hann(n_fft)
    n_frames = spec.shape[1]
    frames = np.fft.irfft(spec.T, n=n_fft, axis=1) * window
    # Overlap-add in ceil(n_fft / hop) passes: within a pass the hop-long pieces do not overlap.
    passes = -(-n_fft // hop)
    pad = passes * hop - n_fft
    pieces = np.pad(frames, ((0, 0), (0, pad))).reshape(n_frames, passes, hop)
    squared = np.pad(window.astype(np.float64) ** 2, (0, pad)).reshape(passes, hop)
    out = np.zeros((n_frames + passes - 1) * hop, dtype=np.float64)
    norm = np.zeros_like(out)
    for j in range(passes):
        out[j * hop : (j + n_frames) * hop] += pieces[:, j, :].reshape(-1)
        norm[j * hop : (j + n_frames) * hop] += np.tile(squared[j], n_frames)
    total = n_fft + hop * (n_frames - 1) if n_frames else 0
    out, norm = out[:total], norm[:total]
    nonzero = norm > np.finfo(np.float32).tiny
    out[nonzero] /= norm[nonzero]
    if center:
        out = out[n_fft // 2 :]
    if length is not None:
        out = np.pad(out[:length], (0, max(0, length - out.shape[0])))
    return out.astype(np.float32)


def magnitude_db(spec: np.ndarray, settings: Settings) -> np.ndarray:
    """Magnitude in dB relative to full scale (ref 1.0), floored at 20*log10(amin); float32."""
    return (20.0 * np.log10(np.maximum(np.abs(spec), settings.amin))).astype(np.float32)


def example_db(frame: np.ndarray, settings: Settings) -> np.ndarray:
    """dB magnitude of one training frame: float32, shape (n_bins, n_frames).

    frame: float32, shape (frame_length,).
    """
    return magnitude_db(stft(frame, settings), settings)[:, : settings.n_frames]


def scale_input(noisy_db: np.ndarray, settings: Settings) -> np.ndarray:
    """Noisy dB magnitude -> network input, about [-1, 1]."""
    return ((noisy_db - settings.in_offset_db) / settings.in_scale_db).astype(np.float32)


def unscale_input(scaled: np.ndarray, settings: Settings) -> np.ndarray:
    """Inverse of :func:`scale_input`."""
    return (scaled * settings.in_scale_db + settings.in_offset_db).astype(np.float32)


def noise_target_db(noisy_db: np.ndarray, clean_db: np.ndarray) -> np.ndarray:
    """The noise's share of each bin in dB: how much the noise raised the noisy magnitude."""
    return (noisy_db - clean_db).astype(np.float32)


def scale_target(target_db: np.ndarray, settings: Settings) -> np.ndarray:
    """Noise share in dB -> network target in [-1, 1] (clipped: tanh cannot go further)."""
    return np.clip(target_db / settings.out_scale_db, -1.0, 1.0).astype(np.float32)


def unscale_target(scaled: np.ndarray, settings: Settings) -> np.ndarray:
    """Inverse of :func:`scale_target`: network output -> noise share in dB."""
    return (scaled * settings.out_scale_db).astype(np.float32)


def block_starts(total_frames: int, block: int, hop: int) -> list[int]:
    """Start frames of overlapping blocks of ``block`` frames covering ``total_frames``.

    A regular grid every ``hop`` frames, and a last block that ends on the last frame, so that no
    block runs past the end: the network only ever saw blocks of real frames, and a block padded
    past the end (with near-silence, before the thirteenth stage) made it leave the last half second
    of a recording noisy. A recording shorter than one block gets the one block [0], which
    :func:`split_blocks` pads.
    """
    if total_frames <= block:
        return [0]
    starts = list(range(0, total_frames - block + 1, hop))
    if starts[-1] != total_frames - block:
        starts.append(total_frames - block)
    return starts


def crossfade_window(block: int) -> np.ndarray:
    """Hann-shaped weights over a block's frames, strictly positive so every frame is covered."""
    return np.hanning(block + 2)[1:-1].astype(np.float32)


def overlap_add(blocks: np.ndarray, starts: list[int], total_frames: int) -> np.ndarray:
    """Cross-fade per-block predictions into one array.

    blocks: float32, shape (n_blocks, n_bins, block). Returns shape (n_bins, total_frames): the
    weighted average of every block covering each frame, so block edges leave no seams; 0 where
    no block covers a frame.
    """
    n_blocks, n_bins, block = blocks.shape
    weight = crossfade_window(block)
    span = max(total_frames, starts[-1] + block)
    acc = np.zeros((n_bins, span), dtype=np.float64)
    norm = np.zeros(span, dtype=np.float64)
    for values, start in zip(blocks, starts):
        acc[:, start : start + block] += values * weight
        norm[start : start + block] += weight
    # Frames no block covers (callers that predict only some blocks) get 0.
    out = np.divide(acc[:, :total_frames], norm[:total_frames], out=np.zeros((n_bins, total_frames)),
                    where=norm[:total_frames] > 0)
    return out.astype(np.float32)


def split_blocks(values: np.ndarray, starts: list[int], block: int) -> np.ndarray:
    """Cut (n_bins, n_frames) into (n_blocks, n_bins, block).

    Past the end (a recording shorter than one block) the frames are mirrored, so the network sees
    the recording's own sound there rather than a level it never met in training.
    """
    n_bins, total = values.shape
    span = max(total, starts[-1] + block)
    padded = np.pad(values, ((0, 0), (0, span - total)), mode="symmetric").astype(np.float32, copy=False)
    return np.stack([padded[:, s : s + block] for s in starts])
