import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import TINY, speech_like, write, write_encoded
from denoise.errors import AudioError, DataError
from denoise.mixing import MixOptions, create_dataset, mix_pair, shift_pitch, speech_frames
from denoise.settings import Settings, load_settings


def rms(x):
    return np.sqrt(np.mean(np.square(x, dtype=np.float64)))


@pytest.mark.parametrize("snr", [-5.0, 0.0, 20.0])
def test_mix_pair_hits_the_snr_and_level(rng, snr):
    voice = speech_like(rng, 0.5, 16000)
    noise = rng.standard_normal(voice.shape[0]).astype(np.float32)
    noisy, clean, scaled_noise = mix_pair(voice, noise, snr, -25.0)
    assert 20 * np.log10(rms(clean) / rms(scaled_noise)) == pytest.approx(snr, abs=1e-3)
    assert np.allclose(noisy, clean + scaled_noise, atol=1e-6)
    assert 20 * np.log10(rms(noisy)) == pytest.approx(-25.0, abs=1e-3) or np.max(np.abs(noisy)) <= 0.99 + 1e-6


def test_mix_pair_never_clips(rng):
    voice = speech_like(rng, 0.5, 16000)
    noisy, _, _ = mix_pair(voice, rng.standard_normal(voice.shape[0]).astype(np.float32), 0.0, 0.0)
    assert np.max(np.abs(noisy)) <= 0.99 + 1e-6


def test_speech_frames_skip_pauses(rng):
    voice = np.concatenate([speech_like(rng, 0.1, 8000)[:256], np.zeros(256, np.float32)])
    assert speech_frames(voice, 128) == [0, 128]


def test_create_dataset_writes_shards_settings_and_samples(tmp_path, corpus):
    voice, noise = corpus
    report = create_dataset(voice, noise, tmp_path / "out", TINY, MixOptions(nb_samples=25, shard_size=10))
    out = tmp_path / "out"
    assert report.pairs == 25 and report.shards == ["shard-00000.npz", "shard-00001.npz", "shard-00002.npz"]
    sizes = []
    for name in report.shards:
        with np.load(out / name) as data:
            assert set(data.files) == {"noisy_db", "clean_db", "noise_db"}
            assert data["noisy_db"].shape[1:] == (16, 16)
            sizes.append(data["noisy_db"].shape[0])
            # noisy is louder than clean in every bin on average: the noise adds energy
            assert data["noisy_db"].astype(float).mean() > data["clean_db"].astype(float).mean()
    assert sizes == [10, 10, 5]
    assert load_settings(out) == TINY
    for name in ("noisy", "clean", "noise"):
        info = sf.info(str(out / "samples" / f"{name}.wav"))
        assert info.samplerate == 8000 and info.frames > 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["pairs"] == 25 and manifest["files_used"] == {"voice": 4, "noise": 2}


def test_same_seed_same_bytes_other_seed_other_data(tmp_path, corpus):
    voice, noise = corpus
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        create_dataset(voice, noise, tmp_path / name, TINY, MixOptions(nb_samples=12, shard_size=6, seed=seed))
    for shard in ("shard-00000.npz", "shard-00001.npz"):
        a, b, c = ((tmp_path / n / shard).read_bytes() for n in "abc")
        assert a == b and a != c


