"""Knowledge of public dataset layouts: which audio files of a folder data creation should use.

LibriSpeech needs nothing special (its transcripts and metadata are not audio, so the recursive
search passes over them). ESC-50 files carry their class only in ``meta/esc50.csv`` (columns
filename, fold, target, category, esc10, src_file, take), so choosing classes by name reads it.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

from . import audio as audio_io
from .errors import DataError

ESC50_METADATA = Path("meta") / "esc50.csv"


def find_esc50_metadata(folder: Path) -> Path | None:
    """``meta/esc50.csv`` for an ESC-50 folder passed as the unpacked root (``ESC-50-master``),
    its ``audio/`` folder, or the folder the archive was unpacked into; None if there is none."""
    folder = Path(folder)
    candidates = [folder / ESC50_METADATA, folder.parent / ESC50_METADATA]
    candidates += sorted(folder.glob(f"*/{ESC50_METADATA.as_posix()}"))
    return next((path for path in candidates if path.is_file()), None)


def read_esc50_classes(metadata: Path) -> dict[str, str]:
    """File name -> class name (the ``category`` column) from an ESC-50 metadata file."""
    try:
        with open(metadata, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = {"filename", "category"} - set(reader.fieldnames or ())
            if missing:
                raise DataError(f"{metadata}: not ESC-50 metadata (no {', '.join(sorted(missing))} column)")
            classes = {row["filename"]: row["category"] for row in reader if row.get("filename")}
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{metadata}: cannot read ESC-50 metadata ({exc})") from None
    if not classes:
        raise DataError(f"{metadata}: ESC-50 metadata lists no files")
    return classes


def parse_classes(text: str) -> tuple[str, ...]:
    """'clock_tick, footsteps' -> ('clock_tick', 'footsteps'): comma-separated, blanks dropped."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def find_sources(folder: Path, classes: Sequence[str] = (), skip: Path | None = None) -> list[Path]:
    """Audio files under ``folder`` (recursively, sorted; none under ``skip``); with ``classes``,
    only the ESC-50 clips whose class the metadata names among them. Unknown class names raise
    DataError listing the valid ones; files the metadata does not list are left out."""
    files = audio_io.find_audio_files(folder, skip=skip)
    if not classes:
        return files
    metadata = find_esc50_metadata(folder)
    if metadata is None:
        raise DataError(
            f"{folder}: choosing noise classes needs ESC-50 metadata, but there is no {ESC50_METADATA} "
            "in this folder, its parent or its sub-folders"
        )
    by_file = read_esc50_classes(metadata)
    valid = sorted(set(by_file.values()))
    unknown = [name for name in classes if name not in valid]
    if unknown:
        raise DataError(f"{metadata}: unknown class(es) {', '.join(unknown)}; valid: {', '.join(valid)}")
    wanted = set(classes)
    chosen = [path for path in files if by_file.get(path.name) in wanted]
    if not chosen:
        raise DataError(f"{folder}: no audio file of class(es) {', '.join(classes)} listed in {metadata}")
    return chosen
