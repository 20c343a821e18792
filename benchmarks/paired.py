"""Paired differences between systems scored by quality.py: candidate minus baseline, file by file.

    python benchmarks/paired.py --work runs/s25/q/w16 --parts 16k,16k_steady \\
        --baseline "denoise (shipped)" --systems "denoise (n24)" "denoise (n24b)"

Reads the ``scores.json`` that quality.py leaves in ``--work/PART/SYSTEM/`` (SYSTEM as its folder
name or as the table's label) and prints, per part and metric, the mean difference over the files
both systems scored with a 95 % interval (1.96 standard errors of the paired differences: the normal
approximation, 1.5 % narrower than Student's t at 80 files), and how many files got better and
worse: a lead smaller than its interval is not one. ``--by band`` adds a table per SNR band (the
``group`` quality.py gives each file), ``--by class`` one per noise class (file names start with
it). Such groups hold about a dozen files, so their intervals are wide.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from falls import folder_name, noise_class  # noqa: E402  (quality.py's folder for a system label)

METRICS = (("pesq", "PESQ"), ("stoi", "STOI"), ("si_sdr", "SI-SDR dB"), ("ovrl", "DNSMOS OVRL"), ("bak", "DNSMOS BAK"))


def band_order(group: str) -> tuple[float, str]:
    """SNR bands in numeric order ("snr-05" before "snr+00"); a name without a number after them."""
    match = re.search(r"[-+]?\d+(\.\d+)?", group)
    return (float(match.group()) if match else float("inf"), group)


# --by: how a row's group is named, and how groups are ordered
GROUPINGS: dict[str, tuple[Callable[[dict], str], Callable[[str], object]]] = {
    "band": (lambda row: row.get("group") or "(no band)", band_order),
    "class": (lambda row: noise_class(row["file"]), str),
}


def system_folder(work: Path, part: str, system: str) -> Path:
    """quality.py's folder of one system's outputs and scores.json, named by label or folder name."""
    for name in (system, folder_name(system)):
        if (work / part / name / "scores.json").exists():
            return work / part / name
    raise SystemExit(f"{work / part}: no scores.json for {system!r}")


def load(work: Path, part: str, system: str) -> dict[str, dict]:
    """file -> its row of scores for one system on one part."""
    rows = json.loads((system_folder(work, part, system) / "scores.json").read_text())["rows"]
    return {row["file"]: row for row in rows}


def paired(base: dict[str, dict], cand: dict[str, dict], key: str) -> tuple[float, float, int, int, int] | None:
    """(mean difference, 95 % half-width, files better, files worse, files) over the files both scored."""
    col = f"{key}_output"
    files = sorted(f for f in base if f in cand and col in base[f] and col in cand[f])
    diffs = np.array([cand[f][col] - base[f][col] for f in files], dtype=float)
    diffs = diffs[np.isfinite(diffs)]
    if len(diffs) < 2:
        return None
    half = 1.96 * diffs.std(ddof=1) / np.sqrt(len(diffs))
    return float(diffs.mean()), float(half), int((diffs > 0).sum()), int((diffs < 0).sum()), len(diffs)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True, help="quality.py's --work folder")
    ap.add_argument("--parts", required=True, help="comma-separated parts of the validation set, e.g. 16k,16k_steady")
    ap.add_argument("--baseline", required=True)
    ap.add_argument("--systems", nargs="+", required=True)
    ap.add_argument("--by", choices=sorted(GROUPINGS), action="append", default=[],
                    help="also one table per SNR band or noise class of each part (repeatable)")
    args = ap.parse_args(argv)
    for part in args.parts.split(","):
        base = load(args.work, part, args.baseline)
        cands = {system: load(args.work, part, system) for system in args.systems}
        print_table(f"{part}: minus {args.baseline}", base, cands)
        for by in dict.fromkeys(args.by):
            group_of, order = GROUPINGS[by]
            for group in sorted({group_of(row) for row in base.values()}, key=order):
                print_table(f"{part}, {group}: minus {args.baseline}",
                            {f: row for f, row in base.items() if group_of(row) == group}, cands)


def print_table(title: str, base: dict[str, dict], cands: dict[str, dict[str, dict]]) -> None:
    """One markdown table: each candidate minus the baseline over the baseline's files."""
    print(f"\n## {title} (mean, 95 % interval, files better / worse)\n")
    print("| system | " + " | ".join(label for _, label in METRICS) + " |")
    print("|---" * (len(METRICS) + 1) + "|")
    for system, cand in cands.items():
        cells = []
        for key, _ in METRICS:
            r = paired(base, cand, key)
            digits = 1 if key == "si_sdr" else 3
            cells.append("n/a" if r is None else f"{r[0]:+.{digits}f} ± {r[1]:.{digits}f} ({r[2]}/{r[3]})")
        paired_files = len(set(base) & set(cand))
        note = "" if paired_files == len(base) else f" ({paired_files} of {len(base)} files)"
        print(f"| {system}{note} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
