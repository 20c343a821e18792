"""Dataset shards -> streaming, shuffled, prefetched ``tf.data`` pipelines for training."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from .errors import DataError
from .settings import Settings, load_settings
from .spectrogram import noise_target_db, scale_input, scale_target

if TYPE_CHECKING:
    import tensorflow as tf

SHARD_GLOB = "shard-*.npz"


def list_shards(data_dir: Path) -> list[Path]:
    """Shard files of a dataset folder, sorted; DataError if the folder has none."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: dataset folder not found")
    shards = sorted(data_dir.glob(SHARD_GLOB))
    if not shards:
        raise DataError(f"{data_dir}: no dataset shards ({SHARD_GLOB}); run 'denoise data-creation' first")
    _check_complete(data_dir, {path.name for path in shards})
    return shards


def _check_complete(data_dir: Path, present: set[str]) -> None:
    """DataError if a shard or a part that data creation's manifests list is missing (a part's job
    failed, a file was lost in a copy): training would silently use less data than was made."""
    import json
    import re

    manifests = sorted(data_dir.glob("manifest*.json"))
    if not manifests:
        raise DataError(f"{data_dir}: no manifest.json: its data creation did not finish (interrupted?), so "
                        "shards may be missing; make the dataset again (data-creation --overwrite)")
    listed_anywhere: set[str] = set()
    for path in manifests:
        parts = re.fullmatch(r"manifest-part(\d+)-of-(\d+)\.json", path.name)
        if parts:
            missing = [f"manifest-part{i:03d}-of-{int(parts.group(2)):03d}.json" for i in range(int(parts.group(2)))
                       if not (data_dir / f"manifest-part{i:03d}-of-{int(parts.group(2)):03d}.json").exists()]
            if missing:
                raise DataError(f"{data_dir / missing[0]}: missing: {len(missing)} of the dataset's "
                                f"{int(parts.group(2))} parts were not created (data-creation --shard-index)")
        try:
            listed = json.loads(path.read_text()).get("shards", [])
        except (OSError, ValueError, AttributeError):
            raise DataError(f"{path}: cannot read this manifest, which says which shards the dataset holds; "
                            "make the dataset again") from None
        absent = [name for name in listed if name not in present]
        if absent:
            raise DataError(f"{data_dir / absent[0]}: missing, though {path.name} lists it "
                            f"({len(absent)} of its {len(listed)} shards are missing)")
        listed_anywhere |= set(listed)
    unlisted = sorted(present - listed_anywhere)
    if unlisted:
        raise DataError(f"{data_dir / unlisted[0]}: no manifest lists it ({len(unlisted)} such shard(s): copied in "
                        "from another dataset, or left by an interrupted run?); move it out or make the dataset again")


def dataset_fingerprint(data_dir: Path) -> str:
    """A short digest of the dataset's manifests: it changes when the dataset is made again with
    other options or inputs (a resumed training learns that its validation set changed)."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(Path(data_dir).glob("manifest*.json")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def load_dataset_settings(data_dir: Path) -> Settings:
    """The settings data creation saved beside the shards."""
    return load_settings(Path(data_dir))


def is_validation(index: np.ndarray, every: float) -> np.ndarray:
    """Deterministic hold-out of a share 1/``every`` of the pairs (shards in name order), spread
    evenly: pair i is held out when floor((i + 1) / every) > floor(i / every). A whole ``every``
    holds out every ``every``-th pair; 1 / 0.4 = 2.5 holds out two pairs in five."""
    share = Fraction(1 / every).limit_denominator(10_000) if not isinstance(every, int) else Fraction(1, every)
    index = np.asarray(index, dtype=np.int64)
    return (index + 1) * share.numerator // share.denominator > index * share.numerator // share.denominator


def _read_error(path: Path, exc: BaseException) -> DataError:
    """A shard that cannot be read (cut short, empty, not an .npz) as one line naming it."""
    if isinstance(exc, KeyError):
        return DataError(f"{path}: not a dataset shard (no {exc} array)")
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else "cut short or empty"
    return DataError(f"{path}: cannot read shard ({detail}); make the dataset again or remove the file")


def _array_shape(path: Path, key: str) -> tuple[int, ...]:
    """The shape of array ``key`` in an .npz, from its .npy header alone (np.load would decompress
    and read the whole array: mmap_mode does not apply inside a zip)."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        try:
            member = archive.open(f"{key}.npy")
        except KeyError:
            raise KeyError(key) from None
        with member:
            version = np.lib.format.read_magic(member)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            return tuple(read(member)[0])


