"""How much of each system's SI-SDR is lost to sound under 20 Hz (drift, infrasound) it leaves in?

    python benchmarks/infrasound.py --valset work_data/valset --work runs/s27/q16 --part 16k \\
        --systems "denoise (shipped)" DeepFilterNet3 | tee benchmarks/infrasound.txt

Reads the outputs that quality.py left in ``--work/PART/SYSTEM/``. Speech holds nothing under 20 Hz,
but SI-SDR counts whatever is there: in the references (their recordings' own drift) as signal, in a
noise recording as noise. Per system and SNR band: SI-SDR as scored, and with the output high-passed
at 20 Hz (4th-order Butterworth, forward and backward, so no phase shift); then the files where the
high-pass gains more than 3 dB, with the power under 20 Hz in the clean reference, the noise and the
output. No high-pass is applied by `denoise predict`; this only measures.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.signal import butter, sosfiltfilt

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from falls import find_output, mono  # noqa: E402
from paired import band_order, load, system_folder  # noqa: E402

from denoise.evaluate import si_sdr  # noqa: E402

CUT_HZ = 20.0


def power_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(x.astype(np.float64) ** 2) + 1e-12))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--valset", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True, help="quality.py's --work folder")
    ap.add_argument("--part", default="16k")
    ap.add_argument("--systems", nargs="+", required=True, help="labels or folder names, as for paired.py")
    args = ap.parse_args()
    clean_dir, noisy_dir = args.valset / args.part / "clean", args.valset / args.part / "noisy"
    print(f"\n## {args.part}: SI-SDR dB as scored / with the output high-passed at {CUT_HZ:g} Hz\n")
    print("| system | all files | per band |")
    print("|---|---|---|")
    notable = []
    filters: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # rate -> (high-pass, low-pass)
    for system in args.systems:
        folder = system_folder(args.work, args.part, system)
        by_band: dict[str, list[tuple[float, float]]] = {}
        for row in load(args.work, args.part, system).values():
            out, rate = mono(find_output(folder, row["file"]))
            clean, noisy = mono(clean_dir / (row["file"] + ".wav"))[0], mono(noisy_dir / (row["file"] + ".wav"))[0]
            if rate not in filters:
                filters[rate] = tuple(butter(4, CUT_HZ, kind, fs=rate, output="sos") for kind in ("highpass", "lowpass"))
            high, low = filters[rate]
            pair = (si_sdr(clean, out), si_sdr(clean, sosfiltfilt(high, out)))
            by_band.setdefault(row["group"], []).append(pair)
            if pair[1] - pair[0] > 3.0:
                notable.append((system, row["file"], *pair, power_db(sosfiltfilt(low, clean)),
                                power_db(sosfiltfilt(low, noisy - clean)), power_db(sosfiltfilt(low, out))))
        everything = np.array([p for pairs in by_band.values() for p in pairs])
        bands = "; ".join(f"{band} {np.mean([p[0] for p in by_band[band]]):.1f} / {np.mean([p[1] for p in by_band[band]]):.1f}"
                          for band in sorted(by_band, key=band_order))
        print(f"| {system} | {everything[:, 0].mean():.2f} / {everything[:, 1].mean():.2f} | {bands} |")
    print(f"\nFiles where the high-pass gains more than 3 dB (power under {CUT_HZ:g} Hz, dB full scale):\n")
    print("| system | file | SI-SDR dB | high-passed | clean | noise | output |")
    print("|---|---|---|---|---|---|---|")
    for system, name, before, after, c, n, o in notable:
        print(f"| {system} | {name} | {before:.1f} | {after:.1f} | {c:.1f} | {n:.1f} | {o:.1f} |")


if __name__ == "__main__":
    main()
