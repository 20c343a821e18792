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
    ax.set_ylabel("Huber loss")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    _save(fig, out_path)


def spectrogram_db(audio: np.ndarray, rate: int) -> tuple[np.ndarray, float]:
    """Magnitude in dB re full scale (n_fft ~ 32 ms) and the hop in seconds, for display."""
    import librosa

    n_fft = 1 << int(np.ceil(np.log2(0.032 * rate)))
    spec = np.abs(librosa.stft(audio, n_fft=n_fft, hop_length=n_fft // 4))
    return 20 * np.log10(np.maximum(spec, 1e-6)), (n_fft // 4) / rate


def plot_before_after(noisy_path: Path, denoised_path: Path, out_path: Path,
                      clean_path: Path | None = None) -> Path:
    """Spectrograms of the noisy and denoised recordings (and the clean one if given), stacked."""
    panels = [("noisy", noisy_path), ("denoised", denoised_path)]
    if clean_path is not None:
        panels.append(("clean", clean_path))
    plt = _pyplot()
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.6 * len(panels)), sharex=True, squeeze=False)
    for ax, (label, path) in zip(axes[:, 0], panels):
        _, rate, _ = audio_io.audio_info(path)
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