def test_bad_files_are_reported_not_dropped(tmp_path, corpus, rng):
    voice, noise = corpus
    write(voice / "short.wav", speech_like(rng, 0.005, 16000), 16000)
    write(voice / "silent.wav", np.zeros(16000, np.float32), 16000)
    (voice / "broken.flac").write_bytes(b"fLaC garbage")
    memo = write_encoded(voice / "memo.m4a", speech_like(rng, 2.0, 16000), 16000)  # a phone recording: used
    data = bytearray(memo.read_bytes())
    data[len(data) // 2: len(data) // 2 + 400] = bytes(400)
    (voice / "damaged.m4a").write_bytes(bytes(data))
    report = create_dataset(voice, noise, tmp_path / "out", TINY, MixOptions(nb_samples=5))
    skipped = {k.rsplit("/", 1)[-1]: v for k, v in report.skipped.items()}
    assert skipped["short.wav"].startswith("too short")
    assert skipped["silent.wav"] == "silent"
    assert skipped["broken.flac"].startswith("unreadable")
    assert skipped["damaged.m4a"].startswith("damaged: ") and "memo.m4a" not in skipped
    assert report.pairs == 5


def test_no_usable_audio_fails_clearly(tmp_path, corpus):
    voice, noise = corpus
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="empty: no usable voice audio found"):
        create_dataset(empty, noise, tmp_path / "out", TINY, MixOptions(nb_samples=5))
    with pytest.raises(AudioError, match="missing: folder not found"):
        create_dataset(voice, tmp_path / "missing", tmp_path / "out", TINY, MixOptions(nb_samples=5))
    short = tmp_path / "short"
    short.mkdir()
    sf.write(str(short / "click.wav"), np.zeros(400, np.float32), 8000)  # 0.05 s: under a noise clip's minimum
    with pytest.raises(DataError, match=r"short: no usable noise audio found \(1 audio files, none readable and at least 0.10 s long\)"):
        create_dataset(voice, short, tmp_path / "out", TINY, MixOptions(nb_samples=5))


def test_output_that_cannot_be_written_is_said_before_the_work_and_leaves_no_part(tmp_path, corpus, monkeypatch):
    voice, noise = corpus
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="file: cannot create the folder"):
        create_dataset(voice, noise, tmp_path / "file", TINY, MixOptions(nb_samples=3))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "samples").write_text("x")  # the listening samples' folder name is taken
    with pytest.raises(DataError, match="samples: cannot create the folder"):
        create_dataset(voice, noise, tmp_path / "out", TINY, MixOptions(nb_samples=3))
    assert not list((tmp_path / "out").glob("shard-*"))

    def full_disk(path, **arrays):
        Path(path).write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", full_disk)
    with pytest.raises(DataError, match=r"shard-00000.npz: cannot write the shard \(No space left on device\)"):
        create_dataset(voice, noise, tmp_path / "full", TINY, MixOptions(nb_samples=3))
    assert not [p.name for p in (tmp_path / "full").iterdir() if "shard" in p.name]


def test_an_interrupted_dataset_or_a_foreign_shard_is_refused_by_training(tmp_path, corpus, monkeypatch):
    """Training must not take a half-made dataset for a whole one, even over an old manifest."""
    import denoise.mixing as mixing
    from denoise.dataset import list_shards

    voice, noise = corpus
    create_dataset(voice, noise, tmp_path / "d", TINY, MixOptions(nb_samples=4, shard_size=2))
    assert len(list_shards(tmp_path / "d")) == 2
    made = mixing.make_shard

    def interrupted(index, *args):
        if index == 1:
            raise KeyboardInterrupt
        return made(index, *args)

    monkeypatch.setattr(mixing, "make_shard", interrupted)
    with pytest.raises(KeyboardInterrupt):
        create_dataset(voice, noise, tmp_path / "d", TINY, MixOptions(nb_samples=4, shard_size=2, seed=1),
                       overwrite=True)
    with pytest.raises(DataError, match="d: no manifest.json: its data creation did not finish"):
        list_shards(tmp_path / "d")
    monkeypatch.setattr(mixing, "make_shard", made)
    create_dataset(voice, noise, tmp_path / "d", TINY, MixOptions(nb_samples=4, shard_size=2), overwrite=True)
    (tmp_path / "d" / "shard-00007.npz").write_bytes((tmp_path / "d" / "shard-00000.npz").read_bytes())
    with pytest.raises(DataError, match=r"shard-00007.npz: no manifest lists it \(1 such shard"):
        list_shards(tmp_path / "d")
    (tmp_path / "d" / "shard-00007.npz").unlink()
    (tmp_path / "d" / "manifest.json").write_text('{"shards": ["shard-000')
    with pytest.raises(DataError, match="manifest.json: cannot read this manifest"):
        list_shards(tmp_path / "d")
    # Made again in two parts over the old one: the old manifest.json goes before any new shard.
    create_dataset(voice, noise, tmp_path / "d", TINY, MixOptions(nb_samples=4, shard_size=2), overwrite=True,
                   num_shards=2, shard_index=0)
    assert sorted(p.name for p in (tmp_path / "d").glob("manifest*")) == ["manifest-part000-of-002.json"]


