"""Saving and loading models, always together with the settings they were trained with.

A model is a Keras 3 file ``NAME.keras`` with a sidecar ``NAME.json`` holding the spectrogram
settings, the model size and provenance (library versions, date, data recipe). Both are written
atomically (a temporary file in the same folder, then rename).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import platform
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Iterator

from .errors import ModelFileError, SettingsError
from .settings import ModelSettings, Settings, read_json, write_json

if TYPE_CHECKING:
    import keras

MODEL_SUFFIX = ".keras"
LITE_SUFFIX = ".tflite"
DEFAULT_MODEL_NAME = "best.keras"
RUNTIMES = ("auto", "lite", "keras")


def import_tensorflow() -> ModuleType:
    """Import TensorFlow quietly (lazily: the CLI's help and light paths never pay for it)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with quiet_stderr():  # TensorFlow 2.21 logs from C++ on import whatever TF_CPP_MIN_LOG_LEVEL says
        import tensorflow as tf

    return tf


@dataclass
class LoadedModel:
    """A model with the settings it must be used with.

    ``runtime`` is "keras" (``model`` is the Keras model) or "lite" (the exported LiteRT file
    beside it runs without TensorFlow; ``model`` is None).
    """

    model: Any
    settings: Settings
    model_settings: ModelSettings
    path: Path
    metadata: dict[str, Any] = field(default_factory=dict)
    runtime: str = "keras"

    def predict(self, x: Any) -> Any:
        """Scaled noisy blocks (n, n_bins, n_frames, 1) -> scaled noise share, same shape."""
        if "_predict" not in self.__dict__:
            from .enhance import keras_predict_fn, lite_predict_fn

            self.__dict__["_predict"] = (
                lite_predict_fn(lite_path(self.path), block_shape=(self.settings.n_bins, self.settings.n_frames, 1))
                if self.runtime == "lite" else keras_predict_fn(self.model, name=str(self.path))
            )
        return self.__dict__["_predict"](x)


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence the C-level stderr (TensorFlow's converter and LiteRT log there) for a block."""
    saved = os.dup(2)
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def lite_path(model_path: Path) -> Path:
    """``NAME.keras`` -> ``NAME.tflite``, the light-runtime export beside it."""
    return Path(model_path).with_suffix(LITE_SUFFIX)


def lite_runtime_available() -> bool:
    """Whether the LiteRT interpreter (package ai-edge-litert) can be imported."""
    import importlib.util

    return importlib.util.find_spec("ai_edge_litert") is not None


def float32_copy(loaded: "LoadedModel") -> "keras.Model":
    """A float32 Keras model with the loaded model's weights (it may be float16 or mixed)."""
    from .model import build_unet

    model = build_unet(loaded.settings, loaded.model_settings)
    model.set_weights([w.astype("float32") for w in loaded.model.get_weights()])
    return model


LITE_WEIGHTS = ("float32", "float16", "int8")


def export_lite(model_path: Path, weights: str = "float32") -> Path:
    """Convert a saved Keras model to LiteRT (``NAME.tflite`` beside it), written atomically.

    ``weights``: "float32"; "float16" (half the size, computed in float32); or "int8" (dynamic-range
    quantisation: int8 weights, activations quantised on the fly; a quarter of the size and 2-3
    times as fast on a CPU, for no measured loss, see benchmarks/quality_speed_options.txt).
    """
    if weights not in LITE_WEIGHTS:
        raise ModelFileError(f"weights={weights!r} must be one of {', '.join(LITE_WEIGHTS)}")
    import io

    loaded = load_model(model_path, runtime="keras")
    tf = import_tensorflow()
    # A float32 copy: a model trained with mixed precision has float16 layers LiteRT cannot run.
    model = float32_copy(loaded)
    out = lite_path(loaded.path)
    tmp = out.with_name(f".{out.stem}.tmp{LITE_SUFFIX}")
    try:
        # The converter prints its temporary files and pages of C++ logs; its errors still raise.
        with contextlib.redirect_stdout(io.StringIO()), quiet_stderr():
            converter = tf.lite.TFLiteConverter.from_keras_model(model)
            if weights != "float32":
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
            if weights == "float16":
                converter.target_spec.supported_types = [tf.float16]
            data = converter.convert()
        tmp.write_bytes(data)
        os.replace(tmp, out)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise ModelFileError(f"{out}: cannot export the model ({str(exc).splitlines()[0]})") from None
    return out


KERAS_WEIGHTS = ("float16", "int8")
INT8_MEMBER = "weights.int8.npz"  # in a .keras archive, instead of Keras's model.weights.h5


def save_compact(model_path: Path, out_path: Path, lite_weights: str = "float16",
                 keras_weights: str = "float16") -> Path:
    """Save a small copy for shipping in ``out_path`` (.keras) with its settings, and its LiteRT
    export beside it.

    ``keras_weights``: "float16" (half the size; the copy computes in float16, a fallback) or
    "int8" (a quarter of the size: int8 weights with one float32 scale per output channel,
    expanded to a float32 model when loaded; only ``read_keras_model`` reads it). Fine-tuning and
    export always use a float32 copy.
    """
    if keras_weights not in KERAS_WEIGHTS:
        raise ModelFileError(f"keras_weights={keras_weights!r} must be one of {', '.join(KERAS_WEIGHTS)}")
    _check_destination(Path(out_path))  # before minutes of loading and converting
    if Path(out_path).resolve() == resolve_model_path(model_path).resolve():
        raise ModelFileError(f"{out_path}: is the model being exported (it would be replaced by a smaller, "
                             "less precise copy); give --compact-to another name")
    import keras

    loaded = load_model(model_path, runtime="keras")
    from .model import build_unet

    meta = {k: v for k, v in loaded.metadata.items() if k not in ("settings", "model", "provenance")}
    meta["weights_dtype"] = keras_weights
    if keras_weights == "int8":
        model = float32_copy(loaded)
        save_model(model, out_path, loaded.settings, loaded.model_settings, meta)
        _quantise_archive(Path(out_path), model.get_weights())
    else:
        keras.mixed_precision.set_global_policy("float16")
        try:
            compact = build_unet(loaded.settings, loaded.model_settings)
        finally:
            keras.mixed_precision.set_global_policy("float32")
        compact.set_weights([w.astype("float16") for w in loaded.model.get_weights()])
        save_model(compact, out_path, loaded.settings, loaded.model_settings, meta)
    export_lite(out_path, lite_weights)
    return Path(out_path)


def quantise_int8(weights: Any) -> tuple[Any, Any]:
    """Symmetric per-output-channel (last axis) int8: ``weights ~= q * scale``."""
    import numpy as np

    w = np.asarray(weights, dtype=np.float32)
    scale = np.abs(w.reshape(-1, w.shape[-1])).max(axis=0) / 127.0
    scale[scale == 0] = 1.0
    return np.clip(np.round(w / scale), -127, 127).astype(np.int8), scale.astype(np.float32)


def _quantise_archive(path: Path, weights: list) -> None:
    """Rewrite the .keras archive just saved from a model with these float32 ``weights`` in place,
    its weights file replaced by int8 kernels (biases stay float32)."""
    import io

    import numpy as np

    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist() if not name.startswith("model.weights")}
    arrays = {}
    for i, w in enumerate(weights):
        if w.ndim >= 2:
            arrays[f"q{i:03d}"], arrays[f"s{i:03d}"] = quantise_int8(w)
        else:
            arrays[f"w{i:03d}"] = w.astype(np.float32)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    members[INT8_MEMBER] = buffer.getvalue()
    tmp = path.with_name(f".{path.stem}.tmp{MODEL_SUFFIX}")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
            for name, data in members.items():
                archive.writestr(name, data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ModelFileError(f"{path}: cannot save model ({exc})") from None


def read_keras_model(path: Path, compile: bool = False) -> "keras.Model":
    """The Keras model in a .keras file, an int8-stored one expanded to float32.

    Imports Keras only (any backend: the JAX trainer and labeller use it too); ``load_model`` adds
    the settings and the checks.
    """
    import keras

    from .model import custom_objects

    if _int8_archive(path):
        if compile:
            raise ValueError("int8 weights for shipping, no optimizer state to resume: fine-tune it with --init-weights")
        return _load_int8_archive(path)
    return keras.saving.load_model(path, compile=compile, custom_objects=custom_objects())


def _int8_archive(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return INT8_MEMBER in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def _load_int8_archive(path: Path):
    """A float32 Keras model from an archive written by ``save_compact(keras_weights="int8")``."""
    import io

    import keras
    import numpy as np

    from .model import custom_objects

    with zipfile.ZipFile(path) as archive:
        config = archive.read("config.json").decode()
        stored = np.load(io.BytesIO(archive.read(INT8_MEMBER)))
        arrays = {name: stored[name] for name in stored.files}
    with keras.saving.custom_object_scope(custom_objects()):
        model = keras.models.model_from_json(config)
    weights = []
    for i in range(len(model.weights)):
        if f"q{i:03d}" in arrays:
            weights.append(arrays[f"q{i:03d}"].astype(np.float32) * arrays[f"s{i:03d}"])
        elif f"w{i:03d}" in arrays:
            weights.append(arrays[f"w{i:03d}"])
        else:
            raise ValueError(f"weight {i} of {len(model.weights)} missing")
    if len(arrays) != sum(1 if w.ndim < 2 else 2 for w in weights):
        raise ValueError("more weights stored than the model has")
    model.set_weights(weights)
    return model


def sidecar_path(model_path: Path) -> Path:
    """``NAME.keras`` -> ``NAME.json``."""
    return Path(model_path).with_suffix(".json")


def provenance() -> dict[str, Any]:
    """Library versions and the date, recorded in every saved model."""
    import importlib

    import keras
    import numpy

    from . import __version__

    backend = keras.backend.backend()  # a model trained on JAX or PyTorch loads under TensorFlow too
    return {
        "denoise": __version__,
        backend: importlib.import_module(backend).__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "saved": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _check_destination(path: Path) -> None:
    """ModelFileError unless ``path`` can be a model file: a .keras name in an existing folder."""
    if path.suffix != MODEL_SUFFIX:
        raise ModelFileError(f"{path}: model files must end in {MODEL_SUFFIX}")
    if not path.parent.is_dir():
        raise ModelFileError(f"{path}: output folder {path.parent} does not exist")


def save_model(
    model: Any,
    path: Path,
    settings: Settings,
    model_settings: ModelSettings,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Save ``model`` to ``path`` (must end in .keras) and its settings beside it; return path."""
    path = Path(path)
    _check_destination(path)
    tmp = path.with_name(f".{path.stem}.tmp{MODEL_SUFFIX}")
    try:
        model.save(tmp)
        os.replace(tmp, path)
        lite_path(path).unlink(missing_ok=True)  # an export of the previous weights is stale now
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ModelFileError(f"{path}: cannot save model ({exc})") from None
    except BaseException:  # Ctrl-C during the save: no half-written file left behind
        Path(tmp).unlink(missing_ok=True)
        raise
    info = {
        "settings": settings.to_dict(),
        "model": model_settings.to_dict(),
        "provenance": provenance(),
    }
    info.update(metadata or {})
    write_json(sidecar_path(path), info)
    return path


WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
SHIPPED_MODELS = {16000: "denoise_16k.keras", 8000: "denoise_8k.keras"}


def default_weights(sample_rate: int | None = None) -> Path:
    """The shipped model for audio at ``sample_rate``: the 8 kHz model at 8 kHz or below, else 16 kHz.

    ``$DENOISE_WEIGHTS`` overrides the weights folder. Falls back to the other shipped model when
    only one is present.
    """
    folder = Path(os.environ["DENOISE_WEIGHTS"]) if "DENOISE_WEIGHTS" in os.environ else shipped_weights_dir()
    wanted = 8000 if sample_rate is not None and sample_rate <= 8000 else 16000
    for rate in (wanted, 16000 if wanted == 8000 else 8000):
        path = folder / SHIPPED_MODELS[rate]
        if path.exists():
            return path
    raise ModelFileError(
        f"{folder / SHIPPED_MODELS[wanted]}: no shipped model found; set DENOISE_WEIGHTS to the folder "
        "that holds it, or pass --weights (a model of your own: 'denoise train')"
    )


def shipped_weights_dir() -> Path:
    """The folder of the shipped models: ``weights/`` in a checkout (an editable install), else the
    ``share/denoise-unet/weights`` the installer made: under the environment, the user's folder or a
    ``--prefix`` (the installed package's file list says which), or beside the package for a
    ``--target`` install (whose file list is wrong)."""
    import sys
    from importlib import metadata

    if WEIGHTS_DIR.is_dir():
        return WEIGHTS_DIR
    share = Path("share") / "denoise-unet" / "weights"
    try:
        files = metadata.distribution("denoise-unet").files or []
    except metadata.PackageNotFoundError:
        files = []
    listed = [Path(f.locate()).resolve().parent for f in files if f.name in SHIPPED_MODELS.values()]
    candidates = listed[:1] + [Path(__file__).resolve().parent.parent / share, Path(sys.prefix) / share]
    return next((c for c in candidates if any((c / name).exists() for name in SHIPPED_MODELS.values())),
                candidates[-1])


class ModelChooser:
    """Loads each model once: the one given, or the shipped one that suits each sample rate."""

    def __init__(self, weights: Path | None = None, runtime: str = "auto") -> None:
        self.weights = weights
        self.runtime = runtime
        self._cache: dict[Path, LoadedModel] = {}

    @property
    def loaded(self) -> list[LoadedModel]:
        """The models loaded so far."""
        return list(self._cache.values())

    def for_rate(self, sample_rate: int) -> LoadedModel:
        path = resolve_model_path(self.weights if self.weights is not None else default_weights(sample_rate))
        if path not in self._cache:
            self._cache[path] = load_model(path, runtime=self.runtime)
        return self._cache[path]


def resolve_model_path(path: Path) -> Path:
    """A model file (``.keras``, or its ``.tflite`` export alone), or a training folder (its best model)."""
    path = Path(path)
    if path.is_dir():
        best = path / DEFAULT_MODEL_NAME
        if not best.exists() and not best.with_suffix(LITE_SUFFIX).exists():
            models = sorted(str(p) for p in path.glob(f"*{MODEL_SUFFIX}"))
            hint = f"; pass a model file: {', '.join(models[:4])}" if models else ""
            raise ModelFileError(f"{path}: no {DEFAULT_MODEL_NAME} in this folder (a training folder's model){hint}")
        path = best if best.exists() else best.with_suffix(LITE_SUFFIX)
    if not path.exists():
        raise ModelFileError(f"{path}: model file not found")
    if path.suffix not in (MODEL_SUFFIX, LITE_SUFFIX):
        raise ModelFileError(f"{path}: not a model file (expected {MODEL_SUFFIX}, or its {LITE_SUFFIX} export)")
    return path


def read_model_info(path: Path) -> tuple[Settings, ModelSettings, dict[str, Any]]:
    """Settings, model size and metadata from a model's sidecar JSON."""
    side = sidecar_path(path)
    if not side.exists():
        raise ModelFileError(f"{side}: settings file missing beside the model {Path(path).name}")
    try:
        info = read_json(side)
        if not isinstance(info, dict) or not isinstance(info.get("settings"), dict):
            raise ModelFileError(f"{side}: no \"settings\" in it (not the settings file of a denoise model)")
        settings = Settings.from_dict(info["settings"], source=str(side))
        model_settings = ModelSettings.from_dict(info.get("model", {}), source=str(side))
    except SettingsError as exc:
        raise ModelFileError(str(exc)) from None
    return settings, model_settings, info


def load_model(path: Path, compile: bool = False, runtime: str = "auto") -> LoadedModel:
    """Load a model and its settings; ModelFileError names the file on any problem.

    runtime "auto" uses the LiteRT export beside the model when it exists and the runtime is
    installed (no TensorFlow import), else Keras; "lite" and "keras" insist on one. ``path`` may
    also be the ``.tflite`` export alone (with its ``.json``): a deployment without the Keras file.
    """
    if runtime not in RUNTIMES:
        raise ModelFileError(f"runtime={runtime!r} must be one of {', '.join(RUNTIMES)}")
    path = resolve_model_path(path)
    settings, model_settings, info = read_model_info(path)
    if path.suffix == LITE_SUFFIX:  # the export alone (with its .json): prediction only
        if runtime == "keras" or compile:
            raise ModelFileError(f"{path}: a LiteRT export can only predict; training, export and "
                                 f"--runtime keras need its {MODEL_SUFFIX} model")
        if not lite_runtime_available():
            raise ModelFileError(f"{path}: the LiteRT runtime is not installed (pip install ai-edge-litert)")
        return LoadedModel(None, settings, model_settings, path, info, runtime="lite")
    if runtime != "keras" and not compile:
        if lite_path(path).exists() and lite_runtime_available():
            return LoadedModel(None, settings, model_settings, path, info, runtime="lite")
        if runtime == "lite":
            reason = "not exported (run 'denoise export')" if not lite_path(path).exists() else \
                "the LiteRT runtime is not installed (pip install ai-edge-litert)"
            raise ModelFileError(f"{lite_path(path)}: {reason}")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path}: not a Keras model file (a .keras file is a zip archive)")
    import_tensorflow()
    try:
        model = read_keras_model(path, compile=compile)
    except Exception as exc:  # Keras raises many kinds for a bad file
        raise ModelFileError(f"{path}: cannot load model ({str(exc).splitlines()[0]})") from None
    expected = (None, settings.n_bins, settings.n_frames, 1)
    if tuple(model.input_shape) != expected:
        raise ModelFileError(f"{path}: model input {model.input_shape} does not match its settings {expected}")
    return LoadedModel(model, settings, model_settings, path, info)
