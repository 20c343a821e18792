"""Settings: the one place defaults live.

``Settings`` (spectrogram geometry and scaling) is created by data creation, saved beside every
dataset and every model, and read back by training and prediction so they can never disagree.
``ModelSettings`` describes the U-Net's size.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import SettingsError

SETTINGS_FILE = "settings.json"


@dataclass(frozen=True)
class Settings:
    """Spectrogram geometry and scaling shared by data creation, training and prediction.

    Defaults: at 16 kHz, n_fft=255 gives 128 frequency bins and a frame of 8064 samples
    (128 hops of 63, about 0.5 s) gives 128 time frames, so one example is 128x128.

    Magnitudes are in dB relative to full scale (ref 1.0, floor ``amin``), never relative to each
    window's own maximum, so the absolute level survives between windows. The network input is
    ``(noisy_db - in_offset_db) / in_scale_db`` (about [-1, 1] for -100..+40 dB). Its target is the
    noise's share of each bin, ``noisy_db - clean_db`` in dB, divided by ``out_scale_db`` so the
    tanh output covers -out_scale_db..+out_scale_db; a prediction of 0 removes nothing.
    """

    sample_rate: int = 16000
    frame_length: int = 8064
    n_fft: int = 255
    hop_length: int = 63
    amin: float = 1e-5
    in_offset_db: float = -30.0
    in_scale_db: float = 70.0
    out_scale_db: float = 60.0

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def n_frames(self) -> int:
        return self.frame_length // self.hop_length

    @property
    def floor_db(self) -> float:
        import math

        return 20.0 * math.log10(self.amin)

    def validate(self) -> "Settings":
        """Raise SettingsError naming the first bad value; return self."""
        if not 1000 <= self.sample_rate <= 192000:
            raise SettingsError(f"sample_rate={self.sample_rate} must be between 1000 and 192000 Hz")
        if self.n_fft < 16:
            raise SettingsError(f"n_fft={self.n_fft} must be >= 16")
        if not 0 < self.hop_length <= self.n_fft:
            raise SettingsError(f"hop_length={self.hop_length} must be in 1..n_fft={self.n_fft}")
        if self.frame_length % self.hop_length:
            raise SettingsError(
                f"frame_length={self.frame_length} must be a multiple of hop_length={self.hop_length}"
            )
        if self.frame_length < self.n_fft:
            raise SettingsError(f"frame_length={self.frame_length} must be >= n_fft={self.n_fft}")
        if not 0 < self.amin < 1:
            raise SettingsError(f"amin={self.amin} must be in (0, 1)")
        for name in ("in_scale_db", "out_scale_db"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name}={getattr(self, name)} must be > 0")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def differences(self, other: "Settings") -> str:
        """Where two settings differ, e.g. "sample_rate 8000 vs 16000" (empty if they do not)."""
        return ", ".join(f"{f.name} {getattr(self, f.name)} vs {getattr(other, f.name)}"
                         for f in dataclasses.fields(self) if getattr(self, f.name) != getattr(other, f.name))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "settings") -> "Settings":
        return _from_dict(cls, data, source).validate()


@dataclass(frozen=True)
class ModelSettings:
    """Size of the U-Net: ``depth`` levels of two 3x3 convolutions each in the encoder.

    The original method uses depth 5 (10 encoder convolutions) starting at 16 filters, doubling
    per level, with dropout on the two deepest levels.
    """

    base_filters: int = 16
    depth: int = 5
    dropout: float = 0.5
    leaky_alpha: float = 0.1

    def validate(self, settings: Settings | None = None) -> "ModelSettings":
        if self.base_filters < 1:
            raise SettingsError(f"base_filters={self.base_filters} must be >= 1")
        if not 2 <= self.depth <= 8:
            raise SettingsError(f"depth={self.depth} must be between 2 and 8")
        if not 0 <= self.dropout < 1:
            raise SettingsError(f"dropout={self.dropout} must be in [0, 1)")
        if settings is not None:
            factor = 2 ** (self.depth - 1)
            for name, size in (("n_bins", settings.n_bins), ("n_frames", settings.n_frames)):
                if size % factor:
                    fits = [d for d in range(2, 9)
                            if settings.n_bins % 2 ** (d - 1) == 0 and settings.n_frames % 2 ** (d - 1) == 0]
                    hint = (f"this data allows --depth {max(fits)} at most" if fits else "make the data again with "
                            "a --frame-length and --n-fft giving even sizes, 128 x 128 by default")
                    raise SettingsError(
                        f"{name}={size} must be divisible by 2**(depth-1)={factor} for depth={self.depth} ({hint})"
                    )
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "model settings") -> "ModelSettings":
        return _from_dict(cls, data, source).validate()


def deepest_unet(settings: Settings, most: int = 8) -> int:
    """The most U-Net levels (up to ``most``) whose poolings divide the geometry: 1 if none."""
    depth = 1
    while depth < most and not settings.n_bins % 2**depth and not settings.n_frames % 2**depth:
        depth += 1
    return depth


def _from_dict(cls: type, data: dict[str, Any], source: str) -> Any:
    if not isinstance(data, dict):
        raise SettingsError(f"{source}: expected a JSON object, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise SettingsError(f"{source}: unknown setting(s) {', '.join(unknown)}")
    for f in dataclasses.fields(cls):  # the annotations are strings ("int", "float"): from __future__
        if f.name not in data:
            continue
        value = data[f.name]
        whole = isinstance(value, int) and not isinstance(value, bool)
        if f.type == "int" and not whole:
            raise SettingsError(f"{source}: {f.name}={value!r} must be a whole number")
        if f.type == "float" and not (whole or (isinstance(value, float) and math.isfinite(value))):
            raise SettingsError(f"{source}: {f.name}={value!r} must be a number")
    return cls(**data)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON atomically: a temporary file in the same folder, then rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")  # parallel jobs: one each
    try:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise SettingsError(f"{path}: cannot write ({exc.strerror or exc})") from None


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON object, raising SettingsError naming the file on any problem."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise SettingsError(f"{path}: settings file not found") from None
    except (OSError, ValueError) as exc:
        raise SettingsError(f"{path}: cannot read settings ({exc})") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: expected a JSON object")
    return data


def save_settings(settings: Settings, folder: Path) -> Path:
    """Save ``settings`` as ``folder/settings.json``; return the path."""
    path = Path(folder) / SETTINGS_FILE
    write_json(path, settings.to_dict())
    return path


def load_settings(folder_or_file: Path) -> Settings:
    """Read settings from a dataset folder or a settings JSON file."""
    path = Path(folder_or_file)
    if path.is_dir():
        path = path / SETTINGS_FILE
    return Settings.from_dict(read_json(path), source=str(path))
