import numpy as np
import pytest
import soundfile as sf

from conftest import TINY, speech_like
from denoise.enhance import enhance, enhance_file, enhance_signal, keras_predict_fn
from denoise.errors import AudioError
from denoise.model_io import load_model
from denoise.settings import Settings


def constant_noise(db: float, settings: Settings):
    """A stand-in model that predicts the same noise share (in dB) everywhere."""
    return lambda x: np.full_like(x, db / settings.out_scale_db)


def error_db(y, x):
    with np.errstate(divide="ignore"):  # an exact copy is -inf dB
        return 20 * np.log10(np.linalg.norm(y - x) / np.linalg.norm(x))


@pytest.mark.parametrize("n", [1, 50, 128, 1000, 8000 * 3 + 7])
def test_zero_noise_model_gives_back_the_input(rng, n):
    from conftest import zero_noise_model

    x = (0.3 * rng.standard_normal(n)).astype(np.float32)
    y = enhance(x, TINY, keras_predict_fn(zero_noise_model()))
    assert y.shape == x.shape
    assert error_db(y, x) < -40


@pytest.mark.parametrize("rate", [8000, 16000, 44100])
def test_output_keeps_rate_length_channels_and_level(rng, rate):
    x = (0.3 * rng.standard_normal((rate // 2 + 3, 2))).astype(np.float32)
    y = enhance_signal(x, rate, TINY, constant_noise(0.0, TINY))
    assert y.shape == x.shape
    assert error_db(y, x) < -40  # nothing removed: identical, high band included
    quieter = enhance_signal(x[:, :1], 8000, TINY, constant_noise(6.0, TINY))
    assert 20 * np.log10(np.linalg.norm(quieter) / np.linalg.norm(x[:, :1])) == pytest.approx(-6.0, abs=0.01)
    one_d = enhance_signal(x[:, 0], 8000, TINY, constant_noise(6.0, TINY))  # (n_samples,) in, the same out
    assert one_d.shape == x[:, 0].shape and np.allclose(one_d, quieter[:, 0])


def test_no_seams_where_blocks_meet(rng):
    # Different predictions per block are cross-faded over the overlap: the gain changes smoothly.
    settings = Settings(sample_rate=8000, frame_length=512, n_fft=31, hop_length=8)  # 64-frame blocks

    def per_block(x):
        return np.stack([np.full(x.shape[1:], (i % 2) * 12 / settings.out_scale_db) for i in range(x.shape[0])])

    x = 0.5 * np.sin(2 * np.pi * 500 * np.arange(16000) / 8000).astype(np.float32)  # 32 samples: two periods
    x += 0.01 * rng.standard_normal(16000).astype(np.float32)

    def largest_step(overlap):
        y = enhance(x, settings, per_block, overlap=overlap)
        envelope = np.convolve(np.abs(y), np.ones(32) / 32, mode="valid")
        return np.max(np.abs(np.diff(envelope)))

    assert largest_step(0.5) < 0.005 and largest_step(0.25) < 0.008
    assert largest_step(0.0) > 1.5 * largest_step(0.25)  # without overlap the gain jumps


def test_enhance_file_round_trip(tmp_path, trained, rng):
    src = tmp_path / "in.wav"
    sf.write(str(src), speech_like(rng, 1.3, 22050), 22050, subtype="PCM_16")
    loaded = load_model(trained["model"])
    result = enhance_file(src, tmp_path / "out.wav", loaded.settings, loaded.predict)
    info = sf.info(str(tmp_path / "out.wav"))
    assert (info.samplerate, info.frames, info.subtype) == (22050, sf.info(str(src)).frames, "PCM_16")
    assert result.seconds == pytest.approx(1.3, abs=1e-3)
    with pytest.raises(AudioError, match="would overwrite its input"):
        enhance_file(src, src, loaded.settings, loaded.predict)
    with pytest.raises(AudioError, match="output folder .* does not exist"):
        enhance_file(src, tmp_path / "no" / "o.wav", loaded.settings, loaded.predict)


def test_enhance_tree_keeps_relative_paths_and_lists_failures(tmp_path, rng):
    from conftest import write
    from denoise.enhance import enhance_tree

    write(tmp_path / "in" / "a" / "x.wav", speech_like(rng, 0.5, 16000), 16000)
    write(tmp_path / "in" / "y.flac", speech_like(rng, 0.5, 8000), 8000)
    write(tmp_path / "in" / "z.mp3", speech_like(rng, 0.5, 16000), 16000)  # lossy: scored from a WAV
    (tmp_path / "in" / "bad.wav").write_text("nope")

    class Fake:
        settings = TINY
        predict = staticmethod(constant_noise(0.0, TINY))

    results, failures = enhance_tree(tmp_path / "in", tmp_path / "out", lambda rate: Fake)
    assert sorted(str(r.output.relative_to(tmp_path / "out")) for r in results) == ["a/x.wav", "y.flac", "z.wav"]
    assert len(failures) == 1 and "bad.wav: cannot read audio" in failures[0]
    assert not (tmp_path / "out" / "bad.wav").exists()


def test_a_model_that_fails_to_run_stops_the_batch_naming_the_model(tmp_path, rng):
    """Not each file's "cannot write audio": the model is no file's problem."""
    from conftest import write
    from denoise.enhance import enhance_batch
    from denoise.errors import ModelFileError

    for name in ("a", "b"):
        write(tmp_path / f"{name}.wav", speech_like(rng, 0.5, 16000), 16000)

    def broken(x, training=False):
        raise RuntimeError("tensor arena allocation failed\nmore detail")

    class Fake:
        settings = TINY
        predict = staticmethod(keras_predict_fn(broken, name="m.keras"))

    jobs = [(tmp_path / f"{n}.wav", tmp_path / f"{n}_out.wav") for n in ("a", "b")]
    with pytest.raises(ModelFileError, match=r"^m.keras: cannot run the model \(tensor arena allocation failed\)$"):
        enhance_batch(jobs, lambda rate: Fake)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "b.wav"]


def block_dependent(x):
    """A stand-in model whose output depends on the whole block, so the block grid matters."""
    return np.tanh(x - x.mean(axis=(1, 2), keepdims=True) + 0.3 * x.std(axis=(1, 2), keepdims=True))


@pytest.mark.parametrize("rate, overlap, model_rate", [
    (8000, 0.5, 8000), (11025, 0.5, 8000), (16000, 0.25, 8000), (44100, 0.25, 8000), (8000, 0.25, 8000),
    (44100, 0.125, 8000), (16000, 0.0, 8000), (12345, 0.25, 8000),
    (8000, 0.25, 22050),  # input below the model's rate
])
def test_chunked_processing_equals_processing_whole(rng, rate, overlap, model_rate):
    import dataclasses

    settings = dataclasses.replace(TINY, sample_rate=model_rate)
    x = (0.2 * rng.standard_normal((int(rate * 2.3) + 5, 2))).astype(np.float32)
    counted = []

    def counting(blocks):
        counted.append(blocks.shape[0])
        return block_dependent(blocks)

    whole = enhance_signal(x, rate, settings, counting, chunk_seconds=1e6, overlap=overlap)
    whole_blocks = sum(counted)
    for seconds in (0.05, 0.3):
        counted.clear()
        chunked = enhance_signal(x, rate, settings, counting, chunk_seconds=seconds, overlap=overlap)
        assert chunked.shape == x.shape
        assert np.max(np.abs(chunked - whole)) < 1e-5
        assert len(counted) > 4 and sum(counted) == whole_blocks  # no block is predicted twice
    assert error_db(whole, x) > -30  # the stand-in really changed the signal


def test_the_end_of_a_recording_is_denoised_like_its_middle(rng):
    """A stand-in that judges the noise by its block's level, as the trained network does, removes
    as much from the end of steady noise as from its middle: no block reaches past the end into
    padding (padded with near-silence, the trained models left the last half second noisy)."""
    x = (0.1 * rng.standard_normal(int(TINY.sample_rate * 2.3))).astype(np.float32)
    y = enhance(x, TINY, by_level)
    part = len(x) // 8

    def change_db(a, b):
        return 20 * np.log10(np.linalg.norm(y[a:b]) / np.linalg.norm(x[a:b]))

    middle, end = change_db(3 * part, 4 * part), change_db(len(x) - part, len(x))
    assert middle < -6  # the stand-in really removes something
    assert end == pytest.approx(middle, abs=1.0)


def by_level(blocks):
    """A stand-in that removes more, the louder its block is on average (the network judges noise by level)."""
    return np.broadcast_to(np.clip(blocks.mean(axis=(1, 2, 3), keepdims=True), 0.0, 1.0), blocks.shape)


def test_quiet_and_loud_recordings_are_judged_at_a_trained_level(rng):
    x = (0.05 * rng.standard_normal((8000 * 2, 1))).astype(np.float32)  # -26 dBFS: inside the range

    def run(gain_db, **options):
        return enhance_signal(x * np.float32(10.0 ** (gain_db / 20.0)), 8000, TINY, by_level, **options)

    # Inside the range nothing changes.
    assert error_db(run(0.0, match_level=False), run(0.0)) < -100
    # Two quiet versions (-66 and -46 dBFS) are both judged at -35 dBFS, so their outputs are scaled
    # copies of each other. Judged at its own level, the quieter one would be left as it is.
    assert error_db(run(-40.0) * 10, run(-20.0)) < -50
    quiet = x * np.float32(0.01)
    assert error_db(run(-40.0, match_level=False), quiet) < -60
    assert 20 * np.log10(np.linalg.norm(run(-40.0)) / np.linalg.norm(quiet)) < -2
    # A loud version (-6 dBFS) is judged at -20 dBFS, as the version at -20 dBFS is.
    assert error_db(run(20.0) * np.float32(10.0 ** (-14 / 20)), run(6.0)) < -50
    assert error_db(run(20.0, match_level=False) * np.float32(10.0 ** (-14 / 20)), run(6.0)) > -40


def test_channels_are_judged_each_at_its_own_level(rng):
    """A two-microphone recording with one quiet channel: the quiet one is denoised as it would be alone."""
    voice = (0.05 * rng.standard_normal(8000 * 2)).astype(np.float32)
    quiet, loud = voice * np.float32(0.01), voice[::-1].copy()
    both = enhance_signal(np.stack([quiet, loud], axis=1), 8000, TINY, by_level, link_channels=False)
    assert error_db(both[:, 0], enhance_signal(quiet, 8000, TINY, by_level)) < -60
    assert error_db(both[:, 1], enhance_signal(loud, 8000, TINY, by_level)) < -60


def test_linked_channels_keep_the_voice_in_its_place(rng):
    """A voice 6 dB to the left: the stand-in removes more from the louder channel when the channels
    are denoised apart (the voice moves), while linked gains keep the right channel a copy of the
    left 6 dB down, at any rate and whatever the chunks."""

    def by_bin_level(blocks):  # up to 24 dB, more from louder bins
        return 0.2 * np.clip(blocks + 1.0, 0.0, 2.0)

    for rate in (8000, 16000):  # 16 kHz: the band above the 8 kHz stand-in's gets one gain too
        left = speech_like(rng, 2.0, rate) + 0.05 * rng.standard_normal(2 * rate).astype(np.float32)
        left *= np.float32(10 ** (-24 / 20) / np.sqrt(np.mean(left**2)))  # both channels inside LEVEL_RANGE_DB
        x = np.stack([left, left * np.float32(0.5)], axis=1)
        apart = enhance_signal(x, rate, TINY, by_bin_level, link_channels=False)
        assert error_db(apart[:, 1], apart[:, 0] * 0.5) > -30
        linked = enhance_signal(x, rate, TINY, by_bin_level, link_channels=True)
        assert error_db(linked[:, 1], linked[:, 0] * 0.5) < -60
        assert error_db(linked[:, 0], x[:, 0]) > -30  # something was removed
        assert np.array_equal(linked, enhance_signal(x, rate, TINY, by_bin_level, link_channels=True, chunk_seconds=0.3))
    mono = enhance_signal(left, rate, TINY, by_bin_level)
    assert np.array_equal(mono, enhance_signal(left, rate, TINY, by_bin_level, link_channels=True))
    # A whistle at 3.6 kHz in the right channel alone: linked, the band above the stand-in's 4 kHz
    # (where the two channels are the same 6 dB apart) still gets one gain, not each channel's own.
    whistle = 0.05 * np.sin(2 * np.pi * 3600 * np.arange(2 * rate) / rate).astype(np.float32)
    y = enhance_signal(x + np.stack([np.zeros_like(whistle), whistle], axis=1), rate, TINY, by_bin_level,
                       link_channels=True)

    def high(z):
        spectrum = np.fft.rfft(z)
        spectrum[: int(4600 / rate * z.shape[0])] = 0
        return np.fft.irfft(spectrum, z.shape[0])

    assert error_db(high(y[:, 1]), high(y[:, 0]) * 0.5) < -40


def test_linked_removal_keeps_the_channels_summed_clean_power():
    from denoise.enhance import linked_removal

    loud, quiet, silent = np.full((3, 4), 1.0), np.full((3, 4), 0.1), np.zeros((3, 4))
    removed_loud, removed_quiet = np.full((3, 4), 6.0, np.float32), np.full((3, 4), 20.0, np.float32)
    # A silent channel (a muted microphone) does not change what is removed from the other.
    assert np.allclose(linked_removal([loud, silent], [removed_loud, removed_quiet]), 6.0)
    # Otherwise the louder channel counts for more: 100 times the power here.
    kept = (1.0 * 10 ** (-0.6) + 0.01 * 10 ** (-2.0)) / 1.01
    assert np.allclose(linked_removal([loud, quiet], [removed_loud, removed_quiet]), -10 * np.log10(kept), atol=1e-4)
    # Whatever the level, the result lies between the channels' own removals (within the floor):
    # float32 power of a very quiet recording neither underflows nor divides to more.
    for amplitude in (1e-14, 1e-17, 1e-23, 0.0):
        tiny = np.full((3, 4), amplitude, np.complex64)
        result = linked_removal([tiny, tiny], [removed_loud, removed_quiet])
        assert np.all(np.isfinite(result)) and np.all((result >= 6.0) & (result <= 20.0))


def test_a_dc_offset_is_taken_out_before_the_network_and_put_back(rng):
    x = (0.05 * rng.standard_normal(8000 * 2)).astype(np.float32)
    shifted = enhance_signal(x + np.float32(0.1), 8000, TINY, by_level)
    assert abs(float(np.mean(shifted)) - 0.1) < 1e-3
    assert error_db(shifted - np.float32(0.1), enhance_signal(x, 8000, TINY, by_level)) < -60
    assert error_db(enhance_signal(x + np.float32(0.1), 8000, TINY, by_level, strength=0.0), x + np.float32(0.1)) < -100


def test_digital_silence_stays_exactly_silent_under_a_dc_offset(rng):
    """An edited recording with a DC offset and a stretch of digital silence spliced in: the silence
    stays exactly zero (it became minus the offset, partly removed, the rest put back), at any rate
    and whatever the chunks; a few zero samples in passing are ordinary audio."""
    for rate in (8000, 16000):
        x = (0.05 * rng.standard_normal(rate * 3) + 0.02).astype(np.float32)
        x[rate : 2 * rate] = 0.0
        x[rate // 2 : rate // 2 + 3] = 0.0
        whole = enhance_signal(x, rate, TINY, by_level)
        assert np.all(whole[rate : 2 * rate] == 0.0)
        assert np.all(whole[rate // 2 : rate // 2 + 3] != 0.0)
        assert np.array_equal(whole, enhance_signal(x, rate, TINY, by_level, chunk_seconds=0.3))


def test_high_band_modes(rng):
    """Input at 16 kHz, model at 8 kHz: the 4-8 kHz band is kept, dropped or scaled by the model's top-band gain."""
    x = (0.1 * rng.standard_normal((16000, 1))).astype(np.float32)

    def high_power(y):  # power above 4.4 kHz relative to the input's
        band = slice(int(4400 / 8000 * 8001), None)
        return (np.abs(np.fft.rfft(y[:, 0]))[band] ** 2).sum() / (np.abs(np.fft.rfft(x[:, 0]))[band] ** 2).sum()

    removes_all = constant_noise(TINY.out_scale_db, TINY)  # the model's top band loses 60 dB
    keep = enhance_signal(x, 16000, TINY, removes_all, high_band="keep")
    drop = enhance_signal(x, 16000, TINY, removes_all, high_band="drop")
    gain = enhance_signal(x, 16000, TINY, removes_all, high_band="gain")
    assert high_power(keep) == pytest.approx(1.0, abs=0.01)  # the high band untouched
    assert high_power(drop) < 0.01 and high_power(gain) < 0.01
    untouched = enhance_signal(x, 16000, TINY, constant_noise(0.0, TINY), high_band="gain")
    assert error_db(untouched, x) < -40  # nothing removed below: nothing removed above either
    with pytest.raises(Exception, match="high_band='loud' must be one of"):
        enhance_signal(x, 16000, TINY, removes_all, high_band="loud")


def test_strength_and_floor(rng):
    x = (0.3 * rng.standard_normal((8000, 1))).astype(np.float32)
    removes_30db = constant_noise(30.0, TINY)
    assert error_db(enhance_signal(x, 8000, TINY, removes_30db, strength=0.0), x) < -40
    half = enhance_signal(x, 8000, TINY, removes_30db, strength=0.5)
    assert 20 * np.log10(np.linalg.norm(half) / np.linalg.norm(x)) == pytest.approx(-15.0, abs=0.05)
    floored = enhance_signal(x, 8000, TINY, removes_30db, floor_db=-6.0)
    assert 20 * np.log10(np.linalg.norm(floored) / np.linalg.norm(x)) == pytest.approx(-6.0, abs=0.05)
    with pytest.raises(Exception, match="strength=1.5 must be between 0 and 1"):
        enhance_signal(x, 8000, TINY, removes_30db, strength=1.5)


def test_less_overlap_predicts_fewer_blocks(rng):
    x = (0.1 * rng.standard_normal((8000 * 3, 1))).astype(np.float32)
    counts = {}
    for overlap in (0.5, 0.25, 0.0):
        seen = []

        def counting(blocks):
            seen.append(blocks.shape[0])
            return np.zeros_like(blocks)

        out = enhance_signal(x, 8000, TINY, counting, overlap=overlap)
        assert error_db(out, x) < -40  # removing nothing still gives the input back
        counts[overlap] = sum(seen)
    frames = 8000 * 3 // TINY.hop_length
    assert counts[0.5] == pytest.approx(2 * frames / TINY.n_frames, rel=0.1)
    assert counts[0.25] == pytest.approx(4 / 3 * frames / TINY.n_frames, rel=0.1)
    assert counts[0.0] == pytest.approx(frames / TINY.n_frames, rel=0.1)
    with pytest.raises(Exception, match="overlap=0.9 must be between 0 and 0.75"):
        enhance_signal(x, 8000, TINY, counting, overlap=0.9)


def test_the_python_api_refuses_what_it_cannot_denoise_in_one_line(rng):
    x = (0.05 * rng.standard_normal((2, 800))).astype(np.float32)  # channels first, as librosa gives
    with pytest.raises(AudioError, match=r"shape \(2, 800\): more channels than samples; .*transpose"):
        enhance_signal(x, 8000, TINY, block_dependent)
    with pytest.raises(AudioError, match="type int16: expected floats in"):
        enhance_signal((x.T * 32767).astype(np.int16), 8000, TINY, block_dependent)
    for rate in (4000, 0, 16000.5, "16000"):
        with pytest.raises(AudioError, match="expected a whole number of Hz from 8000 to 192000"):
            enhance_signal(x.T, rate, TINY, block_dependent)
    assert enhance_signal(x.T.astype(np.float64), 8000.0, TINY, block_dependent).shape == (800, 2)


def test_the_model_uses_the_cpus_this_process_may_run_on(monkeypatch):
    """Not the machine's count: a container or taskset may allow fewer, and more threads than CPUs slow it."""
    import os

    from denoise.enhance import usable_cpus

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3}, raising=False)
    assert usable_cpus() == 1


def _cgroup_files(tmp_path, fstype, opts, root, own, limits):
    """A fake /proc/self/mountinfo and /proc/self/cgroup, and cgroup folders with ``limits``."""
    mount = tmp_path / "cgroup"
    for rel, files in limits.items():
        (mount / rel).mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (mount / rel / name).write_text(text + "\n")
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(f"1 0 0:1 / / rw - overlay overlay rw\n"
                         f"31 1 0:28 {root} {str(mount).replace(' ', chr(92) + '040')} rw,nosuid - {fstype} cgroup {opts}\n")
    cgroups = tmp_path / "cgroups"
    cgroups.write_text(own + "\n")
    return mountinfo, cgroups


def test_a_cpu_quota_caps_the_model_threads(tmp_path, monkeypatch):
    """docker --cpus or a Kubernetes limit: threads beyond the quota are throttled and run slower."""
    import os

    from denoise import enhance

    # cgroup v2 on a host: the tightest quota of the process's cgroup and its parents counts.
    files = _cgroup_files(tmp_path / "v2", "cgroup2", "rw", "/", "0::/work.slice/job.scope",
                          {"work.slice": {"cpu.max": "250000 100000"},
                           "work.slice/job.scope": {"cpu.max": "max 100000"}})
    assert enhance.cgroup_cpu_quota(*files) == 2.5
    # cgroup v2 in a container: the mount's root is the container's own cgroup.
    files = _cgroup_files(tmp_path / "c2", "cgroup2", "rw", "/docker/abc", "0::/", {"": {"cpu.max": "150000 100000"}})
    assert enhance.cgroup_cpu_quota(*files) == 1.5
    # cgroup v1, cpu with cpuacct, in a container whose path shows the host's name for it.
    files = _cgroup_files(tmp_path / "v1", "cgroup", "rw,cpu,cpuacct", "/kubepods/pod1", "4:cpu,cpuacct:/kubepods/pod1",
                          {"": {"cpu.cfs_quota_us": "300000", "cpu.cfs_period_us": "100000"}})
    assert enhance.cgroup_cpu_quota(*files) == 3.0
    # A mount point with a space (mountinfo writes it \040); a container root is no prefix of a sibling's path.
    files = _cgroup_files(tmp_path / "with space", "cgroup2", "rw", "/", "0::/", {"": {"cpu.max": "200000 100000"}})
    assert enhance.cgroup_cpu_quota(*files) == 2.0
    files = _cgroup_files(tmp_path / "sib", "cgroup2", "rw", "/docker/abc", "0::/docker/abcdef",
                          {"": {"cpu.max": "max 100000"}, "def": {"cpu.max": "100000 100000"}})
    assert enhance.cgroup_cpu_quota(*files) is None
    # No limit, a broken file, or no such files (macOS, Windows).
    files = _cgroup_files(tmp_path / "zero", "cgroup2", "rw", "/", "0::/", {"": {"cpu.max": "100000 0"}})
    assert enhance.cgroup_cpu_quota(*files) is None
    files = _cgroup_files(tmp_path / "none", "cgroup", "rw,cpu", "/", "1:cpu:/",
                          {"": {"cpu.cfs_quota_us": "-1", "cpu.cfs_period_us": "100000"}})
    assert enhance.cgroup_cpu_quota(*files) is None
    assert enhance.cgroup_cpu_quota(tmp_path / "absent", tmp_path / "absent") is None

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    monkeypatch.setattr(enhance, "cgroup_cpu_quota", lambda: 2.5)
    assert enhance.usable_cpus() == 2
    monkeypatch.setattr(enhance, "cgroup_cpu_quota", lambda: 0.5)
    assert enhance.usable_cpus() == 1
    monkeypatch.setattr(enhance, "cgroup_cpu_quota", lambda: None)
    assert enhance.usable_cpus() == 16
