"""The package's exceptions: one root, a few kinds. Only the CLI turns them into exit codes."""


class DenoiseError(Exception):
    """Root of every error the package raises on purpose."""


class SettingsError(DenoiseError):
    """A settings value or settings file is invalid."""


class AudioError(DenoiseError):
    """An audio file cannot be read or written, or its content is unusable."""


class UsageProblem(DenoiseError):
    """The arguments do not fit together (the CLI's usage error, exit code 2)."""


class DataError(DenoiseError):
    """A dataset folder is missing, empty or inconsistent."""


class MissingDependencyError(DenoiseError):
    """An optional package needed for this command is not installed."""


class Cancelled(DenoiseError):
    """The work was stopped because whoever asked for it no longer waits for it."""


class ModelFileError(DenoiseError):
    """A model file or its settings cannot be loaded, saved or run."""


def install_hint(extra: str) -> str:
    """How to add an optional extra: the package is installed from its repository, not by name."""
    return f'pip install -e ".[{extra}]" in the checkout (or "denoise-unet[{extra}] @ git+URL")'
