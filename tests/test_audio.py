import sys

import numpy as np
import pytest
import soundfile as sf

from conftest import write_encoded
from denoise.audio import (
    audio_info,
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


def test_formats_libsndfile_cannot_read_are_decoded(tmp_path, rng, monkeypatch):
    x = (0.3 * np.sin(2 * np.pi * 440 * np.arange(24000) / 16000)).astype(np.float32)
    path = write_encoded(tmp_path / "memo.m4a", np.stack([x, -x], axis=1), 16000)
    n, rate, channels = audio_info(path)  # from the container's duration, before decoding
    assert (rate, channels) == (16000, 2) and 24000 <= n <= 24000 + 2048
    whole, rate = read_audio(path)
    assert rate == 16000 and whole.shape[1] == 2 and 24000 <= whole.shape[0] <= 24000 + 3 * 1024
    assert np.allclose(whole[:, 0], -whole[:, 1], atol=0.02) and 0.25 < np.abs(whole).max() < 0.35
    part, _ = read_audio(path, start=100, stop=5000)
    assert np.array_equal(part, whole[100:5000])
    assert load_mono(path, 8000).shape[0] == pytest.approx(whole.shape[0] / 2, abs=2)
    # Without PyAV, the file's own problem is named with the cure.
    monkeypatch.setitem(sys.modules, "av", None)  # makes 'import av' fail
    with pytest.raises(AudioError, match=r"memo.m4a: cannot read audio \(PyAV is not installed: pip install av\)"):
        audio_info(path)
