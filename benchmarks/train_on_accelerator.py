"""Train the denoise U-Net on a GPU machine that has JAX but no TensorFlow (Keras 3, JAX backend).

Same model, scaling, losses and saved files as ``denoise train`` (the .keras file loads under
TensorFlow as usual), with other defaults (those of the GPU stages: --loss noise+clean, dropout 0
for a new model, one pair in 50 held out, batch 32); the input pipeline differs: the whole dataset is held in memory as
float16 (a GPU machine has the room), and training runs in rounds of ``--round-pairs`` pairs
until a wall-clock budget is spent, the learning rate falling on a cosine from ``--lr`` to
``--lr-end`` over that budget. After each round the validation loss is measured and the best
weights are kept (best.keras), so a run cut short loses nothing; last.keras and state.json let a
later run go on (``--init-weights OUT/last.keras``). Both are saved without optimizer state. Used for the GPU rounds of weights/README.md:

    KERAS_BACKEND=jax python benchmarks/train_on_accelerator.py --data-dir D --out-dir O \\
        --init-weights weights/denoise_16k.keras --dropout 0 --budget-s 400

It runs under TensorFlow too (the package's own install, no KERAS_BACKEND), which on a CPU is about
three times as fast as JAX's CPU backend (23 against 8 pairs a second on two cores). ``--other-rate``
starts a model for one sample rate from one trained at another: the settings may differ in the rate
only, so the spectrogram blocks have the same shape (the eighth stage's 8 kHz model started from the
16 kHz one). ``--teacher`` (repeatable) distils: each training pair's target becomes the teachers'
mean output, mixed with the true target by ``--truth-weight``, made once in memory after loading
(forward passes only; ``benchmarks/distill_labels.py`` does the same on disk); the validation pairs
keep their true targets, so val loss stays comparable with a run on the truth.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from denoise.dataset import is_validation, list_shards, load_dataset_settings  # noqa: E402
from denoise.settings import ModelSettings, write_json  # noqa: E402
from denoise.spectrogram import noise_target_db, scale_input, scale_target  # noqa: E402


def load_pairs(data_dir: Path, every: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_val, y_val), float16; y packs the scaled noise target and the input."""
    settings = load_dataset_settings(data_dir)
    shards = list_shards(data_dir)

    def one(path: Path) -> tuple[np.ndarray, np.ndarray]:
        with np.load(path) as data:
            noisy = data["noisy_db"].astype(np.float32)
            clean = data["clean_db"].astype(np.float32)
        x = scale_input(noisy, settings)
        t = scale_target(noise_target_db(noisy, clean), settings)
        return x.astype(np.float16), t.astype(np.float16)

    with ThreadPoolExecutor(min(16, os.cpu_count() or 1)) as pool:
        parts = list(pool.map(one, shards))
    x = np.concatenate([p[0] for p in parts])[..., None]
    t = np.concatenate([p[1] for p in parts])[..., None]
    y = np.concatenate([t, x], axis=-1)
    val = is_validation(np.arange(len(x)), every)
    return x[~val], y[~val], x[val], y[val]


def check_teachers(teachers: list[Path], settings) -> None:
    """Exit with one line unless every teacher exists with settings equal to the dataset's."""
    from denoise.errors import DenoiseError
    from denoise.model_io import read_model_info

    for path in teachers:
        if not path.is_file():
            sys.exit(f"{path}: no such teacher model")
        try:
            teacher_settings = read_model_info(path)[0]
        except DenoiseError as exc:
            sys.exit(str(exc))
        if teacher_settings != settings:
            sys.exit(f"{path}: its settings differ from the dataset's")


