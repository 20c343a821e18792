"""Figures: the display spectrogram matches librosa's STFT; PNG spectrograms share a colour scale."""

import warnings

import numpy as np
import pytest

from denoise.plots import spectrogram_db, spectrogram_png


@pytest.mark.parametrize("n, rate", [(16000, 16000), (12345, 44100), (100, 8000), (0, 16000)])
def test_spectrogram_db_matches_librosa(rng, n, rate):
    import librosa

    audio = 0.1 * rng.standard_normal(n).astype(np.float32)
    db, hop_s = spectrogram_db(audio, rate)
    n_fft = 1 << int(np.ceil(np.log2(0.032 * rate)))
    assert hop_s == (n_fft // 4) / rate
    if n:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # librosa: n_fft too large for a short input
            expected = 20 * np.log10(np.maximum(np.abs(librosa.stft(audio, n_fft=n_fft, hop_length=n_fft // 4)), 1e-6))
        np.testing.assert_allclose(db, expected, atol=1e-3)
    else:
        assert db.shape == (n_fft // 2 + 1, 1)


def test_spectrogram_png_shares_the_colour_scale(rng):
    loud = 0.5 * rng.standard_normal((8000, 2)).astype(np.float32)
    png, vmax = spectrogram_png(loud, 8000, "loud")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and vmax > 0
    quiet_png, same = spectrogram_png(loud * 0.01, 8000, "quiet", vmax)
    assert same == vmax and quiet_png != png