def test_a_dataset_written_into_its_voice_folder_does_not_feed_the_next_run(tmp_path, corpus):
    import shutil

    voice, noise = corpus
    voice = shutil.copytree(voice, tmp_path / "speakers")
    found = create_dataset(voice, noise, voice, TINY, MixOptions(nb_samples=3)).found["voice"]
    assert (voice / "samples" / "noisy.wav").exists()
    again = create_dataset(voice, noise, voice, TINY, MixOptions(nb_samples=3), overwrite=True)
    assert again.found["voice"] == found  # its samples/*.wav are not taken for speech
    with pytest.raises(DataError, match="both the voice and the noise folder"):
        create_dataset(noise, noise, tmp_path / "x", TINY, MixOptions(nb_samples=3))


def test_existing_dataset_is_not_overwritten(tmp_path, corpus):
    voice, noise = corpus
    create_dataset(voice, noise, tmp_path / "out", TINY, MixOptions(nb_samples=3))
    with pytest.raises(DataError, match="already exists"):
        create_dataset(voice, noise, tmp_path / "out", TINY, MixOptions(nb_samples=3))
    create_dataset(voice, noise, tmp_path / "out", TINY, MixOptions(nb_samples=3, seed=1), overwrite=True)
    # a smaller dataset over a larger one: the old shards beyond the new count go (training reads them all)
    create_dataset(voice, noise, tmp_path / "big", TINY, MixOptions(nb_samples=7, shard_size=2))
    assert len(list((tmp_path / "big").glob("shard-*.npz"))) == 4
    create_dataset(voice, noise, tmp_path / "big", TINY, MixOptions(nb_samples=3, shard_size=2), overwrite=True)
    assert sorted(p.name for p in (tmp_path / "big").glob("shard-*.npz")) == ["shard-00000.npz", "shard-00001.npz"]


def test_workers_and_parts_give_the_same_dataset(tmp_path, corpus):
    voice, noise = corpus
    options = MixOptions(nb_samples=20, shard_size=5, seed=9)
    create_dataset(voice, noise, tmp_path / "one", TINY, options)
    create_dataset(voice, noise, tmp_path / "two", TINY, options, workers=2)
    for part in range(3):  # three independent jobs writing into one folder
        report = create_dataset(voice, noise, tmp_path / "parts", TINY, options, num_shards=3, shard_index=part)
        assert report.shards == [f"shard-{i:05d}.npz" for i in range(4) if i % 3 == part]
    names = sorted(p.name for p in (tmp_path / "one").glob("shard-*.npz"))
    assert len(names) == 4
    for name in names:
        reference = (tmp_path / "one" / name).read_bytes()
        assert (tmp_path / "two" / name).read_bytes() == reference
        assert (tmp_path / "parts" / name).read_bytes() == reference
    assert (tmp_path / "parts" / "manifest-part002-of-003.json").exists()
    from denoise.dataset import list_shards

    assert len(list_shards(tmp_path / "parts")) == 4  # the three parts' manifests vouch for every shard
    for name in ("noisy", "clean", "noise"):  # the part holding shard 0 writes the listening samples
        assert (tmp_path / "parts" / "samples" / f"{name}.wav").read_bytes() == (
            tmp_path / "one" / "samples" / f"{name}.wav").read_bytes()
    with pytest.raises(DataError, match="shard_index=3 must be in 0..num_shards-1=2"):
        create_dataset(voice, noise, tmp_path / "x", TINY, options, num_shards=3, shard_index=3)


def test_short_noise_clips_are_looped_and_tiny_ones_skipped(tmp_path, corpus, rng):
    voice, _ = corpus
    noise = tmp_path / "short_noise"
    write(noise / "click.wav", 0.2 * rng.standard_normal(40).astype(np.float32), 8000)  # 5 ms: too short
    write(noise / "burst.wav", 0.2 * rng.standard_normal(880).astype(np.float32), 8000)  # 0.11 s
    settings = Settings(sample_rate=8000, frame_length=1024, n_fft=127, hop_length=64)  # 0.128 s frames
    report = create_dataset(voice, noise, tmp_path / "out", settings, MixOptions(nb_samples=4))
    skipped = {k.rsplit("/", 1)[-1]: v for k, v in report.skipped.items()}
    assert skipped["click.wav"].startswith("too short") and "burst.wav" not in skipped
    assert any(p.endswith("burst.wav") for p in report.used["noise"])