def distil_targets(x: np.ndarray, y: np.ndarray, teachers: list[Path], settings, truth_weight: float,
                   chunk: int = 4096) -> None:
    """Replace y's scaled noise target (channel 0) in place with the teachers' mean prediction for
    x, mixed with the true target by ``truth_weight``; the same as mixing the targets in dB (the
    scaling is linear) up to clipping at +-1."""
    from denoise.model_io import read_keras_model

    check_teachers(teachers, settings)
    models = [read_keras_model(path) for path in teachers]
    t0 = time.time()
    for i in range(0, len(x), chunk):
        part = x[i:i + chunk].astype(np.float32)
        mean = sum(np.asarray(m.predict(part, batch_size=256, verbose=0), np.float32) for m in models) / len(models)
        truth = y[i:i + chunk, ..., 0:1].astype(np.float32)
        y[i:i + chunk, ..., 0:1] = np.clip(truth_weight * truth + (1.0 - truth_weight) * mean, -1.0, 1.0)
    print(f"distilled {len(x)} training targets from {len(models)} teachers in {time.time() - t0:.0f} s", flush=True)


def prepare_model(args, settings):
    """A new model, or --init-weights (float32 copy), optionally widened and with new dropout."""
    from denoise.model import build_unet, widen_unet, with_dropout
    from denoise.model_io import read_keras_model, read_model_info

    if not args.init_weights:
        ms = ModelSettings(base_filters=args.base_filters, depth=args.depth, dropout=args.dropout or 0.0)
        ms = ms.validate(settings)
        return build_unet(settings, ms), ms, 0
    init = Path(args.init_weights)
    init_settings, ms, info = read_model_info(init)
    if init_settings != settings:
        only_rate = dataclasses.replace(init_settings, sample_rate=settings.sample_rate) == settings
        if not (args.other_rate and only_rate):
            hint = "" if args.other_rate else " (--other-rate allows a different sample rate only)"
            sys.exit(f"{init}: its settings differ from the dataset's{hint}")
        print(f"{init}: trained at {init_settings.sample_rate} Hz, goes on at {settings.sample_rate} Hz", flush=True)
    old = read_keras_model(init)  # an int8-stored shipped model too
    model = build_unet(settings, ms)
    model.set_weights([w.astype("float32") for w in old.get_weights()])
    if args.widen_to:
        model, ms = widen_unet(model, settings, ms, args.widen_to)
    if args.dropout is not None and args.dropout != ms.dropout:
        model, ms = with_dropout(model, settings, ms, args.dropout)
    return model, ms, int(info.get("training", {}).get("seen_pairs", 0))


