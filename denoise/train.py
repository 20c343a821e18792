"""Training: fit the U-Net on a dataset folder; checkpoints, resume, fine-tuning, CSV log and plot."""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator

from .dataset import count_pairs, dataset_fingerprint, list_shards, load_dataset_settings, make_dataset
from .errors import DataError, ModelFileError
from .plots import plot_losses
from .model_io import export_lite, float32_copy, import_tensorflow, load_model, read_model_info, save_model
from .settings import ModelSettings, read_json, write_json

BEST = "best.keras"
LAST = "last.keras"
STATE = "state.json"
LOG = "log.csv"
LOCK = ".lock"
PLOT = "loss.png"


DEFAULT_LEARNING_RATE = 1e-4
DEFAULT_LOSS = "noise"


@dataclass(frozen=True)
class TrainOptions:
    """How to train. ``learning_rate`` and ``loss`` left None mean 1e-4 and "noise" for a new or
    fine-tuned model, and the checkpoint's own with resume (given, they replace it)."""

    epochs: int = 10
    batch_size: int = 16
    learning_rate: float | None = None
    validation_split: float = 0.1
    seed: int = 0
    shuffle_buffer: int = 2048
    mixed_precision: bool = False
    distribute: str = "auto"  # "auto", "mirrored" (every local device, CPUs included) or "none"
    loss: str | None = None  # "noise" (the original method) or "noise+clean" (see denoise.model.make_loss)


@dataclass
class TrainResult:
    epochs_done: int
    best_val_loss: float
    best_path: Path
    last_path: Path
    device: str


def training_device() -> str:
    """'GPU (n: names)' when TensorFlow sees a GPU, else 'CPU'."""
    tf = import_tensorflow()
    gpus = tf.config.list_physical_devices("GPU")
    return f"GPU ({len(gpus)}: {', '.join(g.name for g in gpus)})" if gpus else "CPU"


def choose_strategy(distribute: str) -> tuple[Any, str]:
    """The tf.distribute strategy and its description: several workers from TF_CONFIG, several
    local GPUs, or one device. "mirrored" forces MirroredStrategy over every local device of the
    kind in use (this tests the multi-device path on logical CPU devices)."""
    import json
    import os

    tf = import_tensorflow()
    if distribute == "none":
        return tf.distribute.get_strategy(), "one device"
    if os.environ.get("TF_CONFIG"):
        workers = json.loads(os.environ["TF_CONFIG"]).get("cluster", {}).get("worker", [])
        return tf.distribute.MultiWorkerMirroredStrategy(), f"MultiWorkerMirroredStrategy over {len(workers)} workers"
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy(), f"MirroredStrategy over {len(gpus)} GPUs"
    if distribute == "mirrored":
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices=devices), f"MirroredStrategy over {len(devices)} devices"
    return tf.distribute.get_strategy(), "one device"


def input_rate(dataset, batch_size: int, batches: int = 20) -> float | None:
    """Samples per second the input pipeline delivers on its own, after its first batch (None when
    there is no second batch to time)."""
    iterator = iter(dataset)
    next(iterator)
    start, count = time.perf_counter(), 0
    for _ in range(batches):
        try:
            next(iterator)
        except StopIteration:
            break
        count += 1
    return count * batch_size / max(time.perf_counter() - start, 1e-9) if count else None


