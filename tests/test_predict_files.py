"""`denoise predict` on real-world files: formats, rates, channels, batches and bad input."""

import errno
import io
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from conftest import TINY, speech_like, write, write_encoded, write_video, zero_noise_model
from denoise.audio import audio_info, read_audio
from denoise.cli import main
from denoise.enhance import enhance_file
from denoise.errors import AudioError

from test_enhance import block_dependent


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def weights(trained):
    return ["--weights", str(trained["model"])]


@pytest.mark.parametrize(
    "ext, subtype, out_ext, out_subtype",
    [
        ("wav", "PCM_16", "wav", "PCM_16"),
        ("wav", "FLOAT", "wav", "FLOAT"),
        ("flac", "PCM_24", "flac", "PCM_24"),
        ("flac", "PCM_16", "wav", "PCM_16"),
        ("wav", "FLOAT", "flac", "PCM_24"),
        ("ogg", "VORBIS", "ogg", "VORBIS"),
        ("mp3", "MPEG_LAYER_III", "mp3", "MPEG_LAYER_III"),
        ("wav", "PCM_16", "mp3", "MPEG_LAYER_III"),
        ("mp3", "MPEG_LAYER_III", "wav", "PCM_16"),  # a codec does not carry over into another format
        ("ogg", "VORBIS", "flac", "PCM_16"),
        ("wav", "PCM_32", "flac", "PCM_24"),
        ("wav", "PCM_16", "opus", "OPUS"),
        ("wav", "PCM_16", "caf", "PCM_16"),
        ("wav", "PCM_24", "w64", "PCM_24"),
    ],
)
def test_formats_and_sample_formats(tmp_path, rng, ext, subtype, out_ext, out_subtype):
    src = tmp_path / f"in.{ext}"
    sf.write(str(src), speech_like(rng, 1.0, 16000), 16000, subtype=subtype)
    out = tmp_path / f"out.{out_ext}"
    enhance_file(src, out, TINY, block_dependent)
    info = sf.info(str(out))
    assert info.subtype == out_subtype and info.samplerate == 16000 and info.channels == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({src.name, out.name})  # no temporary files left


