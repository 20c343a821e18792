import csv
from pathlib import Path
import shutil
import subprocess
import sys

import numpy as np

import pytest

from conftest import TINY, TINY_MODEL
from denoise.errors import DataError, ModelFileError
from denoise.model_io import load_model
from denoise.train import TrainOptions, train

QUIET = {"log": lambda _: None, "verbose": 0}


def read_log(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_one_epoch_gives_a_loadable_model_log_and_plot(trained):
    run = trained["run"]
    for name in ("best.keras", "best.json", "last.keras", "last.json", "log.csv", "loss.png", "state.json"):
        assert (run / name).exists(), name
    loaded = load_model(run)
    assert loaded.settings == TINY and loaded.model_settings == TINY_MODEL
    assert loaded.metadata["provenance"]["keras"].startswith("3.")
    assert loaded.metadata["training"]["train_pairs"] == 27
    assert [r["epoch"] for r in read_log(run / "log.csv")] == ["0"]
    assert (run / "loss.png").read_bytes()[:4] == b"\x89PNG"


def test_resume_continues_the_epoch_count(trained, tmp_path):
    out = tmp_path / "run"
    train(trained["data"], out, TrainOptions(epochs=1, batch_size=8), TINY_MODEL, **QUIET)
    with pytest.raises(ModelFileError, match="a training already exists here"):
        train(trained["data"], out, TrainOptions(epochs=2, batch_size=8), TINY_MODEL, **QUIET)
    result = train(trained["data"], out, TrainOptions(epochs=2, batch_size=8), resume=True, **QUIET)
    assert result.epochs_done == 2
    assert [r["epoch"] for r in read_log(out / "log.csv")] == ["0", "1"]
    model = load_model(out / "last.keras", compile=True).model
    assert int(model.optimizer.iterations.numpy()) == 2 * 4  # 27 pairs / batch 8 = 4 steps per epoch


def test_resuming_on_other_data_says_so_and_starts_best_afresh(trained, tmp_path):
    out = tmp_path / "run"
    train(trained["data"], out, TrainOptions(epochs=1, batch_size=8), TINY_MODEL, **QUIET)
    assert load_model(out / "best.keras").metadata["training"]["data_dir"] == str(trained["data"].resolve())
    # A checkpoint from before paths were recorded whole: relative to a folder unknown now, judged by its pair counts.
    import json

    info = json.loads((out / "last.json").read_text())
    info["training"]["data_dir"] = "somewhere/relative"
    (out / "last.json").write_text(json.dumps(info))
    lines = []
    train(trained["data"], out, TrainOptions(epochs=2, batch_size=8), resume=True, log=lines.append, verbose=0)
    assert not any("other data" in line for line in lines)
    other = tmp_path / "other"
    shutil.copytree(trained["data"], other)
    lines = []
    result = train(other, out, TrainOptions(epochs=3, batch_size=8), resume=True, log=lines.append, verbose=0)
    assert any(f"Resuming on other data ({other}; the checkpoint's was {trained['data'].resolve()})" in line
               and "best.keras is the best from now on" in line for line in lines), lines
    best = load_model(out / "best.keras").metadata["training"]
    assert best["epochs"] == 3 and best["data_dir"] == str(other.resolve())  # the old data's best is not kept
    assert result.best_val_loss == best["val_loss"]
    # The same folder made again (another seed, the same number of pairs): its manifest says so.
    from denoise.mixing import MixOptions, create_dataset

    create_dataset(trained["voice"], trained["noise"], other, TINY, MixOptions(nb_samples=30, shard_size=12, seed=4),
                   overwrite=True)
    lines = []
    train(other, out, TrainOptions(epochs=4, batch_size=8), resume=True, log=lines.append, verbose=0)
    assert any(f"Resuming on {other} made again since the checkpoint" in line for line in lines), lines


def test_resuming_with_another_validation_split_is_refused(trained, tmp_path):
    """Pairs it trained on would be validation pairs: the best model would be chosen on them."""
    out = tmp_path / "run"
    train(trained["data"], out, TrainOptions(epochs=1, batch_size=8), TINY_MODEL, **QUIET)
    with pytest.raises(DataError, match=r"split into 18 training and 12 validation pairs, the checkpoint in .* into "
                                        r"27 and 3: resume with the --validation-split it was trained with"):
        train(trained["data"], out, TrainOptions(epochs=2, batch_size=8, validation_split=0.4), resume=True, **QUIET)


def test_resume_needs_a_checkpoint(trained, tmp_path):
    with pytest.raises(ModelFileError, match="no checkpoint to resume from"):
        train(trained["data"], tmp_path / "new", TrainOptions(epochs=1), resume=True, **QUIET)
    assert not (tmp_path / "new").exists()
    # A run that fails before writing anything leaves no folder behind (a model that does not exist here).
    with pytest.raises(ModelFileError):
        train(trained["data"], tmp_path / "ft", TrainOptions(epochs=1), init_weights=tmp_path / "none.keras", **QUIET)
    assert not (tmp_path / "ft").exists()


def test_init_weights_fine_tunes(trained, tmp_path):
    result = train(trained["data"], tmp_path / "ft", TrainOptions(epochs=1, batch_size=8),
                   init_weights=trained["model"], **QUIET)
    assert load_model(result.best_path).model_settings == TINY_MODEL


def test_init_weights_can_be_widened(trained, tmp_path):
    result = train(trained["data"], tmp_path / "wide", TrainOptions(epochs=1, batch_size=8),
                   init_weights=trained["model"], widen_to=6, **QUIET)
    loaded = load_model(result.best_path)
    assert loaded.model_settings.base_filters == 6 and loaded.model_settings.depth == TINY_MODEL.depth
    assert loaded.metadata["training"]["widened_to"] == 6
    with pytest.raises(DataError, match="--widen-to 4 must be more"):
        train(trained["data"], tmp_path / "narrow", TrainOptions(epochs=1, batch_size=8),
              init_weights=trained["model"], widen_to=4, **QUIET)
    with pytest.raises(DataError, match="--widen-to needs --init-weights"):
        train(trained["data"], tmp_path / "none", TrainOptions(epochs=1), widen_to=6, **QUIET)


def test_init_weights_dropout_can_be_replaced(trained, tmp_path):
    result = train(trained["data"], tmp_path / "nodrop", TrainOptions(epochs=1, batch_size=8),
                   init_weights=trained["model"], dropout=0.0, **QUIET)
    loaded = load_model(result.best_path, runtime="keras")
    assert TINY_MODEL.dropout == 0.5 and loaded.model_settings.dropout == 0.0
    assert loaded.metadata["training"]["dropout"] == 0.0
    # Rebuilt as a dropout-0 model, which has no Dropout layers at all.
    assert not [l for l in loaded.model.layers if l.__class__.__name__ == "Dropout"]
    with pytest.raises(DataError, match="dropout= is for --init-weights"):
        train(trained["data"], tmp_path / "none", TrainOptions(epochs=1), dropout=0.0, **QUIET)


def test_training_errors(trained, tmp_path):
    with pytest.raises(DataError, match="no dataset shards"):
        train(tmp_path, tmp_path / "out", **QUIET)
    small = tmp_path / "small"
    small.mkdir()
    shutil.copy(trained["data"] / "settings.json", small)
    with np.load(trained["data"] / "shard-00000.npz") as d:
        np.savez(small / "shard-00000.npz", **{k: d[k][:1] for k in d.files})
    # Shards without a manifest: a data creation that never finished.
    with pytest.raises(DataError, match="small: no manifest.json: its data creation did not finish"):
        train(small, tmp_path / "out", TrainOptions(validation_split=0.5), **QUIET)
    (small / "manifest.json").write_text('{"shards": ["shard-00000.npz"]}')
    with pytest.raises(DataError, match="1 pairs are too few for a 50% validation split"):
        train(small, tmp_path / "out", TrainOptions(validation_split=0.5), **QUIET)


def test_logs_throughput_and_input_wait(trained, tmp_path):
    lines = []
    train(trained["data"], tmp_path / "r", TrainOptions(epochs=2, batch_size=8), TINY_MODEL, log=lines.append, verbose=0)
    assert any(l.startswith("Input pipeline alone:") and l.endswith("samples/s") for l in lines)
    epochs = [l for l in lines if "training samples/s; about" in l and "waiting for input" in l]
    assert len(epochs) == 2 and "includes building the graph" in epochs[0] and "graph" not in epochs[1]
    # All the training pairs in one batch: no second batch to time the pipeline by, and no made-up figure.
    lines = []
    train(trained["data"], tmp_path / "one", TrainOptions(epochs=1, batch_size=64), TINY_MODEL, log=lines.append,
          verbose=0)
    assert "Input pipeline alone: not measured (the training pairs fit in one batch)" in lines
    assert not any("waiting for input" in l for l in lines) and any("training samples/s" in l for l in lines)


def test_mirrored_strategy_on_two_logical_cpus(trained, tmp_path):
    """The multi-device path, tested on the CPU split into two logical devices (in a fresh process:
    devices must be configured before TensorFlow starts)."""
    import subprocess
    import sys

    code = f"""
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})
from conftest import TINY_MODEL
from denoise.train import TrainOptions, train
lines = []
train({str(trained["data"])!r}, {str(tmp_path / "m")!r}, TrainOptions(epochs=1, batch_size=2, distribute="mirrored"),
      TINY_MODEL, log=lines.append, verbose=0)
assert any("MirroredStrategy over 2 devices" in l for l in lines), lines
"""
    subprocess.run([sys.executable, "-c", code], check=True)
    assert load_model(tmp_path / "m" / "best.keras").settings == TINY


def test_mixed_precision_trains_a_loadable_model(trained, tmp_path, monkeypatch):
    import keras

    # On a CPU it is set aside (float16 there is many times slower) and said so...
    monkeypatch.setattr("denoise.train.training_device", lambda: "CPU")
    lines = []
    result = train(trained["data"], tmp_path / "cpu", TrainOptions(epochs=1, batch_size=8, mixed_precision=True),
                   TINY_MODEL, log=lines.append, verbose=0)
    assert any("--mixed-precision needs a GPU" in line for line in lines), lines
    assert load_model(result.best_path).metadata["training"]["mixed_precision"] is False
    # ...and its path is tested here as a GPU would take it.
    monkeypatch.setattr("denoise.train.training_device", lambda: "GPU (1: a stand-in)")
    result = train(trained["data"], tmp_path / "mp", TrainOptions(epochs=1, batch_size=8, mixed_precision=True),
                   TINY_MODEL, **QUIET)
    assert load_model(result.best_path).metadata["training"]["mixed_precision"] is True
    assert keras.mixed_precision.global_policy().name == "float32"  # restored afterwards
    loaded = load_model(result.best_path, runtime="keras")
    y = loaded.predict(np.zeros((2, 16, 16, 1), np.float32))
    assert y.dtype == np.float32 and np.all(np.isfinite(y))


def test_noise_and_clean_loss_trains_and_resumes(trained, tmp_path):
    out = tmp_path / "nc"
    options = TrainOptions(epochs=1, batch_size=8, loss="noise+clean")
    train(trained["data"], out, options, TINY_MODEL, **QUIET)
    assert load_model(out / "last.keras").metadata["training"]["loss"] == "noise+clean"
    with pytest.raises(DataError, match="trained with --loss noise\\+clean"):
        train(trained["data"], out, TrainOptions(epochs=2, batch_size=8, loss="noise"), resume=True, **QUIET)
    train(trained["data"], out, TrainOptions(epochs=2, batch_size=8), resume=True, **QUIET)  # the checkpoint's loss
    assert load_model(out / "last.keras").metadata["training"]["loss"] == "noise+clean"
    assert [r["epoch"] for r in read_log(out / "log.csv")] == ["0", "1"]
    assert np.isfinite(float(read_log(out / "log.csv")[-1]["val_loss"]))


def test_resume_keeps_or_replaces_the_learning_rate_and_survives_an_interrupted_save(trained, tmp_path):
    import json

    out = tmp_path / "lr"
    train(trained["data"], out, TrainOptions(epochs=2, batch_size=8, learning_rate=3e-4), TINY_MODEL, **QUIET)
    # As if Ctrl-C came after epoch 2's best.keras and log row but before state.json: state says epoch 1.
    best = json.loads((out / "best.json").read_text())["training"]["val_loss"]
    (out / "state.json").write_text(json.dumps({"epoch": 1, "best_val_loss": best + 1.0}))
    messages = []
    result = train(trained["data"], out, TrainOptions(epochs=3, batch_size=8), resume=True,
                   log=messages.append, verbose=0)
    assert result.best_val_loss <= best  # the better best.keras of the lost epoch is not overwritten by a worse one
    assert [r["epoch"] for r in read_log(out / "log.csv")] == ["0", "1", "2"]  # epoch 1 not logged twice
    assert load_model(out / "last.keras").metadata["training"]["learning_rate"] == 3e-4  # not float32's 0.00030000001
    assert not any(m.startswith("Learning rate") for m in messages)
    messages.clear()
    train(trained["data"], out, TrainOptions(epochs=4, batch_size=8, learning_rate=1e-5), resume=True,
          log=messages.append, verbose=0)
    assert any(m.startswith("Learning rate 1e-05 (the checkpoint's was 0.0003)") for m in messages), messages
    last = load_model(out / "last.keras", compile=True, runtime="keras")
    assert float(last.model.optimizer.learning_rate) == pytest.approx(1e-5)
    assert last.metadata["training"]["learning_rate"] == pytest.approx(1e-5)


def test_validation_split_is_the_share_asked_for(trained, tmp_path):
    from denoise.dataset import count_pairs, list_shards

    shards = list_shards(trained["data"])  # 30 pairs
    assert count_pairs(shards, 1 / 0.4) == (18, 12)
    assert count_pairs(shards, 1 / 0.1) == (27, 3)
    assert count_pairs(shards, 10) == (27, 3)


def test_unreadable_or_foreign_shards_stop_training_before_it_starts(trained, tmp_path):
    import shutil

    for damage, message in (("cut", "cannot read shard"), ("empty", "cannot read shard"),
                            ("foreign", "the dataset's settings expect (16, 16)")):
        data = tmp_path / damage
        shutil.copytree(trained["data"], data)
        shard = sorted(data.glob("shard-*.npz"))[1]
        if damage == "cut":
            shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
        elif damage == "empty":
            shard.write_bytes(b"")
        else:
            with np.load(shard) as arrays:
                np.savez(shard, **{k: v[:, :8] for k, v in arrays.items()})
        with pytest.raises(DataError, match=f"{shard.name}: .*{message}".replace("(", "\\(").replace(")", "\\)")):
            train(data, tmp_path / f"run-{damage}", TrainOptions(epochs=1, batch_size=8), TINY_MODEL, **QUIET)


def test_two_trainings_never_write_one_folder(trained, tmp_path):
    from denoise.train import run_folder_lock

    out = tmp_path / "locked"
    out.mkdir()
    with run_folder_lock(out):  # as if another process were training here
        code = ("import sys; sys.path.insert(0, 'tests')\n"
                "from denoise.errors import DataError\n"
                "from denoise.train import run_folder_lock\n"
                f"try:\n    run_folder_lock({str(out)!r}).__enter__()\n"
                "except DataError as e:\n    print(e)\n")
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert "another 'denoise train' is writing to this folder" in result.stdout
    # Released: a training can use the folder now.
    train(trained["data"], out, TrainOptions(epochs=1, batch_size=8), TINY_MODEL, **QUIET)
    assert (out / "best.keras").exists()


def test_init_weights_from_another_geometry_says_which_setting_differs(trained, tmp_path):
    from dataclasses import replace

    from denoise.model_io import save_model
    from denoise.model import build_unet

    other = replace(TINY, sample_rate=16000)
    path = save_model(build_unet(other, TINY_MODEL), tmp_path / "m16.keras", other, TINY_MODEL)
    with pytest.raises(ModelFileError, match=r"m16.keras: its settings differ .* \(sample_rate 16000 vs 8000\)"):
        train(trained["data"], tmp_path / "ft", TrainOptions(epochs=1), init_weights=path, **QUIET)


def test_a_missing_shard_or_part_stops_training(trained, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(trained["data"], data)
    sorted(data.glob("shard-*.npz"))[-1].unlink()
    with pytest.raises(DataError, match="shard-00002.npz: missing, though manifest.json lists it"):
        train(data, tmp_path / "run", TrainOptions(epochs=1, batch_size=8), TINY_MODEL, **QUIET)
    (data / "manifest.json").rename(data / "manifest-part000-of-002.json")
    with pytest.raises(DataError, match="manifest-part001-of-002.json: missing: 1 of the dataset's 2 parts"):
        train(data, tmp_path / "run", TrainOptions(epochs=1, batch_size=8), TINY_MODEL, **QUIET)