def save_weights_only(model, path: Path, settings, model_settings, meta) -> None:
    """Save an uncompiled copy: no optimizer state, a third of the size (a later run starts its own
    optimizer anyway), which matters when the files come back from a GPU machine."""
    from denoise.model import build_unet
    from denoise.model_io import save_model

    copy = build_unet(settings, model_settings)
    copy.set_weights(model.get_weights())
    save_model(copy, path, settings, model_settings, meta)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--out-dir", type=Path, required=True)
    ap.add_argument("--init-weights", type=Path)
    ap.add_argument("--widen-to", type=int)
    ap.add_argument("--other-rate", action="store_true",
                    help="let --init-weights come from a model of another sample rate (same geometry in samples)")
    ap.add_argument("--base-filters", type=int, default=16, help="a new model's first-level filters")
    ap.add_argument("--depth", type=int, default=5, help="a new model's levels")
    ap.add_argument("--dropout", type=float, help="default: a new model 0, --init-weights its own")
    ap.add_argument("--loss", default="noise+clean")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--lr-end", type=float, default=5e-6)
    ap.add_argument("--budget-s", type=float, required=True, help="training wall-clock budget")
    ap.add_argument("--round-pairs", type=int, default=20000)
    ap.add_argument("--every", type=int, default=50, help="every N-th pair is held out for validation")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--teacher", type=Path, action="append", default=[],
                    help="repeatable: train toward these models' mean output (distillation)")
    ap.add_argument("--truth-weight", type=float, default=0.0,
                    help="with --teacher: share of the true target in the new one (0: the teachers' alone)")
    args = ap.parse_args(argv)
    if not 0.0 <= args.truth_weight <= 1.0:
        raise SystemExit(f"--truth-weight {args.truth_weight}: must be between 0 and 1")
    if args.teacher:  # checked before minutes of loading
        check_teachers(args.teacher, load_dataset_settings(args.data_dir))
    if (args.out_dir / "best.keras").exists():  # an earlier run's best model would be replaced by a worse one
        raise SystemExit(f"{args.out_dir}: holds a run already; choose another --out-dir "
                         f"(to go on from it: --init-weights {args.out_dir / 'last.keras'})")

    import keras

    from denoise.model import compile_model

    t0 = time.time()
    settings = load_dataset_settings(args.data_dir)
    x, y, xv, yv = load_pairs(args.data_dir, args.every)
    if len(xv) == 0 or len(x) == 0:
        raise SystemExit(f"{args.data_dir}: {len(x) + len(xv)} pairs are too few to hold out one in {args.every} "
                         "(--every) for validation")
    print(f"loaded {len(x)} training and {len(xv)} validation pairs in {time.time() - t0:.0f} s", flush=True)
    if args.teacher:
        distil_targets(x, y, args.teacher, settings, args.truth_weight)
    keras.utils.set_random_seed(args.seed)
    model, ms, seen0 = prepare_model(args, settings)
    compile_model(model, args.lr, args.loss, settings)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    recipe = {k: (str(v) if isinstance(v, Path) else [str(p) for p in v] if k == "teacher" else v)
              for k, v in vars(args).items()}
    best = model.evaluate(xv, yv, batch_size=256, verbose=0)
    print(f"start: {model.count_params():,} parameters, val loss {best:.5f}", flush=True)
    rng = np.random.default_rng(args.seed)
    log_path = args.out_dir / "log.csv"
    with open(log_path, "w", newline="") as f:
        csv.writer(f).writerow(["round", "seen_pairs", "elapsed_s", "learning_rate", "loss", "val_loss"])
    start, seen, rounds, round_s = time.time(), 0, 0, 0.0
    order = rng.permutation(len(x))
    pos = 0
    while time.time() - start + round_s <= args.budget_s:
        frac = min(1.0, (time.time() - start) / args.budget_s)
        lr = args.lr_end + 0.5 * (args.lr - args.lr_end) * (1 + math.cos(math.pi * frac))
        model.optimizer.learning_rate.assign(lr)
        if pos + args.round_pairs > len(order):
            order, pos = rng.permutation(len(x)), 0
        idx = np.sort(order[pos:pos + args.round_pairs])
        pos += args.round_pairs
        t = time.time()
        hist = model.fit(x[idx], y[idx], batch_size=args.batch_size, epochs=1, shuffle=True, verbose=0)
        val = model.evaluate(xv, yv, batch_size=256, verbose=0)
        round_s = time.time() - t
        rounds += 1
        seen += len(idx)
        loss = hist.history["loss"][-1]
        with open(log_path, "a", newline="") as f:
            csv.writer(f).writerow([rounds, seen, round(time.time() - start, 1), f"{lr:.3g}", f"{loss:.5f}", f"{val:.5f}"])
        print(f"round {rounds}: {seen} pairs, {time.time() - start:.0f} s, lr {lr:.2g}, loss {loss:.5f}, "
              f"val {val:.5f} ({len(idx) / round_s:.0f} pairs/s)", flush=True)
        meta = {"training": {"recipe": recipe, "backend": keras.backend.backend(), "seen_pairs": seen0 + seen,
                             "val_loss": float(val), "validation_pairs": len(xv), "train_pairs": len(x)}}
        if val < best:
            best = val
            save_weights_only(model, args.out_dir / "best.keras", settings, ms, meta)
        save_weights_only(model, args.out_dir / "last.keras", settings, ms, meta)  # a stopped run keeps its last round
    if not rounds:
        save_weights_only(model, args.out_dir / "last.keras", settings, ms, None)
    write_json(args.out_dir / "state.json", {"rounds": rounds, "seen_pairs": seen, "best_val_loss": float(best),
                                            "train_s": round(time.time() - start, 1)})
    print(f"done: {rounds} rounds, {seen} pairs in {time.time() - start:.0f} s, best val {best:.5f}", flush=True)


if __name__ == "__main__":
    main()
