"""Which files score below their input at high SNR, and why: speech removed, or rumble in the reference?

    python benchmarks/falls.py --valset work_data/valset --work work_data/bench | tee benchmarks/falls.txt

Reads the per-file scores and outputs ``benchmarks/quality.py`` left in ``--work`` (run it first with
the same ``--valset``). For every file of the chosen bands where a system's PESQ, STOI or SI-SDR is
below the noisy input's, it prints the falls and two figures that tell the causes apart:
  ref <80 Hz  the clean reference's energy below 80 Hz against its energy above (dB): recordings with
              mains hum or rumble under the voice score high here;
  SI-SDR >80  SI-SDR of input and output when reference, input and output are all high-passed at
              80 Hz (4th-order Butterworth, zero phase): a fall that disappears here is the system
              removing the reference's own rumble, not its speech.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.signal import butter, sosfiltfilt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from denoise import audio as audio_io  # noqa: E402
from denoise.evaluate import si_sdr  # noqa: E402

CUT_HZ = 80.0


def folder_name(system: str) -> str:
    """quality.py's folder for a system's outputs ("denoise (shipped)" -> "denoise__shipped_")."""
    return "".join(c if c.isalnum() else "_" for c in system)


def noise_class(file: str) -> str:
    """The noise class of a validation file ("snr+05/dog-1743-1" -> "dog"): names start with it."""
    return file.split("/")[-1].split("-")[0]


def find_output(folder: Path, key: str) -> Path:
    matches = [p for p in folder.glob(f"{key}.*") if p.suffix != ".png"]
    if not matches:
        raise SystemExit(f"{folder / key}: no output; run benchmarks/quality.py with this --work first")
    return matches[0]


def mono(path: Path) -> tuple[np.ndarray, int]:
    data, rate = audio_io.read_audio(path)
    return data.mean(axis=1).astype(np.float64), rate


def low_share_db(clean: np.ndarray, rate: int) -> float:
    """Energy below CUT_HZ against energy above it, in dB."""
    power = np.abs(np.fft.rfft(clean)) ** 2
    freqs = np.fft.rfftfreq(clean.size, 1.0 / rate)
    low, high = power[freqs < CUT_HZ].sum(), power[freqs >= CUT_HZ].sum()
    return float(10 * np.log10((low + 1e-20) / (high + 1e-20)))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--valset", type=Path, default=Path("work_data/valset"))
    ap.add_argument("--work", type=Path, default=Path("work_data/bench"), help="quality.py's --work folder")
    ap.add_argument("--parts", default="16k,16k_high,8k,8k_high", help="validation set parts, comma-separated")
    ap.add_argument("--bands", default="snr+15,snr+20", help="SNR band folders to look at, comma-separated")
    ap.add_argument("--systems", default="denoise (shipped),DeepFilterNet3",
                    help="systems as named in quality.py's tables, comma-separated")
    args = ap.parse_args(argv)
    bands = args.bands.split(",")
    print(f"$ python benchmarks/falls.py --valset {args.valset} --work {args.work} --parts {args.parts} "
          f"--bands {args.bands} --systems \"{args.systems}\"\n")
    for part in args.parts.split(","):
        for system in args.systems.split(","):
            folder = args.work / part / folder_name(system)
            scores = folder / "scores.json"
            if not scores.exists():
                print(f"({part}, {system}: no scores in {folder}; skipped)\n")
                continue
            rows = [r for r in json.loads(scores.read_text())["rows"] if r["group"] in bands]
            print(f"## {part}, {system}: {len(rows)} files in {', '.join(bands)}\n")
            print("| file | PESQ out - in | STOI out - in | SI-SDR out - in (dB) | ref <80 Hz (dB) "
                  "| SI-SDR >80 Hz in -> out (dB) |")
            print("|---|---|---|---|---|---|")
            falls = 0
            for r in rows:
                deltas = {m: r[f"{m}_output"] - r[f"{m}_input"] for m in ("pesq", "stoi", "si_sdr")}
                if min(deltas.values()) >= 0:
                    continue
                falls += 1
                clean, rate = mono(args.valset / part / "clean" / f"{r['file']}.wav")
                noisy, _ = mono(args.valset / part / "noisy" / f"{r['file']}.wav")
                out, _ = mono(find_output(folder, r["file"]))
                n = min(clean.size, noisy.size, out.size)
                sos = butter(4, CUT_HZ, "highpass", fs=rate, output="sos")
                c, x, y = (sosfiltfilt(sos, a[:n]) for a in (clean, noisy, out))
                print(f"| {r['file']} | {deltas['pesq']:+.2f} | {deltas['stoi']:+.4f} | {deltas['si_sdr']:+.2f} "
                      f"| {low_share_db(clean, rate):+.1f} | {si_sdr(c, x):.2f} -> {si_sdr(c, y):.2f} |")
            print(f"\n{falls} of {len(rows)} files below the input in at least one metric.\n")


if __name__ == "__main__":
    main()
