"""Stereo: each channel denoised on its own, or one gain for all (``--link-channels``).

Two-channel recordings made from the validation set's held-out speech and noise:
- "one scene": one voice in both channels (the right 2 dB quieter, as a voice a little off centre),
  each channel with its own noise (the file's recorded noise, and the same noise half the file later);
- "uneven noise": as "one scene", the left channel's noise 5 (10) dB under the file's, the right's
  5 (10) dB over (a microphone nearer the noise);
- "dual mono": the same noisy signal in both channels;
- "two lavaliers": a voice in each channel, each with the other's voice 15 dB under it (crosstalk)
  and its own noise; scored against each microphone's clean sound (crosstalk included), and against
  each one's own voice alone; and with the right microphone 30 dB quieter and the left's noise 10 dB
  under the file's.

Scores are each channel's PESQ and SI-SDR against its clean channel, averaged over files, the
paired change from separate to linked (mean +- 1.96 standard errors over files), and, for the
scenes with one voice, how far the voice wanders: the standard deviation over speech frames of the
level difference between the channels (300-4000 Hz), in dB, where the clean voice's is 0.

    python benchmarks/stereo.py --model weights/denoise_16k.keras > benchmarks/stereo.txt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from denoise.enhance import enhance_signal  # noqa: E402
from denoise.evaluate import score  # noqa: E402
from denoise.model_io import load_model  # noqa: E402


def wander_db(stereo: np.ndarray, clean: np.ndarray, rate: int) -> float:
    """Standard deviation of the left-right level difference (300-4000 Hz) over the frames where the
    clean voice is within 25 dB of its loudest frame."""
    from scipy.signal import stft

    def band_power(x):
        f, _, z = stft(x, rate, nperseg=512, noverlap=256, axis=0)
        band = (f >= 300) & (f <= 4000)
        return np.sum(np.abs(z[band]) ** 2, axis=0)  # (channels, frames)

    clean_bands = band_power(clean)
    clean_power = clean_bands.sum(axis=0)
    voiced = clean_power > clean_power.max() * 10 ** (-25 / 10)
    power = band_power(stereo)
    ild = 10 * np.log10(np.maximum(power[0], 1e-20) / np.maximum(power[1], 1e-20))
    clean_ild = 10 * np.log10(clean_bands[0] / clean_bands[1])
    return float(np.std((ild - clean_ild)[voiced]))


def scenes(clean: np.ndarray, other: np.ndarray, noise: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(clean, noisy) stereo pairs of each kind; ``other``: a second voice as long as ``clean``."""
    half = np.roll(noise, len(noise) // 2)
    voice = np.stack([clean, clean * 10 ** (-2 / 20)], axis=1)
    mics = np.stack([clean + other * 10 ** (-15 / 20), other + clean * 10 ** (-15 / 20)], axis=1)
    own = np.stack([clean, other], axis=1)
    both = np.stack([noise, half], axis=1)

    def apart(db):  # the left channel's noise db/2 under the file's, the right's db/2 over
        return voice + np.stack([noise * 10 ** (-db / 40), half * 10 ** (db / 40)], axis=1)

    quiet = np.array([1.0, 10 ** (-30 / 20)])
    lavaliers = mics + both  # one mixture, scored against two references
    return {
        "one scene": (voice, voice + both),
        "uneven noise, 10 dB apart": (voice, apart(10)),
        "uneven noise, 20 dB apart": (voice, apart(20)),
        "dual mono": (np.stack([clean, clean], axis=1), np.stack([clean + noise, clean + noise], axis=1)),
        "two lavaliers": (mics, lavaliers),
        "two lavaliers, scored on each one's own voice": (own, lavaliers),
        "two lavaliers, the right 30 dB quieter, the left's noise 10 dB under": (
            mics * quiet, (mics + both * np.array([10 ** (-10 / 20), 1.0])) * quiet),
    }


WANDER = ("one scene", "uneven noise, 10 dB apart", "uneven noise, 20 dB apart")
COLUMNS = ("pesq_l", "pesq_r", "si_sdr_l", "si_sdr_r", "wander")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--valset", type=Path, default=Path("work_data/valset"))
    ap.add_argument("--model", type=Path, default=Path("weights/denoise_16k.keras"))
    ap.add_argument("--part", default="16k")
    ap.add_argument("--files", type=int, default=30)
    args = ap.parse_args()
    clean_files = sorted((args.valset / args.part / "clean").rglob("*.wav"))
    if not clean_files:
        sys.exit(f"{args.valset}/{args.part}/clean: no validation set (run benchmarks/corpus_split.py first)")
    step = max(1, len(clean_files) // args.files)
    chosen = clean_files[::step][: args.files]
    model = load_model(args.model)
    settings, predict = model.settings, model.predict
    modes = {"input": None, "separate": False, "linked": True}
    rows: dict[str, dict[str, list[float]]] = {}
    for i, path in enumerate(chosen):
        clean, rate = sf.read(str(path), dtype="float32")
        noisy, _ = sf.read(str(path).replace("/clean/", "/noisy/"), dtype="float32")
        other, _ = sf.read(str(chosen[(i + 1) % len(chosen)]), dtype="float32")
        other = np.resize(other, clean.shape) * np.sqrt(np.mean(clean**2) / np.mean(other**2))
        done: dict[tuple[int, str], np.ndarray] = {}  # a mixture shared by two scenes is denoised once per mode
        for scene, (ref, mixture) in scenes(clean, other, noisy - clean).items():
            gain = min(1.0, 0.95 / np.max(np.abs(mixture)))
            ref, mix = (ref * gain).astype(np.float32), (mixture * gain).astype(np.float32)
            for mode, link in modes.items():
                key = (id(mixture), mode)
                if key not in done:
                    done[key] = mix if link is None else enhance_signal(mix, rate, settings, predict,
                                                                       link_channels=link)
                out = done[key]
                cell = rows.setdefault(f"{scene}|{mode}", {})
                for ch, side in enumerate("lr"):
                    one = score(ref[:, ch], out[:, ch], rate)
                    cell.setdefault(f"pesq_{side}", []).append(one["pesq"])
                    cell.setdefault(f"si_sdr_{side}", []).append(one["si_sdr"])
                if scene in WANDER:
                    cell.setdefault("wander", []).append(wander_db(out, ref, rate))
        print(f"{i + 1}/{len(chosen)} {path.name}", file=sys.stderr)
    print(f"$ python benchmarks/stereo.py --model {args.model} --part {args.part} --files {args.files}\n")
    print(f"{len(chosen)} held-out files of {args.valset}/{args.part} (SNR -5 to 20 dB), each made into the stereo "
          "recordings below; PESQ and SI-SDR of each channel (left / right) against its clean channel; wander: "
          "standard deviation of the left-right level difference over speech frames, dB (clean: 0); in "
          "brackets, linked minus separate per file, mean ± 1.96 standard errors.\n")
    print("| recording | channels | PESQ left | PESQ right | SI-SDR left dB | SI-SDR right dB | wander dB |")
    print("|---|---|---|---|---|---|---|")
    for key, cell in rows.items():
        scene, mode = key.split("|")
        cells = []
        for column in COLUMNS:
            if column not in cell:
                cells.append("")
                continue
            digits = 2 if column != "si_sdr_l" and column != "si_sdr_r" else 1
            text = f"{np.nanmean(cell[column]):.{digits}f}"
            if mode == "linked":
                change = np.array(cell[column]) - np.array(rows[f"{scene}|separate"][column])
                half = 1.96 * np.nanstd(change, ddof=1) / np.sqrt(len(change))
                text += f" ({np.nanmean(change):+.{digits}f} ± {half:.{digits}f})"
            cells.append(text)
        print(f"| {scene} | {mode} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
