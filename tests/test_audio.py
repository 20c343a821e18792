import numpy as np
import pytest
import soundfile as sf

from denoise.audio import (
    check_audio,
    find_audio_files,
    load_mono,
    output_subtype,
    read_audio,
    resample,
    rms_db,
    write_audio,
)
from denoise.errors import AudioError


def test_find_audio_files_is_recursive_and_sorted(corpus):
    voice, noise = corpus
    files = find_audio_files(voice)
    assert [p.name for p in files] == ["utt0.flac", "utt1.flac", "utt2.flac", "utt.wav"]
    assert {p.suffix for p in find_audio_files(noise)} == {".wav", ".ogg"}


def test_find_audio_files_errors(tmp_path):
    with pytest.raises(AudioError, match="folder not found"):
        find_audio_files(tmp_path / "nope")
    (tmp_path / "f.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="not a folder"):
        find_audio_files(tmp_path / "f.wav")


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(AudioError, match="nope.wav: file not found"):
        read_audio(tmp_path / "nope.wav")
    with pytest.raises(AudioError, match="is a folder"):
        read_audio(tmp_path)
    (tmp_path / "fake.wav").write_text("not audio at all")
    with pytest.raises(AudioError, match="fake.wav: cannot read audio"):
        read_audio(tmp_path / "fake.wav")


def test_check_audio_rejects_empty_and_nan():
    with pytest.raises(AudioError, match="x: no samples"):
        check_audio(np.zeros((0, 1)), "x")
    with pytest.raises(AudioError, match="NaN or infinite"):
        check_audio(np.array([0.0, np.nan]), "x")


def test_write_is_atomic_and_keeps_format(tmp_path, rng):
    x = (0.1 * rng.standard_normal((1000, 2))).astype(np.float32)
    write_audio(tmp_path / "a.flac", x, 16000, subtype="PCM_16")
    assert sf.info(str(tmp_path / "a.flac")).subtype == "PCM_16"
    assert [p.name for p in tmp_path.iterdir()] == ["a.flac"]
    y, rate = read_audio(tmp_path / "a.flac")
    assert rate == 16000 and y.shape == (1000, 2) and np.max(np.abs(y - x)) < 1e-4
    assert output_subtype(tmp_path / "a.flac", tmp_path / "b.wav") == "PCM_16"
    with pytest.raises(AudioError, match="does not exist"):
        write_audio(tmp_path / "missing" / "a.wav", x, 16000)


def test_load_mono_resamples_and_downmixes(tmp_path, rng):
    x = (0.1 * rng.standard_normal((44100, 2))).astype(np.float32)
    sf.write(str(tmp_path / "s.wav"), x, 44100)
    y = load_mono(tmp_path / "s.wav", 16000)
    assert y.ndim == 1 and abs(y.shape[0] - 16000) <= 1
    assert resample(y, 16000, 16000) is y or np.array_equal(resample(y, 16000, 16000), y)
    assert rms_db(np.zeros(10)) == float("-inf")
    assert rms_db(np.ones(10)) == pytest.approx(0.0)
