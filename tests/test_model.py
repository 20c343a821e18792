import numpy as np
import pytest

from conftest import TINY
from denoise.model import build_unet
from denoise.settings import ModelSettings, Settings


def test_original_unet_has_ten_encoder_convolutions_and_tanh_output():
    import keras

    model = build_unet(Settings(), ModelSettings())
    assert model.input_shape == model.output_shape == (None, 128, 128, 1)
    convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    pools = [l for l in model.layers if isinstance(l, keras.layers.MaxPooling2D)]
    ups = [l for l in model.layers if isinstance(l, keras.layers.UpSampling2D)]
    assert len(pools) == len(ups) == 4
    # 10 encoder convolutions, 4 x (1 up-conv + 2 convs) in the decoder, then 2 output convolutions.
    assert len(convs) == 10 + 12 + 2
    assert all(isinstance(c.kernel_initializer, keras.initializers.HeNormal) for c in convs[:-1])
    assert model.layers[-1].activation.__name__ == "tanh"
    assert sum(isinstance(l, keras.layers.Dropout) for l in model.layers) == 2
    assert any(isinstance(l, keras.layers.Concatenate) for l in model.layers)


def test_tiny_model_output_range(rng):
    model = build_unet(TINY, ModelSettings(base_filters=4, depth=2))
    y = np.asarray(model(rng.standard_normal((3, 16, 16, 1)).astype(np.float32) * 5))
    assert y.shape == (3, 16, 16, 1) and np.all(np.abs(y) <= 1.0)


def test_noise_and_clean_loss_weights_loud_bins_more():
    import keras

    from denoise.model import make_loss

    settings = Settings()
    loss = make_loss("noise+clean", settings)
    huber = keras.losses.Huber()
    target = np.full((1, 4, 4, 1), 0.1, np.float32)  # 6 dB of noise share in every bin

    def packed(noisy_db):
        x = (np.full((1, 4, 4, 1), noisy_db, np.float32) - settings.in_offset_db) / settings.in_scale_db
        return np.concatenate([target, x], axis=-1)

    # A perfect prediction leaves only the (zero) Huber term.
    assert float(loss(packed(-20.0), target)) == pytest.approx(0.0, abs=1e-7)
    # The same 6 dB over-suppression costs more in a loud bin than in a quiet one; the noise
    # term alone cannot tell them apart.
    over = target + 0.1
    loud, quiet = float(loss(packed(-10.0), over)), float(loss(packed(-70.0), over))
    noise_term = float(huber(target, over))
    assert loud - noise_term > 5 * (quiet - noise_term) > 0


def test_unknown_loss_is_refused():
    from denoise.model import make_loss

    with pytest.raises(ValueError, match="noise\\+clean"):
        make_loss("clean", Settings())


def test_widened_unet_computes_the_same_and_has_more_filters(rng):
    import keras

    from denoise.model import widen_unet

    small = ModelSettings(base_filters=4, depth=3)
    model = build_unet(TINY, small)
    wide, wide_settings = widen_unet(model, TINY, small, 6)
    assert wide_settings.base_filters == 6 and wide_settings.depth == 3
    assert wide.count_params() > 2 * model.count_params()
    x = rng.standard_normal((2, 16, 16, 1)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(wide(x)), np.asarray(model(x)), atol=1e-6)
    # The new filters are live: their weights are not all zero, so training can use them.
    first = [l for l in wide.layers if isinstance(l, keras.layers.Conv2D)][0]
    assert np.abs(first.get_weights()[0][..., 4:]).sum() > 0
    with pytest.raises(ValueError, match="must exceed"):
        widen_unet(model, TINY, small, 4)


def test_with_dropout_keeps_the_weights_and_changes_only_the_rate(rng):
    import keras

    from denoise.model import with_dropout

    small = ModelSettings(base_filters=4, depth=3, dropout=0.0)
    model = build_unet(TINY, small)
    copy, copy_settings = with_dropout(model, TINY, small, 0.3)
    assert copy_settings == ModelSettings(base_filters=4, depth=3, dropout=0.3)
    rates = [l.rate for l in copy.layers if isinstance(l, keras.layers.Dropout)]
    assert rates and all(r == 0.3 for r in rates)
    x = rng.standard_normal((2, 16, 16, 1)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(copy(x)), np.asarray(model(x)), atol=1e-6)
