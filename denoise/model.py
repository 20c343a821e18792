"""The U-Net of the original method: build_unet(settings, model_settings) -> keras.Model. No file I/O."""

from __future__ import annotations

from .settings import ModelSettings, Settings


def build_unet(settings: Settings, model_settings: ModelSettings | None = None):
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


def compile_model(model, learning_rate: float) -> None:
    """Adam and Huber loss, as in the original method."""
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=keras.losses.Huber(),
        metrics=["mae"],
    )
