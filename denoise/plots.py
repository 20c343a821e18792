"""Figures, drawn headless (matplotlib's Agg backend, never plt.show()) and written atomically."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from . import audio as audio_io

PLOT_SECONDS = 120.0  # longer recordings: the plot shows their beginning


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=100)
    _pyplot().close(fig)
    tmp.replace(path)


def plot_losses(log_path: Path, out_path: Path) -> None:
    """Training and validation loss per epoch on a log scale, from Keras' CSV log."""
    with open(log_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return
    plt = _pyplot()
    epochs = [int(r["epoch"]) + 1 for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in (("loss", "training"), ("val_loss", "validation")):
        if key in rows[0]:
            ax.plot(epochs, [float(r[key]) for r in rows], marker="o", label=label)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    _save(fig, out_path)


def spectrogram_db(audio: np.ndarray, rate: int) -> tuple[np.ndarray, float]:
    """Magnitude in dB re full scale (n_fft ~ 32 ms) and the hop in seconds, for display.

    The same frames as ``librosa.stft`` (centred, zero-padded, periodic Hann), in numpy: librosa's
    first call costs about two seconds, which a page drawing spectrograms should not pay.
    """
    from scipy.signal import get_window

    n_fft = 1 << int(np.ceil(np.log2(0.032 * rate)))
    hop = n_fft // 4
    padded = np.pad(np.asarray(audio, dtype=np.float32), n_fft // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    window = get_window("hann", n_fft, fftbins=True).astype(np.float32)
    spec = np.abs(np.fft.rfft(frames * window, axis=1)).T
    return 20 * np.log10(np.maximum(spec, 1e-6)), hop / rate


def spectrogram_png(audio: np.ndarray, rate: int, title: str, vmax: float | None = None) -> tuple[bytes, float]:
    """One recording's spectrogram as PNG bytes, and the top of its colour scale (dB).

    Pass the first image's ``vmax`` to the second so before and after share one colour scale.
    Draws on a bare ``Figure`` (no pyplot state), so several threads may call it at once.
    """
    import io

    from matplotlib.figure import Figure

    audio = audio_io.to_mono(np.asarray(audio, dtype=np.float32))[: int(PLOT_SECONDS * rate)]
    db, hop_s = spectrogram_db(audio, rate)
    vmax = float(db.max()) if vmax is None else vmax
    fig = Figure(figsize=(8, 2.6))
    ax = fig.add_subplot()
    image = ax.imshow(db, origin="lower", aspect="auto", extent=(0, db.shape[1] * hop_s, 0, rate / 2000),
                      vmin=-100, vmax=max(vmax, -99.0), cmap="magma")
    ax.set_title(title, fontsize=10)
    ax.set_ylabel("kHz")
    ax.set_xlabel("seconds")
    fig.colorbar(image, ax=ax, pad=0.01, label="dB")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue(), vmax


def plot_before_after(noisy_path: Path, denoised_path: Path, out_path: Path,
                      clean_path: Path | None = None) -> Path:
    """Spectrograms of the noisy and denoised recordings (and the clean one if given), stacked."""
    panels = [("noisy", noisy_path), ("denoised", denoised_path)]
    if clean_path is not None:
        panels.append(("clean", clean_path))
    plt = _pyplot()
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.6 * len(panels)), sharex=True, squeeze=False)
    for ax, (label, path) in zip(axes[:, 0], panels):
        rate, _ = audio_io.audio_format(path)
        data, rate = audio_io.read_audio(path, stop=int(PLOT_SECONDS * rate))
        db, hop_s = spectrogram_db(audio_io.to_mono(data), rate)
        extent = (0, db.shape[1] * hop_s, 0, rate / 2000)
        image = ax.imshow(db, origin="lower", aspect="auto", extent=extent, vmin=-100, vmax=db.max(), cmap="magma")
        ax.set_title(f"{label}: {Path(path).name}", fontsize=10)
        ax.set_ylabel("kHz")
        fig.colorbar(image, ax=ax, pad=0.01, label="dB")
    axes[-1, 0].set_xlabel("seconds")
    fig.tight_layout()
    _save(fig, out_path)
    return out_path
