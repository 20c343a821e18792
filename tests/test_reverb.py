import json

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import TINY, speech_like
from denoise.cli import main
from denoise.errors import DataError
from denoise.mixing import MixOptions, create_dataset, mix_pair
from denoise.reverb import measure_rt60, reverberate, room_impulse_response


@pytest.mark.parametrize("rt60", [0.3, 0.9])
def test_room_impulse_response_has_the_drawn_rt60_and_starts_at_the_direct_path(rt60):
    rir = room_impulse_response(np.random.default_rng(4), 8000, rt60)
    assert rir[0] == 1.0 and np.max(np.abs(rir[1:])) < 1.0
    assert measure_rt60(rir, 8000) == pytest.approx(rt60, rel=0.2)
    assert rir.shape[0] >= rt60 * 8000


def test_room_impulse_responses_are_reproducible():
    a = room_impulse_response(np.random.default_rng(7), 8000, 0.5)
    b = room_impulse_response(np.random.default_rng(7), 8000, 0.5)
    c = room_impulse_response(np.random.default_rng(8), 8000, 0.5)
    assert np.array_equal(a, b) and not np.array_equal(a[: len(c)], c[: len(a)])


def test_reverberate_aligns_with_the_dry_signal_and_keeps_earlier_echo():
    signal = np.zeros(100, np.float32)
    signal[10] = 1.0
    rir = np.array([1.0, 0.0, 0.5, 0.25], np.float32)
    assert np.array_equal(reverberate(signal, 0, 20, np.array([1.0], np.float32)), signal[:20])
    wet = reverberate(signal, 11, 5, rir)  # the impulse at 10 was before the segment: only its echo
    assert np.allclose(wet, [0.0, 0.5, 0.25, 0.0, 0.0])
    assert reverberate(signal, 95, 10, rir).shape == (10,)


def test_mix_pair_with_reverberation_targets_the_dry_voice(rng):
    voice = speech_like(rng, 0.5, 8000)
    heard = reverberate(voice, 0, voice.shape[0], room_impulse_response(rng, 8000, 0.6))
    noise = rng.standard_normal(voice.shape[0]).astype(np.float32)
    noisy, clean, rest = mix_pair(voice, noise, 10.0, -25.0, heard)
    gain = np.dot(clean, voice) / np.dot(voice, voice)
    assert np.allclose(clean, gain * voice, atol=1e-6)  # the target is the dry voice
    assert np.allclose(noisy, clean + rest, atol=1e-6)
    added = noisy - gain * heard  # the noise alone sits 10 dB below the reverberant voice
    assert 20 * np.log10(np.linalg.norm(gain * heard) / np.linalg.norm(added)) == pytest.approx(10.0, abs=1e-3)


def test_reverb_changes_only_the_noisy_side_of_the_dataset(tmp_path, corpus):
    voice, noise = corpus
    dry = create_dataset(voice, noise, tmp_path / "dry", TINY, MixOptions(nb_samples=12, shard_size=12))
    options = MixOptions(nb_samples=12, shard_size=12, reverb_share=1.0, rirs_per_shard=2)
    create_dataset(voice, noise, tmp_path / "wet", TINY, options)
    with np.load(tmp_path / "dry" / dry.shards[0]) as a, np.load(tmp_path / "wet" / dry.shards[0]) as b:
        # Same voices, noises, SNRs and levels were drawn; the clean spectra differ only by the level
        # change the reverberant mixture's normalisation brings (a constant per pair).
        diff = b["clean_db"].astype(np.float64) - a["clean_db"].astype(np.float64)
        loud = a["clean_db"] > -60
        per_pair = np.array([np.ptp(d[m]) if m.any() else 0.0 for d, m in zip(diff, loud)])
        assert np.all(per_pair < 0.5)
        assert not np.allclose(a["noisy_db"], b["noisy_db"])
    manifest = json.loads((tmp_path / "wet" / "manifest.json").read_text())
    assert manifest["options"]["reverb_share"] == 1.0 and manifest["options"]["rt60"] == [0.2, 1.0]
    with pytest.raises(DataError, match="reverb share 1.5"):
        create_dataset(voice, noise, tmp_path / "x", TINY, MixOptions(nb_samples=2, reverb_share=1.5))


def test_pitch_share_applies_to_reverberant_pairs_too(tmp_path, corpus):
    """Each option keeps the share it was given when both are on (pitch used to skip echoed pairs)."""
    voice, noise = corpus
    arrays = {}
    for name, pitch, reverb in (("wet", 0.0, 1.0), ("wet_pitched", 1.0, 1.0), ("pitched", 1.0, 0.0)):
        create_dataset(voice, noise, tmp_path / name, TINY, MixOptions(
            nb_samples=20, shard_size=20, reverb_share=reverb, rirs_per_shard=2, pitch_share=pitch,
            pitch_semitones=(5.0, 7.0)))
        with np.load(tmp_path / name / "shard-00000.npz") as data:
            arrays[name] = (data["clean_db"].astype(np.float64), data["noisy_db"].astype(np.float64))

    def spread(a, b):  # per pair, how far two targets differ beyond a level change, on loud bins
        loud = arrays[b][0] > -60
        return np.array([np.ptp(d[m]) if m.any() else 0.0 for d, m in zip(arrays[a][0] - arrays[b][0], loud)])

    # Shifted speech: the targets differ by more than the per-pair level change the echo brings...
    assert (spread("wet_pitched", "wet") > 3).sum() >= 15
    assert not np.allclose(arrays["wet_pitched"][1], arrays["wet"][1])
    # ...and are the same shifted frames as without the echo (the history it needs is shifted too,
    # so the frame does not drift): on loud bins, after the per-pair level change, and away from the
    # frame's ends, where the resampler fades a frame shifted alone (a large part of TINY's 16 frames).
    inner = slice(3, -3)
    off = []
    for x, y in zip(arrays["wet_pitched"][0][..., inner], arrays["pitched"][0][..., inner]):
        d = (x - y)[y > y.max() - 25]
        off.append(np.median(np.abs(d - np.median(d))))
    assert np.median(off) < 0.3, np.round(off, 2)


def test_cli_reverb_options(tmp_path, corpus):
    voice, noise = corpus
    out = tmp_path / "out"
    out.mkdir()
    result = CliRunner().invoke(main, [
        "data-creation", "--voice-dir", str(voice), "--noise-dir", str(noise), "--out-dir", str(out),
        "--nb-samples", "4", "--sample-rate", "8000", "--frame-length", "128", "--n-fft", "31",
        "--hop-length", "8", "--reverb", "--reverb-share", "0.5", "--rt60-range", "0.3", "0.6",
        "--max-noises", "2", "--snr-weighting", "hard", "--clean-share", "0.25",
        "--pitch-share", "0.3", "--pitch-range", "0", "5"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["options"]["reverb_share"] == 0.5 and manifest["options"]["rt60"] == [0.3, 0.6]
    assert manifest["options"]["max_noises"] == 2 and manifest["options"]["snr_weighting"] == "hard"
    assert manifest["options"]["clean_share"] == 0.25
    assert manifest["options"]["pitch_share"] == 0.3 and manifest["options"]["pitch_semitones"] == [0.0, 5.0]