def test_several_noises_and_hard_snr_weighting(tmp_path, corpus):
    voice, noise = corpus
    base = MixOptions(nb_samples=40, shard_size=40)
    create_dataset(voice, noise, tmp_path / "one", TINY, base)
    create_dataset(voice, noise, tmp_path / "many", TINY, MixOptions(nb_samples=40, shard_size=40, max_noises=3))
    with np.load(tmp_path / "one" / "shard-00000.npz") as a, np.load(tmp_path / "many" / "shard-00000.npz") as b:
        # Same voices and SNRs were drawn: the clean spectra differ only by each pair's level.
        diff = b["clean_db"].astype(np.float64) - a["clean_db"].astype(np.float64)
        loud = a["clean_db"] > -60
        assert max(np.ptp(d[m]) for d, m in zip(diff, loud) if m.any()) < 0.5
        assert not np.array_equal(a["noise_db"], b["noise_db"])
    # "hard" draws low SNRs more often: the mean SNR of 2000 draws sits a third of the way up.
    from denoise.mixing import draw_snr

    rng = np.random.default_rng(0)
    hard = [draw_snr(rng, (-5.0, 20.0), "hard") for _ in range(2000)]
    assert np.mean(hard) == pytest.approx(-5 + 25 / 3, abs=0.6) and min(hard) >= -5 and max(hard) <= 20
    with pytest.raises(DataError, match="snr_weighting='easy'"):
        create_dataset(voice, noise, tmp_path / "x", TINY, MixOptions(nb_samples=2, snr_weighting="easy"))
    with pytest.raises(DataError, match="max_noises=0"):
        create_dataset(voice, noise, tmp_path / "x", TINY, MixOptions(nb_samples=2, max_noises=0))


def with_and_without(tmp_path, corpus, **option):
    """One 40-pair shard made without and with a data-creation option (same seed): its arrays, each
    a dict, and the options the second dataset's manifest recorded."""
    voice, noise = corpus
    shards = []
    for name, extra in (("base", {}), ("option", option)):
        create_dataset(voice, noise, tmp_path / name, TINY, MixOptions(nb_samples=40, shard_size=40, **extra))
        with np.load(tmp_path / name / "shard-00000.npz") as data:
            shards.append({key: data[key] for key in data.files})
    return *shards, json.loads((tmp_path / "option" / "manifest.json").read_text())["options"]


def test_clean_share_leaves_pairs_without_noise(tmp_path, corpus):
    voice, noise = corpus
    a, b, options = with_and_without(tmp_path, corpus, clean_share=0.5)
    silent = np.all(b["noise_db"] <= TINY.floor_db + 1e-3, axis=(1, 2))
    assert 8 <= silent.sum() <= 32  # about half
    assert np.array_equal(b["noisy_db"][silent], b["clean_db"][silent])
    # The other pairs are the same draws as without the option (its own random stream).
    assert np.array_equal(a["noisy_db"][~silent], b["noisy_db"][~silent])
    assert not np.any(np.all(a["noise_db"] <= TINY.floor_db + 1e-3, axis=(1, 2)))
    assert options["clean_share"] == 0.5
    with pytest.raises(DataError, match="clean share 1.5"):
        create_dataset(voice, noise, tmp_path / "x", TINY, MixOptions(nb_samples=2, clean_share=1.5))


