import numpy as np
import pytest

from denoise.settings import Settings
from denoise.spectrogram import (
    block_starts,
    example_db,
    istft,
    magnitude_db,
    noise_target_db,
    overlap_add,
    scale_input,
    scale_target,
    split_blocks,
    stft,
    unscale_input,
    unscale_target,
)


@pytest.mark.parametrize("n", [8064, 8064 * 3 + 17, 100, 1])
def test_stft_round_trip_is_exact_for_odd_n_fft(rng, n):
    s = Settings()
    x = rng.standard_normal(n).astype(np.float32) * 0.1
    spec = stft(x, s)
    assert spec.shape[0] == 128
    y = istft(spec, s, length=n)
    assert y.shape == (n,)
    assert np.max(np.abs(y - x)) < 1e-5


def test_example_is_128_by_128_and_in_absolute_db():
    s = Settings()
    t = np.arange(s.frame_length) / s.sample_rate
    loud = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    db_loud, db_quiet = example_db(loud, s), example_db(0.1 * loud, s)
    assert db_loud.shape == (128, 128)
    # Absolute dB: a signal 20 dB quieter reads 20 dB lower, not normalised to its own maximum.
    assert np.isclose(db_loud.max() - db_quiet.max(), 20.0, atol=0.01)
    assert magnitude_db(np.zeros((2, 2), np.complex64), s).min() == pytest.approx(-100.0)


def test_scalings_invert(rng):
    s = Settings()
    db = rng.uniform(-100, 40, size=(128, 128)).astype(np.float32)
    assert np.allclose(unscale_input(scale_input(db, s), s), db, atol=1e-4)
    assert scale_input(db, s).min() >= -1.0 - 1e-6
    target = rng.uniform(-50, 50, size=(8, 8)).astype(np.float32)
    assert np.allclose(unscale_target(scale_target(target, s), s), target, atol=1e-4)
    assert scale_target(np.array([1000.0]), s)[0] == 1.0  # clipped to tanh's range
    assert np.all(noise_target_db(db, db) == 0)


@pytest.mark.parametrize("total", [1, 127, 128, 129, 200, 640])
def test_blocks_cover_every_frame_and_overlap_add_is_identity(rng, total):
    starts = block_starts(total, 128, 64)
    assert starts[0] == 0
    # No block runs past the end of a recording longer than one block: the last one ends on its last frame.
    assert starts[-1] + 128 == max(total, 128)
    assert all(b - a <= 64 for a, b in zip(starts, starts[1:]))
    values = rng.standard_normal((4, total)).astype(np.float32)
    blocks = split_blocks(values, starts, 128)
    assert blocks.shape == (len(starts), 4, 128)
    assert np.allclose(overlap_add(blocks, starts, total), values, atol=1e-5)


def test_a_block_past_the_end_is_padded_with_the_recordings_own_frames():
    values = np.arange(10, dtype=np.float32)[None, :]
    block = split_blocks(values, block_starts(10, 16, 8), 16)[0, 0]
    assert np.array_equal(block[:10], values[0])
    assert np.array_equal(block[10:], values[0, ::-1][:6])  # mirrored, never a constant fill


def test_overlap_add_cross_fades_between_blocks():
    starts = block_starts(256, 128, 64)
    blocks = np.stack([np.full((1, 128), float(i)) for i in range(len(starts))]).astype(np.float32)
    merged = overlap_add(blocks, starts, 256)[0]
    assert np.all(np.diff(merged) >= -1e-6)  # a smooth ramp from block to block, no jumps
    assert np.max(np.diff(merged)) < 0.1


@pytest.mark.parametrize("n", [8064, 1000, 300, 20])
@pytest.mark.parametrize("center", [True, False])
def test_numpy_stft_matches_librosa(rng, n, center):
    import librosa

    s = Settings()
    x = rng.standard_normal(max(n, s.n_fft if not center else n)).astype(np.float32)
    ref = librosa.stft(x if not center or n >= s.n_fft else np.pad(x, (0, s.n_fft - n)),
                       n_fft=s.n_fft, hop_length=s.hop_length, center=center)
    ours = stft(x, s, center=center)
    assert ours.shape == ref.shape
    assert np.max(np.abs(ours - ref)) < 1e-4
    back = librosa.istft(ref, n_fft=s.n_fft, hop_length=s.hop_length, center=center, length=len(x) if center else None)
    mine = istft(ours, s, length=len(x) if center else None, center=center)
    # Without centring the first and last samples are covered by near-zero window values only:
    # both divide rounding noise by almost nothing there, so compare the covered interior.
    edge = 0 if center else s.n_fft // 2
    assert mine.shape == back.shape
    assert np.max(np.abs(mine - back)[edge : len(mine) - edge]) < 1e-4
