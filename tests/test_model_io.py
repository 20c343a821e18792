import pytest

from conftest import TINY, TINY_MODEL, zero_noise_model
from denoise.errors import ModelFileError
from denoise.model_io import default_weights, load_model, save_model


def test_save_load_round_trip_keeps_settings(tmp_path):
    path = save_model(zero_noise_model(), tmp_path / "m.keras", TINY, TINY_MODEL, {"note": "x"})
    loaded = load_model(path)
    assert loaded.settings == TINY and loaded.model_settings == TINY_MODEL
    assert loaded.metadata["note"] == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.keras"]


def test_model_file_errors(tmp_path):
    with pytest.raises(ModelFileError, match="model file not found"):
        load_model(tmp_path / "nope.keras")
    with pytest.raises(ModelFileError, match="must end in .keras"):
        save_model(zero_noise_model(), tmp_path / "m.h5", TINY, TINY_MODEL)
    with pytest.raises(ModelFileError, match=r"no best.keras in this folder \(a training folder's model\)$"):
        load_model(tmp_path)
    save_model(zero_noise_model(), tmp_path / "m.keras", TINY, TINY_MODEL)
    with pytest.raises(ModelFileError, match="no best.keras in this folder .*; pass a model file: .*m.keras"):
        load_model(tmp_path)  # a folder of models, such as weights/, is not a training folder
    (tmp_path / "bad.keras").write_text("not a zip")
    (tmp_path / "bad.json").write_text((tmp_path / "m.json").read_text())
    with pytest.raises(ModelFileError, match="bad.keras: not a Keras model file"):
        load_model(tmp_path / "bad.keras")
    import zipfile

    with zipfile.ZipFile(tmp_path / "bad.keras", "w") as archive:  # a zip, but not Keras's
        archive.writestr("readme.txt", "hello")
    with pytest.raises(ModelFileError, match="bad.keras: cannot load model"):
        load_model(tmp_path / "bad.keras")
    with pytest.raises(ModelFileError, match="output folder .*nowhere does not exist"):
        save_model(zero_noise_model(), tmp_path / "nowhere" / "m.keras", TINY, TINY_MODEL)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ModelFileError, match='bad.json: no "settings" in it'):
        load_model(tmp_path / "bad.keras")
    (tmp_path / "m.json").unlink()
    with pytest.raises(ModelFileError, match="m.json: settings file missing beside the model m.keras"):
        load_model(tmp_path / "m.keras")


def test_default_weights_missing_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("DENOISE_WEIGHTS", str(tmp_path))
    with pytest.raises(ModelFileError, match="no shipped model found.*--weights"):
        default_weights()


def test_shipped_models_are_found_wherever_the_installer_put_them(tmp_path, monkeypatch):
    """Outside a checkout the models are data files under the install's own prefix (a --target,
    --user or --prefix install, not sys.prefix): the installed package's file list says where."""
    from importlib import metadata

    from denoise import model_io

    monkeypatch.delenv("DENOISE_WEIGHTS", raising=False)
    monkeypatch.setattr(model_io, "WEIGHTS_DIR", tmp_path / "no_checkout")
    shipped = tmp_path / "target" / "share" / "denoise-unet" / "weights"
    shipped.mkdir(parents=True)
    (shipped / "denoise_16k.keras").write_bytes(b"")

    class File(str):
        name = "denoise_16k.keras"

        def locate(self):
            return shipped / self.name

    class Installed:
        files = [File("../../share/denoise-unet/weights/denoise_16k.keras")]

    monkeypatch.setattr(metadata, "distribution", lambda name: Installed())
    assert model_io.default_weights(8000) == shipped / "denoise_16k.keras"
    # pip install --target lists them wrongly (relative to a temporary folder): they lie beside the package.
    File.locate = lambda self: tmp_path / "elsewhere" / self.name
    monkeypatch.setattr(model_io, "__file__", str(tmp_path / "target" / "denoise" / "model_io.py"))
    assert model_io.default_weights() == shipped / "denoise_16k.keras"


def test_shipped_model_is_chosen_by_sample_rate(tmp_path, monkeypatch):
    from denoise.model_io import ModelChooser

    monkeypatch.setenv("DENOISE_WEIGHTS", str(tmp_path))
    save_model(zero_noise_model(), tmp_path / "denoise_16k.keras", TINY, TINY_MODEL)
    # Only the 16 kHz model present: it serves every rate.
    assert default_weights(8000).name == "denoise_16k.keras"
    save_model(zero_noise_model(), tmp_path / "denoise_8k.keras", TINY, TINY_MODEL)
    assert default_weights(8000).name == "denoise_8k.keras"
    assert default_weights(6000).name == "denoise_8k.keras"
    assert default_weights(11025).name == "denoise_16k.keras"
    assert default_weights().name == "denoise_16k.keras"
    chooser = ModelChooser()
    assert chooser.for_rate(8000) is chooser.for_rate(8000)  # loaded once
    assert chooser.for_rate(44100).path.name == "denoise_16k.keras"
    assert len(chooser.loaded) == 2
    assert ModelChooser(tmp_path / "denoise_8k.keras").for_rate(48000).path.name == "denoise_8k.keras"