def _prepare_model(data_dir, out_dir, settings, options, model_settings, resume, init_weights, widen_to, dropout, log,
                   pairs=None):
    """(model, model settings, epochs already done, best validation loss, learning rate), compiled for fit.

    ``pairs``: (training, validation) pairs of ``data_dir``, to tell whether a resumed run goes on
    with the data it was trained on."""
    from .model import build_unet, compile_model, widen_unet, with_dropout

    last_path, state_path, log_path = out_dir / LAST, out_dir / STATE, out_dir / LOG
    if resume:  # train() has checked that last.keras exists
        saved_settings, model_settings, info = read_model_info(last_path)
        if saved_settings != settings:
            raise DataError(f"{data_dir}: dataset settings differ from the checkpoint's in {out_dir} "
                            f"({settings.differences(saved_settings)})")
        saved_loss = info.get("training", {}).get("loss", DEFAULT_LOSS)
        if saved_loss != options.loss:
            raise DataError(f"{last_path}: trained with --loss {saved_loss}, not {options.loss}; resume with the same loss")
        try:
            state = read_json(state_path)
            epoch, best_val = int(state["epoch"]), float(state["best_val_loss"])
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{state_path}: not the state of a 'denoise train' run; start a new one with "
                            f"--init-weights {last_path}") from None
        best_json = (out_dir / BEST).with_suffix(".json")
        if best_json.exists():  # an interrupted save may have written best.keras and not state.json
            best_val = min(best_val, float(read_json(best_json).get("training", {}).get("val_loss", best_val)))
        before = info.get("training", {})
        # Older checkpoints hold the path as given, relative to a working folder unknown now: the
        # pair counts alone judge them.
        moved = Path(before.get("data_dir", "")).is_absolute() and Path(before["data_dir"]) != Path(data_dir).resolve()
        remade = "dataset" in before and before["dataset"] != dataset_fingerprint(data_dir)
        split_changed = pairs is not None and (before.get("train_pairs"), before.get("validation_pairs")) != tuple(pairs)
        if "data_dir" in before and not (moved or remade) and split_changed and "dataset" in before:
            # The same pairs split otherwise: some it trained on would be validation pairs now.
            raise DataError(f"{data_dir}: split into {pairs[0]} training and {pairs[1]} validation pairs, the checkpoint "
                            f"in {out_dir} into {before['train_pairs']} and {before['validation_pairs']}: resume with "
                            f"the --validation-split it was trained with, or start a new run with --init-weights {last_path}")
        if "data_dir" in before and (moved or remade or split_changed):
            # Another validation set: its losses say nothing against the old ones.
            what = (f"other data ({data_dir}; the checkpoint's was {before['data_dir']})" if moved
                    else f"{data_dir} made again since the checkpoint")
            log(f"Resuming on {what}: its validation loss is not comparable with the earlier {best_val:.5f}, "
                f"so {BEST} is the best from now on")
            best_val = math.inf
        model = load_model(last_path, compile=True, runtime="keras").model
        learning_rate = float(f"{float(model.optimizer.learning_rate):.6g}")  # float32: 1e-4 reads 9.9999997e-05
        if options.learning_rate is not None and not math.isclose(options.learning_rate, learning_rate, rel_tol=1e-6):
            log(f"Learning rate {options.learning_rate:g} (the checkpoint's was {learning_rate:g})")
            model.optimizer.learning_rate = learning_rate = options.learning_rate
        _keep_log_rows(log_path, epoch)
        log(f"Resuming from {last_path} after epoch {epoch}")
        return model, model_settings, epoch, best_val, learning_rate
    if last_path.exists():
        raise ModelFileError(f"{last_path}: a training already exists here (use --resume, or another --out)")
    if init_weights:
        loaded = load_model(init_weights, runtime="keras")
        if loaded.settings != settings:
            raise ModelFileError(f"{loaded.path}: its settings differ from the dataset's in {data_dir} "
                                 f"({loaded.settings.differences(settings)})")
        model, model_settings = float32_copy(loaded), loaded.model_settings
        log(f"Fine-tuning from {loaded.path}")
        if widen_to:
            before = model.count_params()
            try:
                model, model_settings = widen_unet(model, settings, model_settings, widen_to)
            except ValueError:
                raise DataError(f"{loaded.path}: has {model_settings.base_filters} filters in its first level; "
                                f"--widen-to {widen_to} must be more") from None
            log(f"Widened to {widen_to} filters in the first level: {before:,} -> {model.count_params():,} parameters")
        if dropout is not None and dropout != model_settings.dropout:
            model, model_settings = with_dropout(model, settings, model_settings, dropout)
            log(f"Dropout {loaded.model_settings.dropout} -> {dropout}")
    else:
        model_settings = (model_settings or ModelSettings()).validate(settings)
        model = build_unet(settings, model_settings)
    learning_rate = DEFAULT_LEARNING_RATE if options.learning_rate is None else options.learning_rate
    compile_model(model, learning_rate, options.loss, settings)
    log_path.unlink(missing_ok=True)
    return model, model_settings, 0, math.inf, learning_rate


