"""``python -m denoise``: the same command as ``denoise`` (useful when another package's script shadows it)."""

from .cli import main

main(prog_name="denoise")
