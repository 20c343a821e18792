import shutil
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from conftest import write_encoded
from denoise.audio import (
    check_writable,
    audio_info,
    check_audio,
    decode_to,
    is_lossless_av,
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


def test_find_audio_files_follows_linked_folders_once(corpus, tmp_path):
    """A subset made of links to speaker folders is found; a link back up the tree is not a loop."""
    voice, _ = corpus
    subset = tmp_path / "subset"
    subset.mkdir()
    for i, speaker in enumerate(sorted(p for p in voice.iterdir() if p.is_dir())):
        (subset / f"s{i}").symlink_to(speaker.resolve(), target_is_directory=True)
    (subset / "loop").symlink_to(subset, target_is_directory=True)
    found = find_audio_files(subset)
    assert len(found) == len(find_audio_files(voice)) - len([p for p in voice.iterdir() if p.is_file()])
    assert len(found) == len({p.resolve() for p in found}) > 0
    # A real folder is found under its own name, whatever the links to it are called; a link above
    # the searched folder is not followed out of it.
    real = next(p for p in voice.iterdir() if p.is_dir())
    mixed = tmp_path / "mixed"
    (mixed / "outside").mkdir(parents=True)
    shutil.copytree(real, mixed / "zreal")
    (mixed / "alink").symlink_to(mixed / "zreal", target_is_directory=True)
    (mixed / "zreal" / "up").symlink_to(mixed, target_is_directory=True)
    sf.write(str(mixed / "outside" / "x.wav"), np.zeros(80, np.float32), 8000)
    found = find_audio_files(mixed / "zreal")
    assert found and all("alink" not in p.parts and "up" not in p.parts for p in found)
    assert {p.parent.name for p in find_audio_files(mixed)} == {"zreal", "outside"}


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
    x[8000] = 0.9  # a click to check the timing by
    path = write_encoded(tmp_path / "memo.m4a", np.stack([x, -x], axis=1), 16000)
    assert audio_info(path) == (24000, 16000, 2)  # from the container, before decoding
    whole, rate = read_audio(path)
    # AAC's encoder delay and last frame's padding are trimmed as the m4a records them: exact length and timing.
    assert rate == 16000 and whole.shape == (24000, 2) and np.argmax(np.abs(whole[:, 0])) == 8000
    assert np.max(np.abs(whole[:, 0] - x)) < 0.05 and np.max(np.abs(whole[:, 0] + whole[:, 1])) < 0.05
    part, _ = read_audio(path, start=100, stop=5000)
    assert np.array_equal(part, whole[100:5000])
    assert load_mono(path, 8000).shape == (12000,)
    # Damage: skipped packets become silence, so what follows keeps its place; the problem is noted.
    data = bytearray(path.read_bytes())
    data[len(data) // 2: len(data) // 2 + 600] = rng.integers(0, 256, 600, dtype=np.uint8).tobytes()
    (tmp_path / "damaged.m4a").write_bytes(bytes(data))
    problems = []
    assert decode_to(tmp_path / "damaged.m4a", tmp_path / "d.w64", problems=problems) == (24000, 16000, 2)
    after, _ = read_audio(tmp_path / "d.w64")
    assert np.max(np.abs(after[20000:, 0] - x[20000:])) < 0.05
    assert len(problems) == 1 and "damaged.m4a: damaged: " in problems[0] and "filled with silence" in problems[0]
    # A recording never finished (no index): FFmpeg's own reason.
    (tmp_path / "cut.m4a").write_bytes(path.read_bytes()[: len(data) // 2])
    for _ in range(2):  # the second time too: PyAV skips a log line equal to the one before
        with pytest.raises(AudioError, match=r"cut.m4a: cannot read audio \(moov atom not found\)"):
            audio_info(tmp_path / "cut.m4a")
    # A stream whose channels change midway (two raw AAC streams joined) is read as its first part's.
    mono = write_encoded(tmp_path / "a.aac", x[:8000], 16000, fmt="adts")
    stereo = write_encoded(tmp_path / "b.aac", np.stack([x[:8000]] * 2, axis=1), 16000, fmt="adts")
    (tmp_path / "joined.aac").write_bytes(mono.read_bytes() + stereo.read_bytes())
    joined, _ = read_audio(tmp_path / "joined.aac")
    assert joined.shape[1] == 1 and 16000 <= joined.shape[0] <= 16000 + 4 * 1024
    # Without PyAV, the file's own problem is named with the cure.
    monkeypatch.setitem(sys.modules, "av", None)  # makes 'import av' fail
    with pytest.raises(AudioError, match=r"memo.m4a: cannot read audio \(PyAV is not installed: pip install av\)"):
        audio_info(path)


def test_lossless_decoded_inputs_keep_their_sample_format(tmp_path, rng):
    x = np.stack([0.1 * rng.standard_normal(4800)] * 2, axis=1).astype(np.float32)
    alac = write_encoded(tmp_path / "studio.m4a", x, 48000, codec="alac", sample_format="s32p", frame=4096)
    lossy = write_encoded(tmp_path / "memo.m4a", x, 48000)
    assert output_subtype(alac, tmp_path / "out.wav") == "PCM_24"  # 24-bit ALAC: 24-bit WAV, not 16-bit
    assert output_subtype(alac, tmp_path / "out.flac") == "PCM_24"
    assert output_subtype(lossy, tmp_path / "out.wav") is None  # a lossy codec: the format's default
    assert is_lossless_av(alac) and not is_lossless_av(lossy)


@pytest.mark.parametrize("name,rate,most", [("x.flac", 16000, 8), ("x.mp3", 16000, 2), ("x.opus", 48000, 255),
                                            ("x.ogg", 16000, 255), ("x.m4a", 16000, 2)])
def test_channel_counts_a_format_cannot_hold_are_refused(name, rate, most):
    check_writable(name, rate, most)
    with pytest.raises(AudioError, match=f"{name}: .* {most + 1}"):
        check_writable(name, rate, most + 1)
    check_writable("x.wav", rate, 1024)


def test_overlapping_decoder_logs_put_ffmpegs_level_back():
    """serve decodes in several threads at once; FFmpeg's log level is the process's. The first in
    leaving before the second must not leave the level raised."""
    import threading

    import av.logging

    from denoise.audio import _ffmpeg_log

    before = av.logging.get_level()
    second_in = threading.Event()
    with _ffmpeg_log():
        assert av.logging.get_level() == av.logging.ERROR

        def second():
            with _ffmpeg_log():
                second_in.set()
                time.sleep(0.2)  # still inside when the first leaves

        t = threading.Thread(target=second)
        t.start()
        second_in.wait(10)
    assert av.logging.get_level() == av.logging.ERROR  # the second is still decoding
    t.join(10)
    assert av.logging.get_level() == before
