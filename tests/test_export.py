"""The light runtime: export to LiteRT, same output as Keras, prediction without TensorFlow."""

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from conftest import TINY, TINY_MODEL, speech_like, zero_noise_model
from denoise.cli import main
from denoise.enhance import enhance
from denoise.errors import ModelFileError
from denoise.model_io import export_lite, lite_path, load_model, quantise_int8, save_compact, save_model


def test_lite_and_keras_give_the_same_output(trained, rng):
    assert lite_path(trained["model"]).exists()  # training exports its best model
    lite = load_model(trained["model"])
    keras_model = load_model(trained["model"], runtime="keras")
    assert (lite.runtime, keras_model.runtime) == ("lite", "keras")
    blocks = rng.uniform(-1, 0.5, size=(5, 16, 16, 1)).astype(np.float32)
    assert np.max(np.abs(lite.predict(blocks) - keras_model.predict(blocks))) < 1e-5
    x = speech_like(rng, 1.0, 8000)
    assert np.max(np.abs(enhance(x, TINY, lite.predict) - enhance(x, TINY, keras_model.predict))) < 1e-5


def test_export_command_and_stale_exports(tmp_path):
    path = save_model(zero_noise_model(), tmp_path / "m.keras", TINY, TINY_MODEL)
    with pytest.raises(ModelFileError, match="m.tflite: not exported"):
        load_model(path, runtime="lite")
    result = CliRunner().invoke(main, ["export", str(path)])
    assert result.exit_code == 0 and "m.tflite" in result.output
    assert load_model(path).runtime == "lite"
    save_model(zero_noise_model(), path, TINY, TINY_MODEL)  # new weights: the old export must go
    assert not lite_path(path).exists()
    result = CliRunner().invoke(main, ["export", str(tmp_path / "nope.keras")])
    assert result.exit_code == 1 and "model file not found" in result.output
    result = CliRunner().invoke(main, ["export", str(path), "--keras-weights", "int8"])  # would be ignored
    assert result.exit_code == 2 and "--keras-weights does nothing without --compact-to" in result.output


