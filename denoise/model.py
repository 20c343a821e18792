"""The U-Net of the original method: build_unet(settings, model_settings) -> keras.Model. No file I/O."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from .settings import ModelSettings, Settings

if TYPE_CHECKING:
    import keras


def build_unet(settings: Settings, model_settings: ModelSettings | None = None) -> "keras.Model":
    """U-Net mapping the scaled noisy spectrogram to the scaled noise target.

    Input and output: float32, shape (batch, n_bins, n_frames, 1). The encoder has ``depth``
    levels of two 3x3 convolutions (LeakyReLU, He-normal init), max-pooling between levels and
    dropout on the two deepest; the decoder mirrors it with up-sampling and skip connections; a
    1x1 convolution with tanh gives the output in [-1, 1].
    """
    import keras
    from keras import layers

    ms = (model_settings or ModelSettings()).validate(settings)

    def conv(x, filters, size=3, name=None):
        x = layers.Conv2D(filters, size, padding="same", kernel_initializer="he_normal", name=name)(x)
        return layers.LeakyReLU(negative_slope=ms.leaky_alpha)(x)

    inputs = keras.Input(shape=(settings.n_bins, settings.n_frames, 1), name="noisy")
    x = inputs
    skips = []
    for level in range(ms.depth):
        filters = ms.base_filters * 2**level
        x = conv(conv(x, filters), filters)
        if level >= ms.depth - 2 and ms.dropout > 0:
            x = layers.Dropout(ms.dropout)(x)
        if level < ms.depth - 1:
            skips.append(x)
            x = layers.MaxPooling2D(2)(x)
    for level in reversed(range(ms.depth - 1)):
        filters = ms.base_filters * 2**level
        x = conv(layers.UpSampling2D(2)(x), filters, size=2)
        x = layers.Concatenate()([skips[level], x])
        x = conv(conv(x, filters), filters)
    x = conv(x, 2)
    # float32 output even under mixed precision: tanh near +-1 needs the precision.
    outputs = layers.Conv2D(1, 1, activation="tanh", name="noise", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="denoise_unet")


def widen_unet(model: "keras.Model", settings: Settings, model_settings: ModelSettings,
               base_filters: int) -> "keras.Model":
    """A copy of the trained U-Net ``model`` with ``base_filters`` filters in its first level
    (doubling per level as before) that computes exactly what ``model`` computes.

    Old filters keep their weights; new filters get He-normal incoming weights, and every weight
    from a new channel into an old one is zero, so training starts from the trained model and
    grows the new filters: more capacity without training from scratch.
    """
    import dataclasses

    import numpy as np

    if base_filters <= model_settings.base_filters:
        raise ValueError(f"base_filters={base_filters} must exceed the model's {model_settings.base_filters}")
    wider_settings = dataclasses.replace(model_settings, base_filters=base_filters)
    wide = build_unet(settings, wider_settings)
    rng = np.random.default_rng(0)

    def convs(m):
        return [layer for layer in m.layers if layer.__class__.__name__ == "Conv2D"]

    for old, new in zip(convs(model), convs(wide), strict=True):
        kernel, bias = old.get_weights()
        size, _, n_in, n_out = kernel.shape
        shape = new.get_weights()[0].shape
        wide_in, wide_out = shape[2], shape[3]
        # Where each old input channel sits in the new layer's input: after a skip concatenation
        # (a 3x3 convolution reading twice its filters) the up-sampled half starts later.
        if size == 3 and n_in == 2 * n_out and wide_in == 2 * wide_out:
            rows = np.r_[np.arange(n_out), wide_out + np.arange(n_out)]
        else:
            rows = np.arange(n_in)
        wide_kernel = rng.normal(0.0, np.sqrt(2.0 / (size * size * wide_in)), shape).astype(np.float32)
        wide_kernel[..., :n_out] = 0.0
        wide_kernel[:, :, rows, :n_out] = kernel
        wide_bias = np.zeros(wide_out, np.float32)
        wide_bias[:n_out] = bias
        new.set_weights([wide_kernel, wide_bias])
    return wide, wider_settings


LOSSES = ("noise", "noise+clean")
_CUSTOM: dict = {}


def with_dropout(model: "keras.Model", settings: Settings, model_settings: ModelSettings,
                 dropout: float) -> "keras.Model":
    """(model, model settings): a float32 copy of ``model`` whose Dropout layers use ``dropout``
    (fine-tuning a model with more or less regularisation than it was trained with)."""
    import dataclasses

    new_settings = dataclasses.replace(model_settings, dropout=dropout).validate(settings)
    copy = build_unet(settings, new_settings)
    copy.set_weights([w.astype("float32") for w in model.get_weights()])
    return copy, new_settings


def custom_objects() -> dict:
    """Keras objects of ours that saved models may name (the noise+clean loss), registered once."""
    if _CUSTOM:
        return _CUSTOM
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="denoise")
    class NoiseAndCleanLoss(keras.losses.Loss):
        """Huber on the scaled noise target plus an L1 error on the resulting clean estimate.

        y_true packs two channels: the scaled noise target and the scaled noisy input. The clean
        estimate is what prediction makes (noisy dB minus the predicted noise share, clipped to
        [0, max_removed_db]) as a power-law compressed magnitude (|S|**power), so loud speech bins
        weigh more than quiet ones: over-suppressing speech costs what it costs the listener.
        """

        def __init__(self, in_offset_db=-30.0, in_scale_db=70.0, out_scale_db=60.0, max_removed_db=40.0,
                     power=0.3, weight=0.1, name="noise_and_clean", **kwargs):
            super().__init__(name=name, **kwargs)
            self.params = dict(in_offset_db=in_offset_db, in_scale_db=in_scale_db, out_scale_db=out_scale_db,
                               max_removed_db=max_removed_db, power=power, weight=weight)

        def call(self, y_true, y_pred):
            p = self.params
            y_pred = ops.cast(y_pred, "float32")
            target, x = y_true[..., :1], y_true[..., 1:2]
            noise_term = keras.losses.huber(target, y_pred)
            noisy_db = x * p["in_scale_db"] + p["in_offset_db"]
            estimate_db = noisy_db - ops.clip(y_pred * p["out_scale_db"], 0.0, p["max_removed_db"])
            clean_db = noisy_db - target * p["out_scale_db"]
            k = p["power"] * 0.11512925464970229  # ln(10) / 20: dB -> compressed magnitude
            clean_term = ops.mean(ops.abs(ops.exp(k * estimate_db) - ops.exp(k * clean_db)), axis=-1)
            return noise_term + p["weight"] * clean_term

        def get_config(self):
            return {**super().get_config(), **self.params}

    _CUSTOM["denoise>NoiseAndCleanLoss"] = NoiseAndCleanLoss
    return _CUSTOM


def make_loss(kind: str, settings: Settings) -> Callable:
    """The training loss: "noise" (Huber on the noise target, the original method) or
    "noise+clean" (also scores the clean estimate; needs targets packed with the input)."""
    import keras

    if kind == "noise":
        return keras.losses.Huber()
    if kind == "noise+clean":
        from .enhance import FLOOR_DB

        return custom_objects()["denoise>NoiseAndCleanLoss"](
            in_offset_db=settings.in_offset_db, in_scale_db=settings.in_scale_db,
            out_scale_db=settings.out_scale_db, max_removed_db=-FLOOR_DB)
    raise ValueError(f"loss={kind!r} must be one of {', '.join(LOSSES)}")


def compile_model(model, learning_rate: float, loss: str = "noise", settings: Settings | None = None) -> None:
    """Adam and Huber loss, as in the original method (or the noise+clean loss, see make_loss)."""
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=make_loss(loss, settings or Settings()),
    )
