import numpy as np
import pytest

from conftest import TINY
from denoise.dataset import count_pairs, iter_pairs, list_shards, make_dataset
from denoise.errors import DataError


def test_list_shards_errors(tmp_path):
    with pytest.raises(DataError, match="dataset folder not found"):
        list_shards(tmp_path / "nope")
    with pytest.raises(DataError, match="no dataset shards"):
        list_shards(tmp_path)


def test_splits_are_disjoint_and_scaled(trained):
    shards = list_shards(trained["data"])
    n_train, n_val = count_pairs(shards, every=10)
    assert (n_train, n_val) == (27, 3)  # one pair in ten held out
    train = list(iter_pairs(shards, TINY, "train", 10, seed=None))
    val = list(iter_pairs(shards, TINY, "validation", 10, seed=None))
    assert len(train) == n_train and len(val) == n_val
    x, y = train[0]
    assert x.shape == y.shape == (16, 16, 1) and x.dtype == np.float32
    assert np.all(np.abs(y) <= 1.0)
    train_x = {xi.tobytes() for xi, _ in train}
    assert not any(xi.tobytes() in train_x for xi, _ in val)


def test_tf_dataset_batches(trained):
    ds = make_dataset(list_shards(trained["data"]), TINY, "train", batch_size=8, every=10)
    batches = [x.shape[0] for x, _ in ds]
    assert sum(batches) == 27 and batches[0] == 8


def test_wrong_geometry_is_reported(trained):
    from denoise.settings import Settings

    with pytest.raises(DataError, match="settings expect"):
        next(iter_pairs(list_shards(trained["data"]), Settings(), "train", 10, None))


def test_counting_pairs_reads_only_the_array_headers(tmp_path, monkeypatch):
    """Run every epoch and before training: it must not decompress a whole dataset."""
    from denoise.dataset import shard_offsets

    arrays = np.zeros((5, TINY.n_bins, TINY.n_frames), np.float16)
    np.savez(tmp_path / "shard-00000.npz", noisy_db=arrays, clean_db=arrays, noise_db=arrays)
    np.savez(tmp_path / "shard-00001.npz", noisy_db=arrays[:3], clean_db=arrays[:3], noise_db=arrays[:3])
    np.savez(tmp_path / "shard-00002.npz", clean_db=arrays)
    (tmp_path / "manifest.json").write_text('{"shards": ["shard-00000.npz", "shard-00001.npz", "shard-00002.npz"]}')

    def no_load(*args, **kwargs):
        raise AssertionError("np.load read a whole shard")

    monkeypatch.setattr(np, "load", no_load)
    shards = list_shards(tmp_path)
    offsets, total = shard_offsets(shards[:2], TINY)
    assert total == 8 and offsets[shards[1]] == 5
    with pytest.raises(DataError, match=r"shard-00002.npz: not a dataset shard \(no 'noisy_db' array\)"):
        shard_offsets(shards)