def test_predict_with_the_lite_runtime_never_imports_tensorflow(trained, tmp_path, rng):
    src = tmp_path / "in.wav"
    sf.write(str(src), speech_like(rng, 0.5, 16000), 16000)
    code = (
        "import sys; from denoise.cli import main\n"
        "try:\n"
        f"    main(['predict', {str(src)!r}, {str(tmp_path / 'out.wav')!r}, '--weights', "
        f"{str(trained['model'])!r}, '--runtime', 'lite'])\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert sf.info(str(tmp_path / "out.wav")).frames == 8000


def test_compact_copy_for_shipping(trained, tmp_path, rng):
    import shutil

    run = shutil.copytree(trained["run"], tmp_path / "run")
    before = (run / "best.keras").read_bytes()
    result = CliRunner().invoke(main, ["export", str(run), "--compact-to", str(run / "best.keras")])
    assert result.exit_code == 1 and "best.keras: is the model being exported" in result.output, result.output
    assert (run / "best.keras").read_bytes() == before  # the trained model is not replaced by a float16 copy
    result = CliRunner().invoke(main, ["export", str(trained["model"]), "--compact-to", str(tmp_path / "small.keras")])
    assert result.exit_code == 0, result.output
    small = tmp_path / "small"
    assert f"Wrote {small}.keras, {small}.json and {small}.tflite" in result.output  # all three, kept together
    full = load_model(trained["model"], runtime="keras")
    small_lite, small_keras = load_model(tmp_path / "small.keras"), load_model(tmp_path / "small.keras", runtime="keras")
    assert small_lite.runtime == "lite" and small_keras.metadata["weights_dtype"] == "float16"
    assert small_lite.settings == full.settings
    blocks = rng.uniform(-1, 0.5, size=(3, 16, 16, 1)).astype(np.float32)
    reference = full.predict(blocks)
    assert np.max(np.abs(small_lite.predict(blocks) - reference)) < 5e-3
    assert np.max(np.abs(small_keras.predict(blocks) - reference)) < 5e-3
    # fine-tuning from the compact copy trains in float32
    from denoise.train import TrainOptions, train

    out = train(trained["data"], tmp_path / "ft", TrainOptions(epochs=1, batch_size=8),
                init_weights=tmp_path / "small.keras", log=lambda _: None, verbose=0)
    assert load_model(out.best_path, runtime="keras").model.get_weights()[0].dtype == np.float32


def test_int8_compact_copy_keeps_every_weight_to_half_a_step(trained, tmp_path, rng):
    small = tmp_path / "q.keras"
    result = CliRunner().invoke(main, ["export", str(trained["model"]), "--compact-to", str(small),
                                       "--keras-weights", "int8", "--lite-weights", "int8"])
    assert result.exit_code == 0, result.output
    full, quantised = load_model(trained["model"], runtime="keras"), load_model(small, runtime="keras")
    assert quantised.metadata["weights_dtype"] == "int8" and quantised.settings == full.settings
    for original, restored in zip(full.model.get_weights(), quantised.model.get_weights(), strict=True):
        assert restored.dtype == np.float32 and restored.shape == original.shape
        step = np.abs(original.reshape(-1, original.shape[-1])).max(axis=0) / 127 if original.ndim > 1 else 0
        assert np.all(np.abs(original - restored) <= step / 2 + 1e-7)
    blocks = rng.uniform(-1, 0.5, size=(3, 16, 16, 1)).astype(np.float32)
    assert np.max(np.abs(quantised.predict(blocks) - full.predict(blocks))) < 0.05
    assert load_model(small).runtime == "lite"
    # plain Keras refuses the file instead of loading the int8 values as weights
    import keras

    with pytest.raises(ValueError):
        keras.saving.load_model(small)
    with pytest.raises(ModelFileError, match="q.keras: cannot load model .int8 weights for shipping"):
        load_model(small, compile=True)  # what train --resume asks for
    # fine-tuning from the int8 copy trains in float32
    from denoise.train import TrainOptions, train

    out = train(trained["data"], tmp_path / "ft", TrainOptions(epochs=1, batch_size=8),
                init_weights=small, log=lambda _: None, verbose=0)
    assert load_model(out.best_path, runtime="keras").model.get_weights()[0].dtype == np.float32


def test_int8_compact_copy_is_half_the_float16_copy(tmp_path):
    from denoise.model import build_unet
    from denoise.settings import ModelSettings

    wide = ModelSettings(base_filters=16, depth=3)
    path = save_model(build_unet(TINY, wide), tmp_path / "m.keras", TINY, wide)
    half = save_compact(path, tmp_path / "half.keras").stat().st_size
    quarter = save_compact(path, tmp_path / "quarter.keras", keras_weights="int8").stat().st_size
    assert quarter < 0.6 * half
    with pytest.raises(ModelFileError, match="keras_weights='int4' must be one of"):
        save_compact(path, tmp_path / "x.keras", keras_weights="int4")
    q, scale = quantise_int8(np.array([[0.0, 2.54], [-1.27, -0.01]], dtype=np.float32))
    assert q.dtype == np.int8 and q.tolist() == [[0, 127], [-127, 0]]
    assert np.allclose(scale, [0.01, 0.02])


def test_int8_export_is_smaller_and_close(tmp_path, rng):
    from denoise.model import build_unet
    from denoise.settings import ModelSettings

    wide = ModelSettings(base_filters=16, depth=2)  # layers big enough to be quantised (>= 1024 weights)
    path = save_model(build_unet(TINY, wide), tmp_path / "m.keras", TINY, wide)
    reference = load_model(path, runtime="keras")
    float_size = export_lite(path).stat().st_size
    result = CliRunner().invoke(main, ["export", str(path), "--lite-weights", "int8"])
    assert result.exit_code == 0, result.output
    assert lite_path(path).stat().st_size < 0.6 * float_size
    blocks = rng.uniform(-1, 0.5, size=(3, 16, 16, 1)).astype(np.float32)
    difference = np.abs(load_model(path).predict(blocks) - reference.predict(blocks))
    assert 0 < np.max(difference) < 0.05  # quantised, but close
    with pytest.raises(ModelFileError, match="weights='int4' must be one of"):
        export_lite(path, "int4")


def test_the_lite_export_alone_predicts_without_tensorflow(trained, tmp_path, rng):
    """A deployment may ship only NAME.tflite and NAME.json: predict takes the .tflite itself."""
    import shutil

    alone = tmp_path / "deploy"
    alone.mkdir()
    shutil.copy(lite_path(trained["model"]), alone / "m.tflite")
    shutil.copy(trained["model"].with_suffix(".json"), alone / "m.json")
    src = tmp_path / "in.wav"
    sf.write(str(src), speech_like(rng, 0.5, 8000), 8000)
    code = (
        "import sys; from denoise.cli import main\n"
        "for out, weights in (('a.wav', {a!r}), ('b.wav', {b!r})):\n"
        "    try:\n"
        f"        main(['predict', {str(src)!r}, {str(tmp_path)!r} + '/' + out, '--weights', weights])\n"
        "    except SystemExit as e:\n"
        "        assert not e.code, e.code\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'\n"
    ).format(a=str(alone / "m.tflite"), b=str(trained["model"]))
    subprocess.run([sys.executable, "-c", code], check=True)
    a, _ = sf.read(str(tmp_path / "a.wav"))
    b, _ = sf.read(str(tmp_path / "b.wav"))
    assert np.array_equal(a, b)  # the same export as the one beside the .keras
    for args in (["export", str(alone / "m.tflite")],
                 ["predict", str(src), str(tmp_path / "c.wav"), "--weights", str(alone / "m.tflite"),
                  "--runtime", "keras"],
                 ["train", "--data-dir", str(trained["data"]), "--out", str(tmp_path / "ft"),
                  "--init-weights", str(alone / "m.tflite")]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1 and "a LiteRT export can only predict" in result.output, (args, result.output)
    folder = tmp_path / "run"  # a training folder holding only the export of its best model
    folder.mkdir()
    shutil.copy(alone / "m.tflite", folder / "best.tflite")
    shutil.copy(alone / "m.json", folder / "best.json")
    assert load_model(folder).path == folder / "best.tflite"
    (alone / "m.json").unlink()
    result = CliRunner().invoke(main, ["predict", str(src), str(tmp_path / "d.wav"), "--weights", str(alone / "m.tflite")])
    assert result.exit_code == 1 and "m.json: settings file missing" in result.output


def test_a_model_that_cannot_load_stops_a_batch_in_one_line(tmp_path, rng):
    """The model is no single file's problem: one error, not one per file."""
    import json

    (tmp_path / "in").mkdir()
    for i in range(3):
        sf.write(str(tmp_path / "in" / f"{i}.wav"), speech_like(rng, 0.3, 8000), 8000)
    (tmp_path / "bad.tflite").write_bytes(b"not a flatbuffer")
    (tmp_path / "bad.json").write_text(json.dumps({"settings": TINY.to_dict(), "model": {}}))
    (tmp_path / "out").mkdir()
    result = CliRunner().invoke(main, ["predict", str(tmp_path / "in"), "--out-dir", str(tmp_path / "out"),
                                       "--weights", str(tmp_path / "bad.tflite")])
    assert result.exit_code == 1
    assert result.output.count("bad.tflite: cannot load the LiteRT model") == 1, result.output
    assert not list((tmp_path / "out").rglob("*.wav"))
    result = CliRunner().invoke(main, ["evaluate", "--clean-dir", str(tmp_path / "in"), "--noisy-dir",
                                       str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                                       "--weights", str(tmp_path / "bad.tflite")])
    assert result.exit_code == 1 and result.output.count("cannot load the LiteRT model") == 1, result.output
    assert not (tmp_path / "out" / "enhanced").exists()  # refused before any folder was made
