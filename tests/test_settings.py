import pytest

from denoise.errors import SettingsError
from denoise.settings import ModelSettings, Settings, load_settings, save_settings


def test_defaults_give_128_by_128_examples():
    s = Settings().validate()
    assert (s.n_bins, s.n_frames) == (128, 128)
    assert s.frame_length == 128 * s.hop_length


def test_json_round_trip(tmp_path):
    s = Settings(sample_rate=8000, out_scale_db=50.0)
    save_settings(s, tmp_path)
    assert load_settings(tmp_path) == s
    assert load_settings(tmp_path / "settings.json") == s


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"hop_length": 300}, r"hop_length=300 must be in 1..n_fft=255"),
        ({"frame_length": 8000}, r"frame_length=8000 must be a multiple of hop_length=63"),
        ({"sample_rate": 10}, r"sample_rate=10 must be between"),
        ({"amin": 0.0}, r"amin=0.0 must be in"),
        ({"in_scale_db": 0.0}, r"in_scale_db=0.0 must be > 0"),
    ],
)
def test_invalid_settings_repeat_the_bad_value(kwargs, message):
    with pytest.raises(SettingsError, match=message):
        Settings(**kwargs).validate()


def test_unknown_setting_in_file_is_named(tmp_path):
    (tmp_path / "settings.json").write_text('{"sample_rate": 16000, "n_ffft": 255}')
    with pytest.raises(SettingsError, match="unknown setting.*n_ffft"):
        load_settings(tmp_path)


@pytest.mark.parametrize("text, message", [
    ('{"sample_rate": "16000"}', r"sample_rate='16000' must be a whole number"),
    ('{"n_fft": 255.5}', r"n_fft=255.5 must be a whole number"),
    ('{"amin": null}', r"amin=None must be a number"),
    ('{"in_scale_db": true}', r"in_scale_db=True must be a number"),
    ('{"out_scale_db": NaN}', r"out_scale_db=nan must be a number"),
])
def test_settings_of_the_wrong_type_name_the_file(tmp_path, text, message):
    (tmp_path / "settings.json").write_text(text)
    with pytest.raises(SettingsError, match=f"settings.json: {message}"):
        load_settings(tmp_path)
    assert load_settings(save_settings(Settings(amin=1e-4, in_scale_db=70), tmp_path)).in_scale_db == 70


def test_a_settings_file_that_cannot_be_written_names_it_and_leaves_nothing(tmp_path):
    (tmp_path / "settings.json").mkdir()  # os.replace onto a folder fails
    with pytest.raises(SettingsError, match="settings.json: cannot write"):
        save_settings(Settings(), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["settings.json"]


def test_missing_and_corrupt_settings_files(tmp_path):
    with pytest.raises(SettingsError, match="settings file not found"):
        load_settings(tmp_path)
    (tmp_path / "settings.json").write_text("{not json")
    with pytest.raises(SettingsError, match="cannot read settings"):
        load_settings(tmp_path)


def test_model_depth_must_divide_the_geometry():
    odd = Settings(n_fft=199, hop_length=50, frame_length=6400)  # 100 bins, 128 frames
    with pytest.raises(SettingsError, match=r"n_bins=100 must be divisible by 2\*\*\(depth-1\)=16 for depth=5 "
                                            r"\(this data allows --depth 3 at most\)"):
        ModelSettings(depth=5).validate(odd)
    ModelSettings(depth=3).validate(odd)
    with pytest.raises(SettingsError, match=r"make the data again with a --frame-length and --n-fft giving even sizes"):
        ModelSettings(depth=3).validate(Settings(n_fft=197, hop_length=50, frame_length=6400))  # 99 bins


def test_model_settings_checks():
    with pytest.raises(SettingsError, match="dropout=1.5"):
        ModelSettings(dropout=1.5).validate()
