"""benchmarks/train_on_accelerator.py (the GPU-machine trainer) on the tiny dataset, under TensorFlow."""
import csv
import dataclasses
import json
import shutil
import zipfile

import h5py
import pytest

from conftest import TINY, TINY_MODEL, benchmark_script
from denoise.model_io import load_model

ONE_ROUND = ["--budget-s", "0.01", "--round-pairs", "8", "--batch-size", "4", "--every", "5"]


def run_script(*args: str) -> None:
    benchmark_script("train_on_accelerator").main([str(a) for a in args])


def test_new_model_trains_one_round_and_saves_loadable_models(trained, tmp_path):
    out = tmp_path / "run"
    run_script("--data-dir", trained["data"], "--out-dir", out, "--base-filters", "4", "--depth", "2",
               "--lr", "1e-3", *ONE_ROUND)
    last = load_model(out / "last.keras", runtime="keras")
    assert last.settings == TINY
    assert (last.model_settings.base_filters, last.model_settings.depth, last.model_settings.dropout) == (4, 2, 0.0)
    assert last.metadata["training"]["seen_pairs"] == 8
    assert last.metadata["training"]["backend"] == "tensorflow"
    assert "tensorflow" in last.metadata["provenance"]  # the backend's version is recorded
    with open(out / "log.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["round"] for r in rows] == ["1"] and float(rows[0]["val_loss"]) > 0
    assert (out / "state.json").exists()
    with zipfile.ZipFile(out / "last.keras") as archive, archive.open("model.weights.h5") as fh:
        with h5py.File(fh) as weights:
            assert "optimizer" not in weights  # weights only: a third of the size


def test_init_weights_keeps_the_model_and_replaces_its_dropout(trained, tmp_path):
    out = tmp_path / "run"
    run_script("--data-dir", trained["data"], "--out-dir", out, "--init-weights", trained["model"],
               "--dropout", "0.2", "--lr", "1e-9", "--lr-end", "1e-9", *ONE_ROUND)
    last = load_model(out / "last.keras", runtime="keras")
    init = load_model(trained["model"], runtime="keras")
    assert last.model_settings == dataclasses.replace(TINY_MODEL, dropout=0.2)
    # A learning rate of 1e-9 leaves the weights where --init-weights put them.
    for a, b in zip(last.model.get_weights(), init.model.get_weights()):
        assert abs(a - b).max() < 1e-4


def test_init_weights_from_another_rate_needs_other_rate(trained, tmp_path):
    data = tmp_path / "data16k"  # the tiny dataset relabelled 16 kHz: same geometry in samples
    shutil.copytree(trained["data"], data)
    settings = json.loads((data / "settings.json").read_text())
    (data / "settings.json").write_text(json.dumps({**settings, "sample_rate": 16000}))
    common = ["--data-dir", data, "--init-weights", trained["model"], "--lr", "1e-9", "--lr-end", "1e-9", *ONE_ROUND]
    with pytest.raises(SystemExit, match="--other-rate"):
        run_script("--out-dir", tmp_path / "refused", *common)
    run_script("--out-dir", tmp_path / "run", "--other-rate", *common)
    last = load_model(tmp_path / "run" / "last.keras", runtime="keras")
    assert last.settings == dataclasses.replace(TINY, sample_rate=16000)
    assert last.metadata["training"]["recipe"]["other_rate"] is True


def test_init_weights_from_an_int8_stored_model(trained, tmp_path):
    from denoise.model_io import save_compact

    small = save_compact(trained["model"], tmp_path / "q.keras", keras_weights="int8")  # as the shipped 16 kHz model
    out = tmp_path / "run"
    run_script("--data-dir", trained["data"], "--out-dir", out, "--init-weights", small,
               "--lr", "1e-9", "--lr-end", "1e-9", *ONE_ROUND)
    last = load_model(out / "last.keras", runtime="keras")
    for a, b in zip(last.model.get_weights(), load_model(small, runtime="keras").model.get_weights(), strict=True):
        assert abs(a - b).max() < 1e-4


def test_teachers_replace_the_training_targets_and_leave_validation_true(trained, tmp_path):
    from conftest import zero_noise_model
    from denoise.model_io import save_model

    script = benchmark_script("train_on_accelerator")
    silent = save_model(zero_noise_model(), tmp_path / "silent.keras", TINY, TINY_MODEL)
    x, y, _, _ = script.load_pairs(trained["data"], every=5)
    truth = y[..., 0].astype("float32").copy()
    assert abs(truth).max() > 0.05
    labelled = y.copy()
    script.distil_targets(x, labelled, [silent], TINY, truth_weight=0.5)
    assert abs(labelled[..., 0] - truth / 2).max() < 2e-3  # a silent teacher halves every target
    assert (labelled[..., 1] == y[..., 1]).all()  # the input packed beside it is untouched
    kept = y.copy()
    script.distil_targets(x, kept, [silent], TINY, truth_weight=1.0)
    assert (kept == y).all()  # weight 1: the truth exactly (a control that labels like the others)
    teacher = load_model(trained["model"], runtime="keras").model
    script.distil_targets(x, labelled, [trained["model"]], TINY, truth_weight=0.0)
    expected = teacher.predict(x.astype("float32"), verbose=0)[..., 0]
    assert abs(labelled[..., 0] - expected).max() < 2e-3  # float16 storage

    out = tmp_path / "run"
    run_script("--data-dir", trained["data"], "--out-dir", out, "--init-weights", trained["model"],
               "--teacher", trained["model"], "--teacher", silent, "--truth-weight", "0.25", *ONE_ROUND)
    recipe = load_model(out / "last.keras", runtime="keras").metadata["training"]["recipe"]
    assert recipe["teacher"] == [str(trained["model"]), str(silent)] and recipe["truth_weight"] == 0.25


def test_bad_teachers_are_refused_before_training(trained, tmp_path):
    with pytest.raises(SystemExit, match="missing.keras: no such teacher"):
        run_script("--data-dir", trained["data"], "--out-dir", tmp_path / "a", "--teacher", tmp_path / "missing.keras",
                   *ONE_ROUND)
    with pytest.raises(SystemExit, match="truth-weight"):
        run_script("--data-dir", trained["data"], "--out-dir", tmp_path / "b", "--teacher", trained["model"],
                   "--truth-weight", "2", *ONE_ROUND)
    data = tmp_path / "data16k"
    shutil.copytree(trained["data"], data)
    settings = json.loads((data / "settings.json").read_text())
    (data / "settings.json").write_text(json.dumps({**settings, "sample_rate": 16000}))
    with pytest.raises(SystemExit, match="settings differ"):
        run_script("--data-dir", data, "--out-dir", tmp_path / "c", "--teacher", trained["model"], *ONE_ROUND)
