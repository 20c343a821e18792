"""A validation set made like the held-out one but from the training speakers and noise files.

    python benchmarks/trainlike_valset.py --split work_data/split --out work_data/trainlike

Scored beside the held-out set (`benchmarks/fit_gap.txt`), it tells under-fitting from
over-fitting: if the models do no better on speakers and noises they were trained on (in new mixes:
new segments, offsets, SNRs and levels), more capacity or training is the lever; if they do much
better, more varied data is. Every third training speaker's file (37 of 110 wide-band ones) and all
training noise files; the same mixing code and seed as the held-out set (corpus_split.make_valset).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus_split import make_valset  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", type=Path, default=Path("work_data/split"))
    ap.add_argument("--out", type=Path, default=Path("work_data/trainlike"))
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args()
    src = args.out.with_name(args.out.name + "_sources")
    shutil.rmtree(src, ignore_errors=True)
    shutil.rmtree(args.out, ignore_errors=True)
    speech = sorted((args.split / "train" / "speech_16k").rglob("*.flac"))[::3]
    for path in speech:
        dst = src / "speech" / path.relative_to(args.split / "train" / "speech_16k")
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(path.resolve(), dst)
    (src / "noise").symlink_to((args.split / "train" / "noise").resolve())
    print(f"{len(speech)} training speech files, noise from {args.split / 'train' / 'noise'}")
    make_valset(src, args.out, args.seed)


if __name__ == "__main__":
    main()
