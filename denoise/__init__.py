"""denoise: remove environmental noise from speech recordings with a U-Net on magnitude spectrograms.

Python use::

    from denoise import load_model, enhance_file
    loaded = load_model("weights/denoise_16k.keras")
    enhance_file("noisy.wav", "clean.wav", loaded.settings, loaded.predict)
"""

__version__ = "0.1.0"

__all__ = ["__version__", "load_model", "enhance_file"]


def __getattr__(name):
    # Lazy: importing the package must not import TensorFlow.
    if name == "load_model":
        from .model_io import load_model

        return load_model
    if name == "enhance_file":
        from .enhance import enhance_file

        return enhance_file
    raise AttributeError(name)