@pytest.mark.parametrize("rate, channels", [(8000, 1), (22050, 2), (44100, 2), (48000, 6), (96000, 1)])
def test_rates_and_channels_are_kept(tmp_path, rng, rate, channels):
    src = tmp_path / "in.wav"
    sf.write(str(src), (0.1 * rng.standard_normal((rate // 3, channels))).astype(np.float32), rate)
    result = enhance_file(src, tmp_path / "out.flac", TINY, block_dependent)
    info = sf.info(str(tmp_path / "out.flac"))
    assert (info.samplerate, info.channels, info.frames) == (rate, channels, rate // 3)
    assert result.channels == channels
    enhance_file(src, tmp_path / "mono.wav", TINY, block_dependent, mono=True)
    assert sf.info(str(tmp_path / "mono.wav")).channels == 1


def test_channels_are_denoised_separately(tmp_path, rng):
    left = speech_like(rng, 1.0, 8000)
    src = tmp_path / "in.wav"
    sf.write(str(src), np.stack([left, np.zeros_like(left)], axis=1), 8000, subtype="FLOAT")
    enhance_file(src, tmp_path / "out.wav", TINY, block_dependent)
    out, _ = sf.read(str(tmp_path / "out.wav"))
    assert np.all(out[:, 1] == 0) and np.any(out[:, 0] != 0)


def test_clipping_is_avoided_and_reported(tmp_path):
    t = np.arange(16000) / 16000
    square = np.sign(np.sin(2 * np.pi * 150 * t)).astype(np.float32)  # full scale
    src = tmp_path / "loud.wav"
    sf.write(str(src), square, 16000, subtype="PCM_16")

    def low_pass(x):  # removes every bin above the fundamental: a square wave becomes a 4/pi sine
        return np.where(np.arange(x.shape[1])[None, :, None, None] >= 2, 1.0, 0.0) * np.ones_like(x)

    result = enhance_file(src, tmp_path / "out.wav", TINY, low_pass)
    out, _ = sf.read(str(tmp_path / "out.wav"))
    assert result.scaled_db < 0
    assert np.max(np.abs(out)) <= 1.0
    # A lossy format is scaled to -1 dBFS: its decoder overshoots (an MP3 scaled to 1.0 came back at 1.016).
    lossy = enhance_file(src, tmp_path / "out.mp3", TINY, low_pass)
    assert lossy.scaled_db == pytest.approx(result.scaled_db - 1.0, abs=0.01)
    assert np.max(np.abs(read_audio(tmp_path / "out.mp3")[0])) <= 1.0
    # A float output holds peaks past full scale: a 32-bit-float field recorder's take is not turned down.
    sf.write(str(tmp_path / "hot.wav"), square, 16000, subtype="FLOAT")
    hot = enhance_file(tmp_path / "hot.wav", tmp_path / "hot_out.wav", TINY, low_pass)
    assert hot.scaled_db == 0 and sf.info(str(tmp_path / "hot_out.wav")).subtype == "FLOAT"
    assert np.max(np.abs(sf.read(str(tmp_path / "hot_out.wav"))[0])) > 1.05  # past full scale, as it is
    # Nothing removed: the round trip through the STFT overshoots full scale by far less than a
    # 16-bit step, which is no reason to turn the file down or to say so.
    kept = enhance_file(src, tmp_path / "kept.wav", TINY, low_pass, strength=0.0)
    assert kept.scaled_db == 0
    assert np.array_equal(sf.read(str(tmp_path / "kept.wav"), dtype="int16")[0], sf.read(str(src), dtype="int16")[0])


def test_outputs_keep_the_inputs_privacy_and_never_replace_it(tmp_path, rng):
    """An embargoed recording (readable by its owner only) gives an output that is too; a file
    replaced with --overwrite keeps its permissions; a second name of the input is refused."""
    src = write(tmp_path / "embargoed.wav", speech_like(rng, 1.0, 8000), 8000)
    src.chmod(0o600)
    modes = set()

    def watching(x):  # the work files, while the work goes on
        modes.update(p.stat().st_mode & 0o777 for p in tmp_path.glob(".out*"))
        return zero_noise_model()(x)

    old = os.umask(0o022)
    try:
        enhance_file(src, tmp_path / "out.wav", TINY, watching)
    finally:
        os.umask(old)
    assert (tmp_path / "out.wav").stat().st_mode & 0o777 == 0o600 and modes == {0o600}, modes
    (tmp_path / "out.wav").chmod(0o640)
    enhance_file(src, tmp_path / "out.wav", TINY, zero_noise_model())
    assert (tmp_path / "out.wav").stat().st_mode & 0o777 == 0o640
    # ZOOM0001.WAV and zoom0001.wav on a recorder's card (case-insensitive) are one file; so are hard links.
    os.link(src, tmp_path / "other_name.wav")
    with pytest.raises(AudioError, match="output would overwrite its input"):
        enhance_file(src, tmp_path / "other_name.wav", TINY, zero_noise_model())


def test_formats_that_cannot_hold_a_rate_are_refused_before_the_work(tmp_path, rng, weights):
    write(tmp_path / "podcast.wav", speech_like(rng, 0.5, 44100), 44100)
    result = run("predict", tmp_path / "podcast.wav", tmp_path / "podcast.opus", *weights)
    assert result.exit_code == 1 and ("podcast.opus: Opus (.opus) cannot hold 44100 Hz audio (it holds 8000, "
                                      "12000, 16000, 24000, 48000 Hz); write .m4a, .flac or .wav") in result.output
    write(tmp_path / "odd.wav", speech_like(rng, 0.5, 12345), 12345)
    result = run("predict", tmp_path / "odd.wav", tmp_path / "odd.mp3", *weights)
    assert result.exit_code == 1 and "odd.mp3: MP3 (.mp3) cannot hold 12345 Hz audio" in result.output
    write(tmp_path / "room.wav", np.stack([speech_like(rng, 0.5, 16000)] * 3, axis=1), 16000)
    result = run("predict", tmp_path / "room.wav", tmp_path / "room.mp3", *weights)
    assert result.exit_code == 1 and ("room.mp3: MP3 (.mp3) holds at most 2 channels, not 3; write .wav (or "
                                      "--mono for one channel)") in result.output, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.wav", "podcast.wav", "room.wav"]  # nothing half-written
    assert run("predict", tmp_path / "room.wav", tmp_path / "room.mp3", "--mono", *weights).exit_code == 0
    (tmp_path / "room.mp3").unlink()
    result = run("predict", tmp_path / "podcast.wav", tmp_path / "podcast.m4a", "--plot", *weights)
    assert result.exit_code == 0 and f"Wrote {tmp_path / 'podcast.m4a'} and {tmp_path / 'podcast.png'} (" in result.output
    assert "; denoised in " in result.output


def test_short_and_silent_inputs_keep_their_length(tmp_path):
    for n in (1, 10, 200):
        src = tmp_path / f"s{n}.wav"
        sf.write(str(src), np.zeros(n, np.float32), 44100)
        enhance_file(src, tmp_path / f"o{n}.wav", TINY, block_dependent)
        out, rate = sf.read(str(tmp_path / f"o{n}.wav"))
        assert out.shape == (n,) and rate == 44100 and np.all(out == 0)


def make_bad_inputs(folder, rng):
    """One file per kind of bad input, named for it; returns {name: expected message}."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.wav").write_bytes(b"")
    (folder / "text.wav").write_text("this is not audio")
    (folder / "noise.mp3").write_bytes(bytes(rng.integers(0, 256, 5000, dtype=np.uint8)))
    (folder / "phone.m4a").write_bytes(b"not a phone recording" * 50)
    sf.write(str(folder / "zero.wav"), np.zeros((0, 1), np.float32), 16000)
    sf.write(str(folder / "nan.wav"), np.array([0.1, np.nan, 0.2] * 1000, np.float32), 16000, subtype="FLOAT")
    sf.write(str(folder / "huge.wav"), np.array([0.1, 1e30, 0.2] * 1000, np.float32), 16000, subtype="FLOAT")
    sf.write(str(folder / "lowrate.wav"), np.zeros(4000, np.float32), 4000)
    sf.write(str(folder / "cut.flac"), speech_like(rng, 3.0, 16000), 16000)
    data = (folder / "cut.flac").read_bytes()
    (folder / "cut.flac").write_bytes(data[: len(data) // 2])
    return {
        "empty.wav": "empty file (0 bytes)",
        "text.wav": "cannot read audio",
        "noise.mp3": "cannot read audio (not a format libsndfile can decode, or corrupt)",
        "phone.m4a": "cannot read audio (moov atom not found)",
        "zero.wav": "no samples",
        "nan.wav": "contains NaN or infinite samples",
        "huge.wav": "over 1e+06 times full scale (corrupt file?)",
        "lowrate.wav": "unsupported sample rate 4000 Hz",
        "cut.flac": "truncated",
    }


def test_each_bad_input_fails_alone_with_a_named_one_line_error(tmp_path, rng, weights):
    expected = make_bad_inputs(tmp_path / "in", rng)
    for name, message in expected.items():
        out = tmp_path / "out" / (name + ".wav")
        out.parent.mkdir(exist_ok=True)
        result = run("predict", tmp_path / "in" / name, out, *weights)
        assert result.exit_code == 1, (name, result.output)
        line = [l for l in result.output.splitlines() if l.startswith("Error:")][0]
        assert name in line and message in line, (name, line)
        assert list((tmp_path / "out").iterdir()) == [], name  # not even a partial file


def test_batch_goes_on_past_failures_and_lists_them(tmp_path, rng, weights):
    expected = make_bad_inputs(tmp_path / "in", rng)
    write(tmp_path / "in" / "sub" / "good.wav", speech_like(rng, 0.5, 16000), 16000)
    write(tmp_path / "in" / "good2.flac", speech_like(rng, 0.5, 8000), 8000)
    result = run("predict", tmp_path / "in", tmp_path / "nope.wav", "--out-dir", tmp_path / "out", *weights)
    assert result.exit_code == 1
    assert f"Done 2, skipped 0, failed {len(expected) + 1} of {len(expected) + 3}" in result.output
    for name, message in expected.items():
        assert any(name in l and message in l for l in result.output.splitlines()), name
    assert "nope.wav: file not found" in result.output
    produced = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert produced == ["good2.flac", "sub/good.wav"]


def test_globs_overwrite_and_plots(tmp_path, rng, weights):
    for name in ("a.wav", "b.wav", "c.flac"):
        write(tmp_path / "in" / name, speech_like(rng, 0.5, 16000), 16000)
    out = tmp_path / "out"
    result = run("predict", str(tmp_path / "in" / "*.wav"), "--out-dir", out, "--plot", *weights)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "a.wav", "b.png", "b.wav"]
    assert (out / "a.png").read_bytes()[:4] == b"\x89PNG"
    before = (out / "a.wav").stat().st_mtime_ns
    result = run("predict", tmp_path / "in" / "a.wav", "--out-dir", out, *weights)
    assert "skipped 1" in result.output and "exists (use --overwrite" in result.output
    assert (out / "a.wav").stat().st_mtime_ns == before
    result = run("predict", tmp_path / "in" / "a.wav", "--out-dir", out, "--overwrite", *weights)
    assert result.exit_code == 0 and "Done 1" in result.output
    result = run("predict", tmp_path / "in" / "a.wav", tmp_path / "in" / "a.wav", "--overwrite", *weights)
    assert result.exit_code == 1 and "would overwrite its input" in result.output
    result = run("predict", tmp_path / "in" / "a.wav", "--out-dir", tmp_path / "in", "--overwrite", *weights)
    assert result.exit_code == 1 and "would overwrite its input" in result.output


def test_unwritable_outputs(tmp_path, rng, weights):
    src = write(tmp_path / "a.wav", speech_like(rng, 0.5, 16000), 16000)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run("predict", src, "--out-dir", blocker / "sub", *weights)
    assert result.exit_code == 1 and "cannot create output folder" in result.output
    result = run("predict", src, tmp_path / "a.xyz", *weights)
    assert result.exit_code == 1 and "cannot write the '.xyz' format" in result.output
    result = run("predict", tmp_path, tmp_path / "o.wav", *weights)
    assert result.exit_code == 1 and "is a folder; use --out-dir" in result.output


def test_disk_full_leaves_no_output(tmp_path, rng, monkeypatch):
    src = write(tmp_path / "a.wav", speech_like(rng, 0.5, 16000), 16000)
    real_write = sf.SoundFile.write

    def full(self, data):
        if self.name.endswith(".part.wav"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, data)

    monkeypatch.setattr(sf.SoundFile, "write", full)
    with pytest.raises(AudioError, match="out.wav: cannot write audio .*No space left"):
        enhance_file(src, tmp_path / "out.wav", TINY, block_dependent)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]


@pytest.mark.parametrize("ext, subtype", [("wav", "PCM_16"), ("flac", "PCM_24"), ("aiff", "PCM_16")])
def test_removing_nothing_gives_back_integer_samples_exactly(tmp_path, rng, ext, subtype):
    """Floats are rounded to the nearest integer step, not truncated (libsndfile's own conversion
    floors: a -0.5 LSB bias, and a third of the samples of an untouched input off by one)."""
    src = tmp_path / f"in.{ext}"
    sf.write(str(src), 0.3 * rng.uniform(-1, 1, (4000, 2)), 16000, subtype=subtype)
    enhance_file(src, tmp_path / f"out.{ext}", TINY, block_dependent, strength=0.0)
    given, _ = sf.read(str(src), dtype="int32")
    back, _ = sf.read(str(tmp_path / f"out.{ext}"), dtype="int32")
    assert np.array_equal(given, back)


def test_integer_output_is_rounded_without_bias(rng):
    from denoise.audio import to_integer_pcm

    x = rng.uniform(-0.99, 0.99, 100_000)
    steps = to_integer_pcm(x, "PCM_16").astype(np.float64)
    assert np.max(np.abs(steps - x * 32768)) <= 0.5 and abs(np.mean(steps - x * 32768)) < 0.01
    assert list(to_integer_pcm(np.array([1.0, -1.0, 2.0]), "PCM_16")) == [32767, -32768, 32767]
    assert to_integer_pcm(x, "FLOAT") is x


def test_a_wav_cut_short_is_denoised_as_far_as_it_goes_with_a_note(tmp_path, rng, weights):
    full = tmp_path / "full.wav"
    sf.write(str(full), speech_like(rng, 3.0, 16000), 16000, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full.read_bytes()[:20000])  # the header still promises 3 s
    result = run("predict", cut, tmp_path / "out.wav", *weights)
    assert result.exit_code == 0, result.output
    assert "cut.wav: truncated: its header promises 3.0 s, the file holds 0.6 s; denoised what it holds" in result.output
    assert sf.info(str(tmp_path / "out.wav")).frames == sf.info(str(cut)).frames
    result = run("predict", full, tmp_path / "out2.wav", *weights)
    assert "truncated" not in result.output


@pytest.mark.parametrize("fmt, subtype", [("WAV", "GSM610"), ("WAV", "G721_32"), ("AU", "G723_24"),
                                          ("WAV", "NMS_ADPCM_16")])
def test_telephone_codecs_libsndfile_cannot_seek_in_are_denoised(tmp_path, rng, fmt, subtype):
    """Voicemail and old telephone recordings: read in order, never sought in."""
    src = tmp_path / f"call.{fmt.lower()}"
    sf.write(str(src), 0.3 * speech_like(rng, 2.0, 8000), 8000, format=fmt, subtype=subtype)
    out = tmp_path / f"out.{fmt.lower()}"
    result = enhance_file(src, out, TINY, block_dependent, chunk_seconds=0.5)
    assert result.truncated is None
    given, _ = read_audio(src)
    back, _ = read_audio(out)
    assert back.shape == given.shape and sf.info(str(out)).subtype == subtype
    assert np.max(np.abs(read_audio(src, start=100, stop=900)[0] - given[100:900])) == 0


def test_headers_that_give_no_length(tmp_path, rng):
    """A WAV never closed is read to its end with a note; one closed empty stays empty (its other
    chunks are not audio); a FLAC written through a pipe is read whole."""
    import struct

    import av

    audio = 0.3 * speech_like(rng, 1.0, 8000)
    whole = tmp_path / "whole.wav"
    sf.write(str(whole), audio, 8000, subtype="PCM_16")
    data = whole.read_bytes()
    unclosed = tmp_path / "unclosed.wav"
    unclosed.write_bytes(data[:4] + bytes(4) + data[8:40] + bytes(4) + data[44:])
    result = enhance_file(unclosed, tmp_path / "out.wav", TINY, block_dependent)
    assert "its header gives no length" in result.truncated and sf.info(str(tmp_path / "out.wav")).frames == 8000
    body = data[12:36] + b"data" + bytes(4) + b"LIST" + struct.pack("<I", 100) + b"INFO" + b"x" * 96
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body)
    with pytest.raises(AudioError, match="empty.wav: no samples"):
        enhance_file(empty, tmp_path / "out2.wav", TINY, block_dependent)

    class Pipe(io.RawIOBase):  # a stream that cannot seek back to write the length
        def __init__(self):
            self.data = bytearray()

        def writable(self):
            return True

        def write(self, b):
            self.data += b
            return len(b)

    pipe = Pipe()
    with av.open(pipe, "w", format="flac") as container:
        stream = container.add_stream("flac", rate=8000, layout="mono")
        frame = av.AudioFrame.from_ndarray((audio * 32767).astype(np.int16)[None, :], format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    piped = tmp_path / "piped.flac"
    piped.write_bytes(bytes(pipe.data))
    result = enhance_file(piped, tmp_path / "out3.flac", TINY, block_dependent)
    assert result.truncated is None and sf.info(str(tmp_path / "out3.flac")).frames == 8000


def test_hidden_files_and_folders_are_not_inputs(tmp_path, rng, weights):
    """macOS writes ._NAME beside every file on a memory card; .Trashes holds deleted ones."""
    card = tmp_path / "card"
    (card / ".Trashes").mkdir(parents=True)
    write(card / "take.wav", speech_like(rng, 0.5, 16000), 16000)
    write(card / ".Trashes" / "old.wav", speech_like(rng, 0.5, 16000), 16000)
    (card / "._take.wav").write_bytes(b"\x00\x05\x16\x07" + bytes(200))  # AppleDouble, not audio
    result = run("predict", card, "--out-dir", tmp_path / "out", *weights)
    assert result.exit_code == 0 and "Done 1, skipped 0, failed 0 of 1" in result.output, result.output
    assert [p.name for p in (tmp_path / "out").rglob("*.wav")] == ["take.wav"]


def test_an_output_without_extension_points_to_out_dir(tmp_path, rng, weights):
    src = write(tmp_path / "a.wav", speech_like(rng, 0.5, 16000), 16000)
    result = run("predict", src, str(tmp_path / "cleaned") + "/", *weights)
    assert result.exit_code != 0 and "no extension to choose the format by (to write into a folder: --out-dir" in result.output


def test_a_read_only_folder_is_one_line_and_the_batch_goes_on(tmp_path, rng, monkeypatch):
    """On a read-only disk even removing a temporary file fails; that must not become a traceback."""
    import pathlib

    from denoise.enhance import enhance_batch

    srcs = [write(tmp_path / "in" / f"{k}.wav", speech_like(rng, 0.5, 16000), 16000) for k in "ab"]
    locked = tmp_path / "locked"
    locked.mkdir()
    real_touch, real_unlink = pathlib.Path.touch, pathlib.Path.unlink

    def refuse(real):
        def call(self, *args, **kwargs):
            if self.parent == locked:
                raise OSError(errno.EROFS, "Read-only file system")
            return real(self, *args, **kwargs)
        return call

    monkeypatch.setattr(pathlib.Path, "touch", refuse(real_touch))
    monkeypatch.setattr(pathlib.Path, "unlink", refuse(real_unlink))

    class Loaded:
        settings, predict = TINY, staticmethod(block_dependent)

    report = enhance_batch([(s, locked / s.name) for s in srcs], lambda rate: Loaded)
    assert report.failed == [f"{locked / s.name}: cannot write into {locked} (Read-only file system)" for s in srcs]


def test_ctrl_c_while_writing_leaves_no_hidden_file(tmp_path, rng, monkeypatch):
    src = write(tmp_path / "a.wav", speech_like(rng, 0.5, 16000), 16000)
    real_write = sf.SoundFile.write

    def interrupted(self, data):
        if self.name.endswith(".part.flac"):
            raise KeyboardInterrupt
        return real_write(self, data)

    monkeypatch.setattr(sf.SoundFile, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        enhance_file(src, tmp_path / "out.flac", TINY, block_dependent)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]


def test_plots_are_not_overwritten_or_shared(tmp_path, rng, weights):
    write(tmp_path / "in" / "ep.wav", speech_like(rng, 0.5, 16000), 16000)
    write(tmp_path / "in" / "ep.flac", speech_like(rng, 0.5, 16000), 16000)
    out = tmp_path / "out"
    result = run("predict", tmp_path / "in", "--out-dir", out, "--plot", *weights)
    assert result.exit_code == 0, result.output
    assert f"{out / 'ep.png'}: already the plot of {out / 'ep.flac'}; none drawn for {out / 'ep.wav'}" in result.output
    cover = tmp_path / "cover.png"
    cover.write_bytes(b"my picture")
    result = run("predict", tmp_path / "in" / "ep.wav", tmp_path / "cover.wav", "--plot", *weights)
    assert result.exit_code == 0 and "cover.png: exists (use --overwrite to replace it); no plot drawn" in result.output
    assert cover.read_bytes() == b"my picture" and (tmp_path / "cover.wav").exists()


def test_a_file_named_twice_is_denoised_once_and_a_clash_is_refused(tmp_path, rng, weights):
    a = write(tmp_path / "in" / "a.wav", speech_like(rng, 0.5, 16000), 16000)
    write(tmp_path / "other" / "a.wav", speech_like(rng, 0.5, 16000), 16000)
    result = run("predict", a, tmp_path / "in", str(tmp_path / "in" / "*.wav"), "--out-dir", tmp_path / "out", *weights)
    assert result.exit_code == 0 and "Done 1, skipped 0, failed 0 of 1" in result.output, result.output
    result = run("predict", a, tmp_path / "other" / "a.wav", "--out-dir", tmp_path / "out2", *weights)
    assert result.exit_code == 1 and "would also be written from" in result.output


def test_an_out_dir_inside_the_input_folder_is_not_read_again(tmp_path, rng, weights):
    for name in ("a.wav", "b.flac"):
        write(tmp_path / "in" / name, speech_like(rng, 0.5, 16000), 16000)
    for _ in range(2):
        result = run("predict", tmp_path / "in", "--out-dir", tmp_path / "in" / "clean", "--overwrite", *weights)
        assert result.exit_code == 0 and "Done 2, skipped 0, failed 0 of 2" in result.output, result.output
    assert not (tmp_path / "in" / "clean" / "clean").exists()
    # Likewise a recursive pattern that also matches the last run's outputs.
    for _ in range(2):
        result = run("predict", str(tmp_path / "in" / "**" / "*.wav"), "--out-dir", tmp_path / "in" / "clean",
                     "--overwrite", *weights)
        assert result.exit_code == 0 and "Done 1, skipped 0, failed 0 of 1" in result.output, result.output
    # An --out-dir above the pattern's folder is no such case: its inputs are found.
    from denoise.enhance import plan_outputs

    assert plan_outputs([str(tmp_path / "in" / "*.wav")], tmp_path)[0] == [(tmp_path / "in" / "a.wav", tmp_path / "a.wav")]
    # The folder itself as --out-dir is refused, in one line: its outputs would replace its
    # recordings, or, in another format, be taken for recordings by a rerun.
    for extra in ((), ("--out-format", "ogg")):
        result = run("predict", tmp_path / "in", "--out-dir", tmp_path / "in", *extra, *weights)
        assert result.exit_code == 1 and "in: is the --out-dir itself; write into another folder" in result.output
        assert "Done 0, skipped 0, failed 1 of 1" in result.output, result.output
    assert not list((tmp_path / "in").glob("*.ogg"))
    result = run("predict", str(tmp_path / "in" / "*"), "--out-dir", tmp_path / "in", "--out-format", "ogg", *weights)
    assert result.exit_code == 1 and "searches the --out-dir itself; write into another folder (in_denoised" \
        in result.output, result.output
    # A folder with no audio in it is a problem, not "Done 0 of 0" and success.
    (tmp_path / "empty").mkdir()
    result = run("predict", tmp_path / "empty", "--out-dir", tmp_path / "o", *weights)
    assert result.exit_code == 1 and "empty: no audio files in it" in result.output, result.output


def test_folders_find_every_format_libsndfile_reads(tmp_path, rng, weights):
    x = speech_like(rng, 0.5, 16000)
    (tmp_path / "in").mkdir()
    sf.write(str(tmp_path / "in" / "a.caf"), x, 16000)
    sf.write(str(tmp_path / "in" / "b.w64"), x, 16000)
    sf.write(str(tmp_path / "in" / "c.aifc"), x, 16000, format="AIFF")
    sf.write(str(tmp_path / "in" / "d.opus"), x, 16000, format="OGG", subtype="OPUS")
    result = run("predict", tmp_path / "in", "--out-dir", tmp_path / "out", *weights)
    assert result.exit_code == 0 and "Done 4, skipped 0, failed 0 of 4" in result.output, result.output
    assert sf.info(str(tmp_path / "out" / "d.opus")).subtype == "OPUS"


def test_phone_and_browser_formats_are_read_and_m4a_written(tmp_path, rng, weights):
    """AAC in .m4a (phones), Opus in .webm (browsers): decoded by PyAV and denoised; an m4a gives an
    m4a (AAC, written by PyAV), a format that can only be read gives WAV."""
    x = speech_like(rng, 1.0, 16000)
    write_encoded(tmp_path / "in" / "memo.m4a", np.stack([x, 0.5 * x], axis=1), 16000)
    write_encoded(tmp_path / "in" / "sub" / "call.mka", x, 48000, codec="libopus")  # a third of a second
    result = run("predict", tmp_path / "in", "--out-dir", tmp_path / "out", *weights)
    assert result.exit_code == 0 and "Done 2, skipped 0, failed 0 of 2" in result.output, result.output
    assert audio_info(tmp_path / "out" / "memo.m4a") == (16000, 16000, 2)  # exact: the delay is recorded
    call = sf.info(str(tmp_path / "out" / "sub" / "call.wav"))
    assert (call.samplerate, call.channels, call.frames) == (48000, 1, 16000)
    leftovers = [p.name for p in (tmp_path / "out").rglob(".*")]
    assert leftovers == [], leftovers  # the decoded copy is removed
    # One file: OUT names the format; one that can only be read is refused as an output.
    assert run("predict", tmp_path / "in" / "memo.m4a", tmp_path / "memo.flac", *weights).exit_code == 0
    assert sf.info(str(tmp_path / "memo.flac")).channels == 2
    result = run("predict", tmp_path / "in" / "memo.m4a", tmp_path / "memo.mka", *weights)
    assert result.exit_code == 1 and "cannot write the '.mka' format (use one of .wav" in result.output
    write(tmp_path / "odd.wav", x[:4000], 12345)
    result = run("predict", tmp_path / "odd.wav", tmp_path / "odd.m4a", *weights)  # refused before the work
    assert result.exit_code == 1 and "odd.m4a: AAC (.m4a) cannot hold 12345 Hz audio" in result.output
    write(tmp_path / "six.wav", np.stack([x] * 6, axis=1), 16000)
    result = run("predict", tmp_path / "six.wav", tmp_path / "six.m4a", *weights)  # surround would low-pass one
    assert result.exit_code == 1 and "six.m4a: .m4a output is mono or stereo, not 6 channels" in result.output
    assert "(or --mono)" in result.output
    # A lossless m4a (ALAC: the iPhone's lossless memos) is not made lossy AAC unasked: 24-bit WAV.
    write_encoded(tmp_path / "lossless" / "studio.m4a", x, 16000, codec="alac", sample_format="s32p", frame=4096)
    assert run("predict", tmp_path / "lossless", "--out-dir", tmp_path / "lossless_out", *weights).exit_code == 0
    assert sf.info(str(tmp_path / "lossless_out" / "studio.wav")).subtype == "PCM_24"
    # Named IN OUT as the same format, it is written as asked, with a note that AAC is lossy.
    result = run("predict", tmp_path / "lossless" / "studio.m4a", tmp_path / "studio_out.m4a", *weights)
    assert result.exit_code == 0 and "its sound is lossless; studio_out.m4a holds it as lossy AAC" in result.output
    assert "write studio_out.flac or .wav to keep it lossless" in result.output
    assert "lossless" not in run("predict", tmp_path / "in" / "memo.m4a", tmp_path / "memo_out.m4a", *weights).output
    # So is any other lossy output asked for: another container, or --out-format in a batch.
    result = run("predict", tmp_path / "lossless" / "studio.m4a", tmp_path / "studio_out.mp4", *weights)
    assert result.exit_code == 0 and "studio_out.mp4 holds it as lossy AAC (write studio_out.flac or .wav to " \
        "keep it lossless)" in result.output, result.output
    result = run("predict", tmp_path / "lossless", "--out-dir", tmp_path / "as_m4a", "--out-format", "m4a", *weights)
    assert result.exit_code == 0 and "studio.m4a holds it as lossy AAC (--out-format flac keeps it lossless)" \
        in result.output, result.output
    # A damaged recording is denoised as far as it can be read, its damage noted, its timing kept.
    data = bytearray((tmp_path / "in" / "memo.m4a").read_bytes())
    data[len(data) // 2: len(data) // 2 + 400] = bytes(400)
    (tmp_path / "damaged.m4a").write_bytes(bytes(data))
    result = run("predict", tmp_path / "damaged.m4a", tmp_path / "damaged.wav", *weights)
    assert result.exit_code == 0 and "note: " in result.output and "damaged.m4a: damaged: " in result.output
    assert "; denoised what it holds" in result.output and sf.info(str(tmp_path / "damaged.wav")).frames == 16000


def test_m4a_output_keeps_length_and_timing(tmp_path):
    t = np.arange(44101) / 44100
    x = (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    x[30000] = 0.95  # a click to check the timing by
    write(tmp_path / "in.wav", np.stack([x, x], axis=1), 44100)
    enhance_file(tmp_path / "in.wav", tmp_path / "out.m4a", TINY, block_dependent, strength=0.0)
    y, rate = read_audio(tmp_path / "out.m4a")
    assert rate == 44100 and y.shape == (44101, 2) and np.argmax(np.abs(y[:, 0])) == 30000
    away = np.abs(np.arange(44101) - 30000) > 2048  # AAC smears the click itself
    assert np.max(np.abs(y[away, 0] - x[away])) < 0.05
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav", "out.m4a"]


def _packets(path, kind):
    """(bytes of every packet of the first ``kind`` stream, their start times in s, the stream's place in the file's packet order)."""
    import av

    with av.open(str(path)) as container:
        order = [p for p in container.demux() if p.size]
        stream = getattr(container.streams, kind)[0]
        mine = [p for p in order if p.stream.index == stream.index]
        return ([bytes(p) for p in mine], [float(p.pts * p.time_base) for p in mine],
                [i for i, p in enumerate(order) if p.stream.index == stream.index])


@pytest.mark.parametrize("ext, video_codec, audio_codec, rate, channels, sound_start, origin", [
    ("mp4", "mpeg4", "aac", 16000, 1, 0.5, 0.0), ("mov", "libx264", "aac", 44100, 2, 0.5, 0.0),
    ("mkv", "mpeg4", "aac", 16000, 1, 0.5, 0.0), ("webm", "libvpx", "libopus", 48000, 1, 0.5, 0.0),
    ("mkv", "libx264", "aac", 48000, 2, 0.5, 0.0),  # B-frames: Matroska's first packets have no dts
    ("mp4", "mpeg4", "aac", 16000, 1, -0.3, 0.0),  # the sound starts first
    ("mkv", "mpeg4", "aac", 16000, 1, 0.2, 1000.0),  # a timeline that starts at 1000 s
])
def test_a_video_keeps_its_picture_and_its_sound_stays_in_sync(tmp_path, rng, ext, video_codec, audio_codec, rate,
                                                               channels, sound_start, origin):
    """The picture is copied packet for packet; the denoised sound plays when the input's did
    against it, interleaved with it."""
    x = np.stack([speech_like(rng, 1.0, rate)] * channels, axis=1)  # no period: a shift cannot line up again
    src = write_video(tmp_path / f"in.{ext}", x, rate, video_codec, audio_codec, sound_start=sound_start,
                      origin=origin)
    enhance_file(src, tmp_path / f"out.{ext}", TINY, block_dependent, strength=0.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"in.{ext}", f"out.{ext}"]
    picture_in, times_in, _ = _packets(src, "video")
    picture_out, times_out, places = _packets(tmp_path / f"out.{ext}", "video")
    assert picture_out == picture_in and np.diff(times_out) == pytest.approx(np.diff(times_in), abs=1e-3)
    assert times_out[0] == pytest.approx(times_in[0] - origin, abs=1e-3)  # the output starts at its first stream
    assert places[-1] > len(places)  # interleaved: sound packets come before the last picture
    before, after = _timeline(src), _timeline(tmp_path / f"out.{ext}")
    lags = range(-50, 51)  # samples: the sound plays when it did, next to the same picture
    end = min(len(before), len(after)) - 60
    match = [np.dot(before[rate // 8: end], after[rate // 8 + lag: end + lag]) for lag in lags]
    assert abs(lags[int(np.argmax(match))]) <= rate // 1000  # Matroska's timestamps are in milliseconds
    y, out_rate = read_audio(tmp_path / f"out.{ext}")
    assert out_rate == rate and y.shape[1] == channels


def _timeline(path):
    """The first channel of the first sound track as it plays against the picture, from its first frame."""
    import av

    with av.open(str(path)) as container:
        video = container.streams.video[0]
        picture = min(float(p.pts * p.time_base) for p in container.demux(video) if p.size)
        container.seek(0)
        frames = list(container.decode(audio=0))
    start = round((float(frames[0].pts * frames[0].time_base) - picture) * frames[0].sample_rate)
    first = np.concatenate([f.to_ndarray()[0] if f.format.is_planar else f.to_ndarray().reshape(f.samples, -1)[:, 0]
                            for f in frames])
    return np.concatenate([np.zeros(start), first]) if start >= 0 else first[-start:]


def test_a_phone_video_keeps_what_players_and_editors_need(tmp_path, rng):
    """An iPhone's HEVC is tagged 'hvc1' (Apple's players refuse FFmpeg's default 'hev1'); a camera
    writes a timecode that editors line clips up by; the index goes first for the web. An audio
    file's cover picture is no picture to copy."""
    import av

    x = speech_like(rng, 1.0, 48000)
    plain = write_video(tmp_path / "plain.mov", x, 48000, video_codec="libx265")
    with av.open(str(plain)) as src, av.open(str(tmp_path / "phone.mov"), "w", format="mov") as dst:
        copies = {s.index: dst.add_stream_from_template(s) for s in src.streams}
        copies[src.streams.video[0].index].codec_context.codec_tag = "hvc1"
        copies[src.streams.video[0].index].metadata["timecode"] = "01:00:00:00"
        for packet in src.demux():
            if packet.size:
                packet.stream = copies[packet.stream.index]
                dst.mux(packet)
    enhance_file(tmp_path / "phone.mov", tmp_path / "out.mov", TINY, block_dependent)
    with av.open(str(tmp_path / "out.mov")) as out:
        video = out.streams.video[0]
        assert video.codec_context.codec_tag == "hvc1" and video.metadata.get("timecode") == "01:00:00:00"
    data = (tmp_path / "out.mov").read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")  # faststart
    # Cover art (an attached picture) is not made into a one-frame video track.
    import fractions

    with av.open(str(tmp_path / "cover.mp4"), "w") as container:
        sound = container.add_stream("aac", rate=48000, layout="mono")
        cover = container.add_stream("mjpeg")
        cover.width = cover.height = 64
        cover.pix_fmt = "yuvj420p"
        cover.disposition = av.stream.Disposition.attached_pic
        encoder = av.CodecContext.create("mjpeg", "w")
        encoder.width = encoder.height = 64
        encoder.pix_fmt, encoder.time_base = "yuvj420p", fractions.Fraction(1, 1)
        image = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 200, np.uint8), format="rgb24").reformat(format="yuvj420p")
        packet = av.Packet(bytes(encoder.encode(image)[0]))
        packet.stream, packet.pts, packet.dts, packet.time_base = cover, 0, 0, fractions.Fraction(1, 90000)
        container.mux(packet)
        for i in range(0, 48000, 960):
            frame = av.AudioFrame.from_ndarray(x[None, i:i + 960].copy(), format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = 48000, i, fractions.Fraction(1, 48000)
            container.mux(sound.encode(frame))
        container.mux(sound.encode(None))
    enhance_file(tmp_path / "cover.mp4", tmp_path / "cover_out.mp4", TINY, block_dependent)
    with av.open(str(tmp_path / "cover_out.mp4")) as out:
        assert [s.type for s in out.streams] == ["audio"]


def test_videos_in_a_batch_stay_videos_and_formats_that_cannot_be_written_are_refused(tmp_path, rng, weights):
    x = speech_like(rng, 1.0, 16000)
    import struct

    import av

    video = write_video(tmp_path / "in" / "talk.mp4", x, 16000)
    # Held upright on a phone: the picture carries a rotation (the first track header's matrix).
    data = bytearray(video.read_bytes())
    matrix = data.find(b"tkhd") - 4 + 48
    data[matrix: matrix + 36] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
    video.write_bytes(bytes(data))
    write_encoded(tmp_path / "in" / "clip.3gp", x, 16000, fmt="3gp")
    result = run("predict", tmp_path / "in", "--out-dir", tmp_path / "out", *weights)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["clip.wav", "talk.mp4"]
    assert _packets(tmp_path / "out" / "talk.mp4", "video")[0] == _packets(video, "video")[0]
    with av.open(str(tmp_path / "out" / "talk.mp4")) as container:
        assert next(container.decode(video=0)).rotation == -90  # still upright
    write(tmp_path / "cd.wav", x, 44100)
    result = run("predict", tmp_path / "cd.wav", tmp_path / "cd.webm", *weights)  # refused before the work
    assert result.exit_code == 1 and "cd.webm: Opus (.webm) cannot hold 44100 Hz audio" in result.output
    assert "write .mkv (or .m4a for the sound alone)" in result.output and not (tmp_path / "cd.webm").exists()
    # Kept as they are unless that would lose: a 5.1 sound track (AAC here is mono or stereo) and a
    # camera's lossless PCM (not made lossy AAC unasked) give WAV.
    write_video(tmp_path / "more" / "surround.mkv", np.stack([x] * 6, axis=1), 16000)
    write_video(tmp_path / "more" / "camera.mov", x, 16000, audio_codec="pcm_s16le")
    # A browser's WebM with 44.1-kHz Vorbis: Opus, which .webm is written with, has no such rate,
    # so it goes into .mkv, picture and all.
    write_video(tmp_path / "more" / "browser.webm", np.stack([x, x], axis=1), 44100, "libvpx", "vorbis")
    result = run("predict", tmp_path / "more", "--out-dir", tmp_path / "more_out", *weights)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "more_out").iterdir()) == ["browser.mkv", "camera.mov", "surround.wav"]
    assert sf.info(str(tmp_path / "more_out" / "surround.wav")).channels == 6
    assert _packets(tmp_path / "more_out" / "browser.mkv", "video")[0] == _packets(tmp_path / "more" / "browser.webm", "video")[0]
    assert "browser.webm: written as browser.mkv (.webm cannot hold its 44100 Hz sound)" in result.output
    assert "camera.mov: its sound is lossless; camera.mov holds it as lossy AAC (--out-format wav keeps it " \
        "lossless, without the picture)" in result.output
    assert "surround.mkv: written as surround.wav (.mkv cannot hold its 6-channel sound; the picture is not kept)" \
        in result.output
    result = run("predict", tmp_path / "more" / "camera.mov", tmp_path / "more_out" / "cam.mov", *weights)
    assert result.exit_code == 0 and "cam.mov holds it as lossy AAC (write cam.wav to keep it lossless, without " \
        "the picture)" in result.output, result.output
    # With --mono the 5.1 sound becomes one channel, which the video takes back.
    result = run("predict", tmp_path / "more" / "surround.mkv", "--out-dir", tmp_path / "mono_out", "--mono", *weights)
    assert result.exit_code == 0 and (tmp_path / "mono_out" / "surround.mkv").exists(), result.output
    # VP9 cannot go into .mov: refused before the work, not after it as a failed write.
    write_video(tmp_path / "vp9.webm", speech_like(rng, 0.5, 48000), 48000, "libvpx-vp9", "libopus")
    result = run("predict", tmp_path / "vp9.webm", tmp_path / "vp9.mov", *weights)
    assert result.exit_code == 1 and "vp9.mov: .mov cannot hold this video's picture (vp9)" in result.output
    # A picture the container cannot hold (MPEG-4 video in WebM) is refused before the work.
    write_video(tmp_path / "cam.mkv", speech_like(rng, 0.5, 48000), 48000)
    result = run("predict", tmp_path / "cam.mkv", tmp_path / "cam.webm", *weights)
    assert result.exit_code == 1 and "cam.webm: .webm cannot hold this video's picture (mpeg4); write .mkv" in result.output
    assert sorted(p.name for p in tmp_path.glob("cam*")) == ["cam.mkv"]
    # A sound file written as .mp4 is sound alone.
    assert run("predict", tmp_path / "cd.wav", tmp_path / "cd.mp4", *weights).exit_code == 0
    assert _packets(tmp_path / "cd.mp4", "audio")[0] and audio_info(tmp_path / "cd.mp4") == (16000, 44100, 1)


def test_out_format_chooses_every_output_format(tmp_path, rng, weights):
    write(tmp_path / "in" / "a.wav", speech_like(rng, 0.5, 16000), 16000)
    write_encoded(tmp_path / "in" / "b.m4a", speech_like(rng, 0.5, 16000), 16000)
    result = run("predict", tmp_path / "in", "--out-dir", tmp_path / "out", "--out-format", "flac", *weights)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.flac", "b.flac"]
    result = run("predict", tmp_path / "in" / "a.wav", tmp_path / "x.wav", "--out-format", "flac", *weights)
    assert result.exit_code == 2 and "--out-format is for --out-dir" in result.output  # a usage error
    result = run("predict", tmp_path / "in" / "a.wav", *weights)
    assert result.exit_code == 2 and "expected IN OUT, got 1 path(s)" in result.output
    assert "predict --help' for help" in result.output
    # An input and a read-only format of the same name would both be written as a.wav: one is refused.
    write_encoded(tmp_path / "in" / "a.mka", speech_like(rng, 0.5, 48000), 48000, codec="libopus")
    result = run("predict", tmp_path / "in", "--out-dir", tmp_path / "out2", *weights)
    assert result.exit_code == 1 and "a.wav would also be written from" in result.output


def test_a_rerun_over_a_large_folder_counts_its_skipped_outputs(tmp_path, rng, weights):
    for i in range(12):
        write(tmp_path / "in" / f"{i:02d}.wav", speech_like(rng, 0.2, 8000), 8000)
    assert run("predict", tmp_path / "in", "--out-dir", tmp_path / "out", *weights).exit_code == 0
    result = run("predict", tmp_path / "in", "--out-dir", tmp_path / "out", *weights)
    assert result.exit_code == 0 and "Done 0, skipped 12, failed 0 of 12" in result.output
    assert result.output.count("exists (use --overwrite to replace it)") == 9
    assert "skipped: 3 more outputs that exist (use --overwrite to replace them)" in result.output


def test_one_long_recording_shows_its_progress_in_seconds(tmp_path, rng, weights):
    write(tmp_path / "short.wav", speech_like(rng, 2.0, 8000), 8000)
    result = run("predict", tmp_path / "short.wav", tmp_path / "short_out.wav", *weights)
    assert result.exit_code == 0 and "Denoising" not in result.output
    write(tmp_path / "episode.wav", np.tile(speech_like(rng, 2.0, 8000), 31), 8000)  # 62 s
    result = run("predict", tmp_path / "episode.wav", tmp_path / "episode_out.wav", *weights)
    assert result.exit_code == 0 and "Denoising: 100%" in result.output and "62.0/62.0" in result.output, result.output
    assert "Decoding" not in result.output  # a WAV is read as it is denoised
    # An m4a is decoded first, and encoding it takes time too (a minute for an hour): a bar for each.
    write_encoded(tmp_path / "episode.m4a", np.tile(speech_like(rng, 2.0, 8000), 31), 8000)
    result = run("predict", tmp_path / "episode.m4a", tmp_path / "episode_out.m4a", *weights)
    assert result.exit_code == 0, result.output
    stages = [line.split(":")[0] for line in result.output.replace("\r", "\n").splitlines() if "s/s]" in line]
    assert list(dict.fromkeys(stages)) == ["Decoding", "Denoising", "Writing"], result.output
    assert "Writing: 100%" in result.output and "62.0/62.0" in result.output, result.output
    # Bars turned off (tqdm reads TQDM_DISABLE when imported, so in a process of its own): the same work.
    quiet = subprocess.run([sys.executable, "-m", "denoise", "predict", tmp_path / "episode.m4a",
                            tmp_path / "quiet_out.m4a", *weights], capture_output=True, text=True,
                           env={**os.environ, "TQDM_DISABLE": "1"})
    assert quiet.returncode == 0 and "Denoising" not in quiet.stderr, quiet.stderr
    # The Python API's two-argument progress, from before the stages, hears of the denoising only.
    heard = []
    enhance_file(tmp_path / "episode.m4a", tmp_path / "api_out.wav", TINY, zero_noise_model(),
                 progress=lambda done, total: heard.append((done, total)))
    assert heard and heard[-1] == (62.0, 62.0) and all(total == 62.0 for _, total in heard)


def test_a_recordings_tags_are_kept(tmp_path, rng, weights):
    """A podcast episode keeps its title, artist and the rest, in its own format or another."""
    import av

    tags = {"title": "Épisode 12", "artist": "Jane Host", "album": "My Podcast", "date": "2026",
            "comment": "recorded at home", "genre": "Podcast", "tracknumber": "12"}
    with sf.SoundFile(tmp_path / "episode.flac", "w", 8000, 1, format="FLAC") as f:
        for name, value in tags.items():
            setattr(f, name, value)
        f.write(speech_like(rng, 1.0, 8000))
    for out in ("clean.flac", "clean.wav", "clean.ogg"):
        assert run("predict", tmp_path / "episode.flac", tmp_path / out, *weights).exit_code == 0
        with sf.SoundFile(tmp_path / out) as f:
            assert f.copy_metadata() == tags, out
    assert run("predict", tmp_path / "episode.flac", tmp_path / "clean.m4a", *weights).exit_code == 0
    with av.open(str(tmp_path / "clean.m4a")) as c:
        assert {k: c.metadata.get("track" if k == "tracknumber" else k) for k in tags} == tags
    # and back from an m4a (iTunes tags, read by PyAV)
    assert run("predict", tmp_path / "clean.m4a", tmp_path / "again.flac", *weights).exit_code == 0
    with sf.SoundFile(tmp_path / "again.flac") as f:
        assert f.copy_metadata() == tags
    # MP3 through libsndfile: what it would mangle (non-ASCII) is left out, the rest kept.
    assert run("predict", tmp_path / "episode.flac", tmp_path / "clean.mp3", *weights).exit_code == 0
    with sf.SoundFile(tmp_path / "clean.mp3") as f:
        kept = f.copy_metadata()
    assert not kept.get("title") and all(kept[k] == v for k, v in tags.items() if k != "title"), kept
    # Show notes too long for some formats to hold are left out, not written into a file that
    # cannot be read back; a video's sound track title ("Stereo") is not the recording's title.
    with sf.SoundFile(tmp_path / "notes.flac", "w", 8000, 1, format="FLAC") as f:
        f.title, f.comment = "Episode 13", "notes " * 2000
        f.write(speech_like(rng, 1.0, 8000))
    for out in ("notes.aiff", "notes.wav", "notes.opus"):
        assert run("predict", tmp_path / "notes.flac", tmp_path / out, *weights).exit_code == 0
        with sf.SoundFile(tmp_path / out) as f:
            assert f.copy_metadata() == {"title": "Episode 13"}
    for out in ("notes_out.flac", "notes.ogg"):  # these hold them
        assert run("predict", tmp_path / "notes.flac", tmp_path / out, *weights).exit_code == 0
        with sf.SoundFile(tmp_path / out) as f:
            assert f.copy_metadata()["comment"] == ("notes " * 2000).strip()
    write_video(tmp_path / "talk.mkv", speech_like(rng, 1.0, 16000), 16000, sound_title="Stereo")
    with av.open(str(tmp_path / "talk.mkv")) as c:
        assert c.streams.audio[0].metadata.get("title") == "Stereo"
    from denoise.audio import read_tags

    assert "title" not in read_tags(tmp_path / "talk.mkv")


def _chunk(cid: bytes, data: bytes) -> bytes:
    return cid + len(data).to_bytes(4, "little") + data + b"\0" * (len(data) & 1)


def _syncsafe(n: int) -> bytes:
    return bytes((n >> shift) & 0x7F for shift in (21, 14, 7, 0))


def test_latin1_riff_info_and_a_wavs_id3_chunk_are_read(tmp_path, rng, weights):
    """Older software wrote a WAV's RIFF INFO in Latin-1 ("Café", not "Caf\ufffd"), and some tag
    a WAV with an ID3 chunk only, which libsndfile does not read: both reach the output."""
    from denoise.audio import read_tags

    raw = write(tmp_path / "plain.wav", speech_like(rng, 1.0, 8000), 8000).read_bytes()
    info = _chunk(b"LIST", b"INFO" + _chunk(b"INAM", "Café Müller\0".encode("latin-1"))
                  + _chunk(b"IART", "Zoë Ångström\0".encode("latin-1")))
    frames = b"".join(fid + _syncsafe(len(text.encode()) + 1) + b"\0\0" + b"\3" + text.encode()
                      for fid, text in ((b"TIT2", "Épisode 3"), (b"TPE1", "Jane Host"), (b"TDRC", "2026")))
    id3 = _chunk(b"id3 ", b"ID3\4\0\0" + _syncsafe(len(frames)) + frames)
    for name, extra in (("latin.wav", info), ("id3.wav", id3)):
        body = raw[12:] + extra
        (tmp_path / name).write_bytes(b"RIFF" + (len(body) + 4).to_bytes(4, "little") + b"WAVE" + body)
    assert read_tags(tmp_path / "latin.wav") == {"title": "Café Müller", "artist": "Zoë Ångström"}
    assert read_tags(tmp_path / "id3.wav") == {"title": "Épisode 3", "artist": "Jane Host", "date": "2026"}
    assert run("predict", tmp_path / "latin.wav", tmp_path / "latin.flac", *weights).exit_code == 0
    with sf.SoundFile(tmp_path / "latin.flac") as f:
        assert f.title == "Café Müller"


def test_a_broadcast_wavs_chunks_are_kept(tmp_path, rng, weights):
    """A broadcast WAV's description, originator and time reference (bext), iXML, cue points and
    their labels stay true of the denoised copy (same rate and length), so it keeps its place on a
    programme's timeline: they go into a WAV output, before its audio as broadcast tools expect."""
    import av

    from denoise.audio import _riff_chunks

    plain = write(tmp_path / "plain.wav", speech_like(rng, 1.0, 8000), 8000)
    raw = plain.read_bytes()
    data_at = raw.index(b"data")
    bext = _chunk(b"bext", b"Interview, take 3".ljust(256, b"\0") + b"ZOOM F6".ljust(32, b"\0")
                  + b"\0" * 32 + b"2024-05-0114:30:00" + (2505600000).to_bytes(8, "little") + b"\0" * 256)
    ixml = _chunk(b"iXML", b"<BWFXML><PROJECT>News</PROJECT></BWFXML>")
    cue = _chunk(b"cue ", (1).to_bytes(4, "little") + (1).to_bytes(4, "little") + (4000).to_bytes(4, "little")
                 + b"data" + bytes(8) + (4000).to_bytes(4, "little"))
    adtl = _chunk(b"LIST", b"adtl" + _chunk(b"labl", (1).to_bytes(4, "little") + b"question 2\0"))
    body = raw[12:data_at] + bext + ixml + cue + adtl + raw[data_at:]
    src = tmp_path / "take3.wav"
    src.write_bytes(b"RIFF" + (len(body) + 4).to_bytes(4, "little") + b"WAVE" + body)
    assert run("predict", src, tmp_path / "clean.wav", *weights).exit_code == 0
    out = (tmp_path / "clean.wav").read_bytes()
    for chunk in (bext, ixml, cue, adtl):
        assert chunk in out
    with open(tmp_path / "clean.wav", "rb") as f:
        ids = [cid for cid, _, _ in _riff_chunks(f)]
    assert ids.index(b"bext") < ids.index(b"data") and int.from_bytes(out[4:8], "little") == len(out) - 8
    assert sf.info(str(tmp_path / "clean.wav")).frames == 8000
    # --mono changes the channels iXML describes: the rest is kept.
    stereo = tmp_path / "stereo.wav"
    write(stereo, np.stack([speech_like(rng, 1.0, 8000)] * 2, axis=1), 8000)
    raw = stereo.read_bytes()
    data_at = raw.index(b"data")
    body = raw[12:data_at] + bext + ixml + raw[data_at:]
    stereo.write_bytes(b"RIFF" + (len(body) + 4).to_bytes(4, "little") + b"WAVE" + body)
    assert run("predict", stereo, tmp_path / "mono.wav", "--mono", *weights).exit_code == 0
    out = (tmp_path / "mono.wav").read_bytes()
    assert bext in out and ixml not in out and sf.info(str(tmp_path / "mono.wav")).channels == 1
    # An odd-sized last chunk without its pad byte (some writers leave it out) is padded in the copy.
    unpadded = tmp_path / "unpadded.wav"
    raw = plain.read_bytes()
    odd = b"iXML" + (21).to_bytes(4, "little") + b"<BWFXML>odd</BWFXML>!"
    unpadded.write_bytes(b"RIFF" + (len(raw) - 8 + len(odd)).to_bytes(4, "little") + raw[8:] + odd)
    assert run("predict", unpadded, tmp_path / "from_unpadded.wav", *weights).exit_code == 0
    assert sf.info(str(tmp_path / "from_unpadded.wav")).frames == 8000
    with av.open(str(tmp_path / "from_unpadded.wav")) as c:
        assert c.streams.audio[0].frames in (0, 8000)
    # A chunk cut short at the end of a damaged file is not copied (it would damage the output).
    damaged = tmp_path / "damaged.wav"
    damaged.write_bytes(stereo.read_bytes() + ixml[:8] + ixml[8:20])
    assert run("predict", damaged, tmp_path / "from_damaged.wav", *weights).exit_code == 0
    out = (tmp_path / "from_damaged.wav").read_bytes()
    assert out.count(b"iXML") == 1 and sf.info(str(tmp_path / "from_damaged.wav")).frames == 8000


def test_the_clipping_note_is_said_only_when_it_rounds_to_a_change(tmp_path, monkeypatch):
    import denoise.enhance as enhance

    write(tmp_path / "a.wav", np.zeros(1600, np.float32), 16000)
    for scaled_db, said in ((-0.001, False), (-0.004, False), (-0.006, True), (-1.25, True)):
        def fake_batch(jobs, *args, **kwargs):
            (src, dst), = jobs
            return enhance.BatchReport([enhance.FileResult(src, dst, 0.1, 16000, 1, scaled_db=scaled_db)], [], [])

        monkeypatch.setattr(enhance, "enhance_batch", fake_batch)
        result = run("predict", tmp_path / "a.wav", tmp_path / "b.wav", "--overwrite")
        assert result.exit_code == 0, result.output
        assert ("to avoid clipping" in result.output) == said, (scaled_db, result.output)