def _keep_log_rows(log_path: Path, epochs: int) -> None:
    """Drop log.csv rows of epochs after the checkpoint's (written before an interruption) so a
    resumed run does not log them twice."""
    import csv

    if not log_path.exists():
        return
    with open(log_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    kept = [r for r in rows if r.get("epoch", "").isdigit() and int(r["epoch"]) < epochs]
    if len(kept) != len(rows) and rows:
        with open(log_path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(kept)


def train(
    data_dir: Path,
    out_dir: Path,
    options: TrainOptions = TrainOptions(),
    model_settings: ModelSettings | None = None,
    resume: bool = False,
    init_weights: Path | None = None,
    log: Callable[[str], None] = print,
    verbose: int = 1,
    widen_to: int | None = None,
    dropout: float | None = None,
) -> TrainResult:
    """Train on the shards in ``data_dir``, writing models, ``log.csv`` and ``loss.png`` to ``out_dir``.

    ``resume`` continues from ``out_dir/last.keras`` (same optimizer state, same epoch count);
    ``init_weights`` starts from an existing model (fine-tuning) instead of random weights;
    ``widen_to`` first widens it to that many first-level filters (see ``model.widen_unet``) and
    ``dropout`` replaces its dropout rate (a new model takes both from ``model_settings``).
    Several GPUs or workers are used through tf.distribute (see ``choose_strategy``).
    """
    if options.epochs < 1:
        raise DataError(f"epochs={options.epochs} must be >= 1")
    if not 0 < options.validation_split < 1:
        raise DataError(f"validation_split={options.validation_split} must be in (0, 1)")
    from .model import LOSSES

    if options.loss is None:  # the checkpoint's on resume, else the original method's
        last_json = (Path(out_dir) / LAST).with_suffix(".json")
        saved = read_model_info(last_json)[2].get("training", {}) if resume and last_json.exists() else {}
        options = replace(options, loss=saved.get("loss", DEFAULT_LOSS))
    if options.loss not in LOSSES:
        raise DataError(f"loss={options.loss!r} must be one of {', '.join(LOSSES)}")
    if resume and init_weights:
        raise DataError("--resume and --init-weights cannot be used together")
    if widen_to and not init_weights:
        raise DataError("--widen-to needs --init-weights (a new model takes --base-filters)")
    if dropout is not None and not init_weights:
        raise DataError("dropout= is for --init-weights; a new model takes it from its model settings")
    shards = list_shards(data_dir)
    settings = load_dataset_settings(data_dir)
    every = 1 / options.validation_split
    n_train, n_val = count_pairs(shards, every, settings)
    if n_val == 0 or n_train == 0:
        raise DataError(
            f"{data_dir}: {n_train + n_val} pairs are too few for a {options.validation_split:.0%} "
            f"validation split; create at least {math.ceil(max(every, 1 / (1 - options.validation_split)))} pairs"
        )

    out_dir = Path(out_dir)
    if resume and not (out_dir / LAST).exists():
        raise ModelFileError(f"{out_dir / LAST}: no checkpoint to resume from")
    try:
        out_dir.mkdir(parents=True)
        created = True
    except FileExistsError:
        created = False
    except OSError as exc:
        raise DataError(f"{out_dir}: cannot create the folder ({exc.strerror})") from None
    if not out_dir.is_dir():
        raise DataError(f"{out_dir}: not a folder")
    with run_folder_lock(out_dir):
        try:
            return _fit(data_dir, out_dir, shards, settings, every, n_train, n_val, options, model_settings,
                        resume, init_weights, widen_to, dropout, log, verbose)
        except BaseException:
            # Failed before writing anything into the folder it made: leave none (the lock is still ours).
            if created and {p.name for p in out_dir.iterdir()} <= {LOCK}:
                (out_dir / LOCK).unlink(missing_ok=True)
                out_dir.rmdir()
            raise


@contextlib.contextmanager
def run_folder_lock(out_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``out_dir/.lock`` while training, so two trainings never write one
    folder (their checkpoints and logs would interleave). The operating system releases it when the
    process ends, however it ends. Without fcntl (Windows) training goes on unguarded."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(Path(out_dir) / LOCK, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise DataError(f"{out_dir}: another 'denoise train' is writing to this folder") from None
        yield


def _fit(data_dir, out_dir, shards, settings, every, n_train, n_val, options, model_settings, resume,
         init_weights, widen_to, dropout, log, verbose) -> TrainResult:
    """The body of ``train`` once its checks passed and its folder is locked."""
    best_path, last_path, state_path, log_path = (out_dir / n for n in (BEST, LAST, STATE, LOG))
    tf = import_tensorflow()
    import keras

    keras.utils.set_random_seed(options.seed)
    strategy, strategy_name = choose_strategy(options.distribute)
    if options.mixed_precision and training_device() == "CPU":
        log("--mixed-precision needs a GPU (float16 on a CPU is many times slower): training in float32")
        options = replace(options, mixed_precision=False)
    if options.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        with strategy.scope():
            model, model_settings, initial_epoch, best_val, learning_rate = _prepare_model(
                data_dir, out_dir, settings, options, model_settings, resume, init_weights, widen_to, dropout, log,
                (n_train, n_val))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    options = replace(options, learning_rate=learning_rate)

    device = training_device()
    log(f"Training on {device} ({strategy_name}{', mixed precision' if options.mixed_precision else ''}): "
        f"{n_train} training pairs, {n_val} validation pairs, {model.count_params():,} parameters")
    if initial_epoch >= options.epochs:
        log(f"Already trained for {initial_epoch} epochs (--epochs {options.epochs}); nothing to do")
        return TrainResult(initial_epoch, best_val, best_path, last_path, device)

    # Several replicas split each batch: only whole batches, so every replica gets the same shape.
    whole = strategy.num_replicas_in_sync > 1
    if whole and min(n_train, n_val) < options.batch_size:
        raise DataError(f"{data_dir}: {n_val} validation pairs are fewer than one batch of "
                        f"{options.batch_size} across {strategy.num_replicas_in_sync} replicas")

    def dataset(split: str, n: int):
        ds = make_dataset(shards, settings, split, options.batch_size, every, options.shuffle_buffer,
                          options.seed, drop_remainder=whole, pack_input=options.loss != "noise")
        data_options = tf.data.Options()
        data_options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        batches = n // options.batch_size if whole else math.ceil(n / options.batch_size)
        return ds.with_options(data_options).apply(tf.data.experimental.assert_cardinality(batches))

    supply = input_rate(dataset("train", n_train), options.batch_size)
    log(f"Input pipeline alone: {supply:.0f} samples/s" if supply is not None else
        "Input pipeline alone: not measured (the training pairs fit in one batch)")
    recipe = {"data_dir": str(Path(data_dir).resolve()), "dataset": dataset_fingerprint(data_dir),
              "train_pairs": n_train, "validation_pairs": n_val,
              "batch_size": options.batch_size, "learning_rate": options.learning_rate,
              "mixed_precision": options.mixed_precision, "loss": options.loss}
    if init_weights:
        recipe["init_weights"] = str(init_weights)
    if widen_to:
        recipe["widened_to"] = widen_to
    if dropout is not None:
        recipe["dropout"] = dropout

    class Throughput(keras.callbacks.Callback):
        """Training samples per second each epoch, and the share of step time spent waiting for input,
        estimated from the pipeline's own rate (0 when it delivers faster than the model consumes)."""

        def on_epoch_begin(self, epoch, logs=None):
            self.start = self.end = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.end = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            rate = n_train / max(self.end - self.start, 1e-9)
            # Keras's progress bar finishes its line after this callback: start a line of our own.
            waiting = "" if supply is None else f"; about {max(0.0, 1 - supply / rate):.0%} of step time waiting for input"
            first = " (this first epoch includes building the graph)" if epoch == initial_epoch else ""
            log(f"{chr(10) if verbose == 1 else ''}Epoch {epoch + 1}: {rate:.1f} training samples/s{waiting}{first}")

    class Checkpoint(keras.callbacks.Callback):
        """Saves the last model (with optimizer state) every epoch and the best by validation loss."""

        def on_epoch_end(self, epoch, logs=None):
            nonlocal best_val
            val = float((logs or {}).get("val_loss", math.inf))
            meta = {"training": {**recipe, "epochs": epoch + 1, "val_loss": val}}
            if val < best_val:
                best_val = val
                save_model(self.model, best_path, settings, model_settings, meta)
            save_model(self.model, last_path, settings, model_settings, meta)
            write_json(state_path, {"epoch": epoch + 1, "best_val_loss": best_val})
            plot_losses(log_path, out_dir / PLOT)

    callbacks = [keras.callbacks.CSVLogger(str(log_path), append=True), Checkpoint(), Throughput()]
    model.fit(
        dataset("train", n_train),
        validation_data=dataset("validation", n_val),
        epochs=options.epochs,
        initial_epoch=initial_epoch,
        callbacks=callbacks,
        verbose=verbose,
        shuffle=False,  # the tf.data pipeline shuffles
    )
    if best_path.exists():
        export_lite(best_path)
        log(f"Exported {best_path.with_suffix('.tflite')} for fast prediction")
    return TrainResult(options.epochs, best_val, best_path, last_path, device)
