"""Relabel a dataset with what teacher models make of it, to distil them into one model.

    python benchmarks/distill_labels.py --data-dir work_data/k16 --out-dir work_data/k16_t \
        --teacher weights/denoise_16k.keras --teacher OTHER.keras [--truth-weight 0.0]

Each pair's ``clean_db`` becomes ``noisy_db`` minus the teachers' averaged noise share (in dB, the
quantity the U-Net predicts), mixed with the true clean spectrogram by ``--truth-weight``; the true
one is kept as ``true_clean_db``. Any trainer (``denoise train``, ``train_on_accelerator.py``) then
fits a student to the teachers' average: one model with the quality of an ensemble and the cost of
one. Shards already written are skipped, so an interrupted run resumes. Runs on any Keras backend
(on the GPU machine: KERAS_BACKEND=jax, as for train_on_accelerator.py).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from denoise.dataset import list_shards  # noqa: E402
from denoise.errors import DenoiseError  # noqa: E402
from denoise.model_io import read_keras_model, read_model_info  # noqa: E402
from denoise.spectrogram import scale_input, unscale_target  # noqa: E402


def load_teacher(path: Path):
    """(settings, Keras model) of a saved model, without TensorFlow if another backend is set."""
    settings, _, _ = read_model_info(path)
    return settings, read_keras_model(path)


def teacher_share(noisy_db: np.ndarray, teachers: list, settings, batch_size: int = 32) -> np.ndarray:
    """The teachers' mean noise share (dB) for dB blocks of shape (n, n_bins, n_frames)."""
    x = scale_input(noisy_db.astype(np.float32), settings)[..., None]
    shares = [unscale_target(np.asarray(t.predict(x, batch_size=batch_size, verbose=0))[..., 0], settings)
              for t in teachers]
    return np.mean(shares, axis=0)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--out-dir", type=Path, required=True)
    ap.add_argument("--teacher", type=Path, action="append", required=True, help="repeatable")
    ap.add_argument("--truth-weight", type=float, default=0.0,
                    help="share of the true clean spectrogram in the new target (0: the teachers' alone)")
    args = ap.parse_args(argv)
    if not 0.0 <= args.truth_weight <= 1.0:
        raise SystemExit(f"--truth-weight {args.truth_weight}: must be between 0 and 1")
    try:
        shards = list_shards(args.data_dir)
        loaded = [load_teacher(path) for path in args.teacher]
    except DenoiseError as exc:
        raise SystemExit(str(exc)) from None
    settings = loaded[0][0]
    for path, (other, _) in zip(args.teacher[1:], loaded[1:]):
        if other != settings:
            raise SystemExit(f"{path}: its settings differ from {args.teacher[0]}'s")
    teachers = [model for _, model in loaded]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for extra in args.data_dir.iterdir():
        if extra.is_file() and not extra.name.startswith("shard-"):
            shutil.copy(extra, args.out_dir / extra.name)
    start, done = time.time(), 0
    for shard in shards:
        out = args.out_dir / shard.name
        if out.exists():
            continue
        with np.load(shard) as data:
            arrays = {key: data[key] for key in data.files}
        noisy = arrays["noisy_db"].astype(np.float32)
        target = noisy - teacher_share(noisy, teachers, settings)
        true_clean = arrays.get("true_clean_db", arrays["clean_db"])
        target = args.truth_weight * true_clean.astype(np.float32) + (1.0 - args.truth_weight) * target
        arrays["true_clean_db"] = true_clean
        arrays["clean_db"] = target.astype(true_clean.dtype)
        partial = out.with_name(out.name + ".partial")  # not a shard name until complete
        with open(partial, "wb") as fh:
            np.savez(fh, **arrays)
        partial.rename(out)
        done += noisy.shape[0]
        print(f"{shard.name}: {done} pairs, {done / (time.time() - start):.1f} pairs/s", flush=True)


if __name__ == "__main__":
    main()