def shard_offsets(shards: list[Path], settings: Settings | None = None) -> tuple[dict[Path, int], int]:
    """Index of each shard's first pair in the whole dataset, and the total, without loading arrays.

    With ``settings``, each shard's pairs are also checked to have the settings' shape, so a shard
    of another dataset stops training before it starts rather than hours into an epoch.
    """
    offsets, total = {}, 0
    expected = None if settings is None else (settings.n_bins, settings.n_frames)
    for path in sorted(shards):
        offsets[path] = total
        try:
            shapes = [_array_shape(path, key) for key in ("noisy_db", "clean_db")]
        except Exception as exc:  # zip, header, EOF and OS errors: numpy raises many kinds
            raise _read_error(path, exc) from None
        if expected is not None and any(shape[1:] != expected for shape in shapes):
            raise DataError(f"{path}: pairs of shape {shapes[0][1:]}, the dataset's settings expect {expected} "
                            "(a shard of another dataset?)")
        total += shapes[0][0]
    return offsets, total


def iter_pairs(
    shards: list[Path], settings: Settings, split: str, every: float, seed: int | None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (scaled noisy, scaled noise target), each float32 (n_bins, n_frames, 1).

    Shards are read one at a time (in a seeded random order when ``seed`` is given) so memory
    stays at one shard whatever the dataset's size.
    """
    offsets, _ = shard_offsets(shards)
    order = sorted(shards)
    if seed is not None:
        np.random.default_rng(seed).shuffle(order)
    for path in order:
        try:
            with np.load(path) as data:
                noisy = data["noisy_db"].astype(np.float32)
                clean = data["clean_db"].astype(np.float32)
        except Exception as exc:
            raise _read_error(path, exc) from None
        expected = (settings.n_bins, settings.n_frames)
        if noisy.shape[1:] != expected:
            raise DataError(f"{path}: pairs of shape {noisy.shape[1:]}, settings expect {expected}")
        mask = is_validation(offsets[path] + np.arange(noisy.shape[0]), every)
        if split == "train":
            mask = ~mask
        x = scale_input(noisy[mask], settings)
        y = scale_target(noise_target_db(noisy[mask], clean[mask]), settings)
        for xi, yi in zip(x, y):
            yield xi[..., None], yi[..., None]


def count_pairs(shards: list[Path], every: float, settings: Settings | None = None) -> tuple[int, int]:
    """(training pairs, validation pairs) without loading the arrays (checking their shape with ``settings``)."""
    _, total = shard_offsets(shards, settings)
    n_val = int(is_validation(np.arange(total), every).sum())
    return total - n_val, n_val


def make_dataset(
    shards: list[Path],
    settings: Settings,
    split: str,
    batch_size: int,
    every: float = 10,
    shuffle_buffer: int = 2048,
    seed: int = 0,
    drop_remainder: bool = False,
    pack_input: bool = False,
) -> "tf.data.Dataset":
    """A ``tf.data.Dataset`` of (x, y) batches, shuffled for training, prefetched in both splits.

    pack_input: y becomes (noise target, input) on the channel axis, for losses that also score
    the clean estimate (see ``denoise.model.make_loss``).
    """
    import tensorflow as tf

    shape = (settings.n_bins, settings.n_frames, 1)
    training = split == "train"

    def generator():
        # A new shard order each epoch for training; a fixed one for validation.
        generator.epoch += 1
        yield from iter_pairs(shards, settings, split, every, seed + generator.epoch if training else None)

    generator.epoch = 0
    spec = tf.TensorSpec(shape=shape, dtype=tf.float32)
    ds = tf.data.Dataset.from_generator(generator, output_signature=(spec, spec))
    if training:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if pack_input:
        ds = ds.map(lambda x, y: (x, tf.concat([y, x], axis=-1)), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)
