"""benchmarks/distill_labels.py: a dataset relabelled with the teachers' averaged output."""
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY, TINY_MODEL, benchmark_script, zero_noise_model
from denoise.dataset import iter_pairs, list_shards
from denoise.model_io import load_model, save_model


def run_script(*args) -> None:
    benchmark_script("distill_labels").main([str(a) for a in args])


def training_targets(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets) exactly as training reads them."""
    pairs = list(iter_pairs(list_shards(data_dir), TINY, "train", every=1000, seed=None))
    return np.stack([x for x, _ in pairs]), np.stack([y for _, y in pairs])


@pytest.fixture(scope="module")
def silent_teacher(tmp_path_factory) -> Path:
    """A teacher that predicts no noise at all."""
    return save_model(zero_noise_model(), tmp_path_factory.mktemp("teacher") / "silent.keras", TINY, TINY_MODEL)


def test_training_targets_become_the_teachers_output(trained, tmp_path):
    out = tmp_path / "labelled"
    run_script("--data-dir", trained["data"], "--out-dir", out, "--teacher", trained["model"])
    x, y = training_targets(out)
    teacher = load_model(trained["model"], runtime="keras")
    expected = np.clip(teacher.predict(x), -1, 1)  # scaled noise share, what the student must output
    assert np.abs(y - expected).max() < 2e-3  # float16 storage
    _, y_true = training_targets(trained["data"])
    assert np.abs(y - y_true).max() > 0.05  # the labels really changed
    # The true clean spectrogram is kept, and the dataset's settings travel with it.
    with np.load(list_shards(out)[0]) as new, np.load(list_shards(trained["data"])[0]) as old:
        assert np.array_equal(new["true_clean_db"], old["clean_db"])
        assert np.array_equal(new["noisy_db"], old["noisy_db"])
    assert (out / "settings.json").read_text() == (trained["data"] / "settings.json").read_text()


def test_two_teachers_are_averaged(trained, silent_teacher, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    run_script("--data-dir", trained["data"], "--out-dir", one, "--teacher", trained["model"])
    run_script("--data-dir", trained["data"], "--out-dir", two, "--teacher", trained["model"],
               "--teacher", silent_teacher)
    _, y_one = training_targets(one)
    _, y_two = training_targets(two)
    assert np.abs(y_two - y_one / 2).max() < 2e-3  # the silent teacher halves every share


def test_truth_weight_mixes_the_true_target_back_in(trained, tmp_path):
    full, half = tmp_path / "teacher", tmp_path / "half"
    run_script("--data-dir", trained["data"], "--out-dir", full, "--teacher", trained["model"])
    run_script("--data-dir", trained["data"], "--out-dir", half, "--teacher", trained["model"],
               "--truth-weight", "0.5")
    _, y_teacher = training_targets(full)
    _, y_half = training_targets(half)
    _, y_true = training_targets(trained["data"])
    unclipped = np.abs(y_true) < 0.99
    assert np.abs(y_half - (y_true + y_teacher) / 2)[unclipped].max() < 3e-3
    with pytest.raises(SystemExit, match="truth-weight"):
        run_script("--data-dir", trained["data"], "--out-dir", tmp_path / "x", "--teacher", trained["model"],
                   "--truth-weight", "1.5")


def test_written_shards_are_skipped_so_a_run_resumes(trained, tmp_path):
    out = tmp_path / "labelled"
    run_script("--data-dir", trained["data"], "--out-dir", out, "--teacher", trained["model"])
    first = list_shards(out)[0]
    stamp = first.stat().st_mtime_ns
    run_script("--data-dir", trained["data"], "--out-dir", out, "--teacher", trained["model"])
    assert first.stat().st_mtime_ns == stamp
    assert not list(out.glob("*.partial"))


def test_bad_inputs_name_the_problem(trained, tmp_path):
    with pytest.raises(SystemExit, match="no dataset shards"):
        run_script("--data-dir", tmp_path, "--out-dir", tmp_path / "o", "--teacher", trained["model"])
    with pytest.raises(SystemExit, match="missing.keras"):
        run_script("--data-dir", trained["data"], "--out-dir", tmp_path / "o", "--teacher", tmp_path / "missing.keras")


def test_an_int8_stored_teacher_is_read_as_float(trained, tmp_path):
    from denoise.model_io import save_compact

    small = save_compact(trained["model"], tmp_path / "q.keras", keras_weights="int8")  # as the shipped 16 kHz model
    run_script("--data-dir", trained["data"], "--out-dir", tmp_path / "float", "--teacher", trained["model"])
    run_script("--data-dir", trained["data"], "--out-dir", tmp_path / "int8", "--teacher", small)
    _, y_float = training_targets(tmp_path / "float")
    _, y_int8 = training_targets(tmp_path / "int8")
    assert 0 < np.abs(y_int8 - y_float).max() < 0.05