def test_noise_only_share_leaves_pairs_without_speech(tmp_path, corpus):
    voice, noise = corpus
    a, b, options = with_and_without(tmp_path, corpus, noise_only_share=0.5)
    speechless = np.all(b["clean_db"] <= TINY.floor_db + 1e-3, axis=(1, 2))
    assert 8 <= speechless.sum() <= 32  # about half
    assert np.array_equal(b["noisy_db"][speechless], b["noise_db"][speechless])  # noise alone
    assert np.all(b["noisy_db"][speechless].max(axis=(1, 2)) > TINY.floor_db + 40)  # at a speech-like level
    assert np.array_equal(a["noisy_db"][~speechless], b["noisy_db"][~speechless])  # the others: same draws
    assert options["noise_only_share"] == 0.5
    # With a clean share too, each is its share of all pairs: half and half leaves no pair of both.
    create_dataset(voice, noise, tmp_path / "both", TINY, MixOptions(nb_samples=40, shard_size=40,
                                                                     clean_share=0.5, noise_only_share=0.5))
    with np.load(tmp_path / "both" / "shard-00000.npz") as data:
        both = {key: data[key] for key in data.files}
    speechless = np.all(both["clean_db"] <= TINY.floor_db + 1e-3, axis=(1, 2))
    silent = np.all(both["noise_db"] <= TINY.floor_db + 1e-3, axis=(1, 2))
    assert np.all(speechless ^ silent) and 8 <= silent.sum() <= 32
    with pytest.raises(DataError, match="noise-only share 0.8"):
        create_dataset(voice, noise, tmp_path / "x", TINY, MixOptions(nb_samples=2, noise_only_share=0.8,
                                                                        clean_share=0.5))


def test_shift_pitch_plays_the_voice_faster_or_slower():
    rate = 8000
    tone = np.sin(2 * np.pi * 200 * np.arange(rate) / rate).astype(np.float32)

    def peak_hz(x):
        return np.argmax(np.abs(np.fft.rfft(x * np.hanning(x.shape[0])))) * rate / x.shape[0]

    for semitones, expected in [(12.0, 400.0), (7.0, 200 * 2 ** (7 / 12)), (-2.0, 200 * 2 ** (-2 / 12))]:
        shifted = shift_pitch(tone, 100, 2048, semitones)
        assert shifted.shape == (2048,) and shifted.dtype == np.float32
        assert peak_hz(shifted) == pytest.approx(expected, rel=0.02)
    late = shift_pitch(tone, rate - 10, 2048, 7.0)  # a start too late for the span moves back
    assert late.shape == (2048,)
    assert shift_pitch(tone[:2500], 0, 2048, 7.0) is None  # too short for a frame at 1.5x speed


def test_pitch_share_shifts_some_pairs_and_leaves_the_others(tmp_path, corpus):
    voice, noise = corpus
    a, b, options = with_and_without(tmp_path, corpus, pitch_share=0.5, pitch_semitones=(4.0, 7.0))
    same = np.all(a["clean_db"] == b["clean_db"], axis=(1, 2))
    assert 8 <= (~same).sum() <= 32  # about half were shifted
    # The others are the same draws as without the option (its own random stream).
    assert np.array_equal(a["noisy_db"][same], b["noisy_db"][same])
    assert options["pitch_share"] == 0.5 and options["pitch_semitones"] == [4.0, 7.0]
    with pytest.raises(DataError, match="pitch share 2"):
        create_dataset(voice, noise, tmp_path / "x", TINY, MixOptions(nb_samples=2, pitch_share=2.0))
    with pytest.raises(DataError, match="pitch range"):
        create_dataset(voice, noise, tmp_path / "x", TINY, MixOptions(nb_samples=2, pitch_semitones=(7.0, 2.0)))


def test_steady_noise_has_the_slope_asked_for_and_sometimes_hum():
    from denoise.mixing import steady_noise

    rate, n = 16000, 32000
    for slope in (-6.0, -3.0, 0.0, 3.0):
        rng = np.random.default_rng(3)
        hums = 0
        for _ in range(6):
            x = steady_noise(rng, n, rate, (slope, slope))
            assert x.dtype == np.float32 and np.sqrt(np.mean(x.astype(float) ** 2)) == pytest.approx(1, rel=1e-3)
            power = np.abs(np.fft.rfft(x)) ** 2
            freqs = np.fft.rfftfreq(n, 1 / rate)
            low, high = power[(freqs >= 1000) & (freqs < 2000)].mean(), power[(freqs >= 2000) & (freqs < 4000)].mean()
            if power[np.abs(freqs - 50) < 1].max() + power[np.abs(freqs - 60) < 1].max() > 1e3 * np.median(power):
                hums += 1  # mains hum, which barely reaches 1-4 kHz
            assert 10 * np.log10(high / low) == pytest.approx(slope, abs=1.0)
        assert 1 <= hums <= 5


def test_steady_share_adds_steady_noise_to_some_pairs(tmp_path, corpus):
    voice, noise = corpus
    a, b, options = with_and_without(tmp_path, corpus, steady_share=0.5, steady_slope=(-6.0, -6.0))
    changed = ~np.all(a["noisy_db"] == b["noisy_db"], axis=(1, 2))
    assert 8 <= changed.sum() <= 32  # about half
    # The speech is the same draw, at another level (the mixture's level is set after the noise).
    offset = (b["clean_db"] - a["clean_db"]).astype(float)[changed]
    loud = (a["clean_db"][changed] > TINY.floor_db + 20) & (b["clean_db"][changed] > TINY.floor_db + 20)
    assert np.all([o[m].std() < 0.1 for o, m in zip(offset, loud)])
    assert options["steady_share"] == 0.5 and options["steady_slope_db"] == [-6.0, -6.0]
    with pytest.raises(DataError, match="steady share 2"):
        create_dataset(voice, noise, tmp_path / "x", TINY, MixOptions(nb_samples=2, steady_share=2))
    with pytest.raises(DataError, match="steady slope range"):
        create_dataset(voice, noise, tmp_path / "x", TINY, MixOptions(nb_samples=2, steady_slope=(3.0, -3.0)))


def test_band_limit_empties_the_band_above_its_cutoff(rng):
    from denoise.mixing import band_limit

    rate = 16000
    voice, noise = speech_like(rng, 1.0, rate), 0.1 * rng.standard_normal(rate).astype(np.float32)
    noisy, clean, only_noise = band_limit((voice + noise, voice, noise), rate, 4000.0)
    spectrum = np.abs(np.fft.rfft(noisy)) ** 2
    freqs = np.fft.rfftfreq(noisy.size, 1 / rate)
    assert spectrum[freqs > 5000].sum() < 1e-5 * spectrum[freqs < 3000].sum()  # 50 dB down and more
    assert np.allclose(noisy, clean + only_noise, atol=1e-5)  # linear: the pair stays consistent
    assert band_limit((voice,), rate, 7950.0)[0] is voice  # a cut-off at Nyquist changes nothing


def test_lowpass_share_band_limits_some_pairs_and_leaves_the_others(tmp_path, corpus):
    voice, noise = corpus
    a, b, options = with_and_without(tmp_path, corpus, lowpass_share=0.5, lowpass_hz=(1500.0, 1500.0))
    top = slice(14, None)  # TINY's bins above 3.5 kHz (250 Hz each)
    changed = ~np.all(a["noisy_db"] == b["noisy_db"], axis=(1, 2))
    assert 8 <= changed.sum() <= 32  # about half

    def upper(arrays, part):
        return arrays[f"{part}_db"][changed][:, top].astype(float)

    assert upper(a, "noisy").mean() - upper(b, "noisy").mean() > 20  # the band above the cut-off is emptied
    # in the mixture (TINY frames are shorter than the filter, so less than in real ones)...
    share_a, share_b = (np.abs(upper(d, "noisy") - upper(d, "clean")).mean() for d in (a, b))
    assert share_b < share_a - 20  # ...and the target with it: little noise left to remove up there
    assert options["lowpass_share"] == 0.5 and options["lowpass_hz"] == [1500.0, 1500.0]
    with pytest.raises(DataError, match="low-pass share 2"):
        create_dataset(voice, noise, tmp_path / "x", TINY, MixOptions(nb_samples=2, lowpass_share=2))
    # A cut-off the rate cannot hold would leave the pair as it is: refused, not silently fewer pairs.
    with pytest.raises(DataError, match="low-pass range 3000 to 7500 Hz reaches past 3920 Hz, the highest cut-off at 8000 Hz"):
        create_dataset(voice, noise, tmp_path / "x", TINY, MixOptions(nb_samples=2, lowpass_share=0.3))
