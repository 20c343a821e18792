"""How much steady noise (room tone: white to brown) and mains hum a model removes where nobody
speaks, and under speech: what a listener hears of the background in a podcast's pauses.

Held-out clean speech of the validation set (a pause of 2 s before it) under noise with a spectral
slope, its 300-4000 Hz band set to a level, or under 50 Hz hum with 12 harmonics. Reported per noise:
the change of the 300-4000 Hz band in the pause (dB; more negative removes more), of the hum's
harmonics under speech, and SI-SDR of input and output.

    python benchmarks/steady_pauses.py --model "shipped=weights/denoise_16k.keras" --model "new=runs/x.keras"
    python benchmarks/steady_pauses.py --rate 8000 --model "shipped=weights/denoise_8k.keras"

``--hum-floor -70`` adds the hum cases over a pink floor, as a microphone's own noise lies under a
recording's hum: a model can treat hum over digital silence quite differently.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import welch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from denoise.enhance import enhance_signal  # noqa: E402
from denoise.evaluate import si_sdr  # noqa: E402
from denoise.model_io import load_model  # noqa: E402

PAUSE_S = 2.0
BAND = (300.0, 4000.0)


def sloped(rng: np.random.Generator, n: int, slope_db_per_octave: float, rate: int) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / rate)
    spectrum *= (np.maximum(freqs, 40.0) / 1000.0) ** (slope_db_per_octave / 6.0206)
    return np.fft.irfft(spectrum, n)


def band_db(x: np.ndarray, rate: int) -> float:
    f, p = welch(x, rate, nperseg=1024)
    return float(10 * np.log10(p[(f >= BAND[0]) & (f < BAND[1])].sum() + 1e-30))


def hum_db(x: np.ndarray, mains: float, rate: int) -> float:
    """Power at the hum's harmonics (1-12), dB."""
    f, p = welch(x, rate, nperseg=8192)
    return float(10 * np.log10(sum(p[np.argmin(np.abs(f - k * mains))] for k in range(1, 13)) + 1e-30))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--valset", type=Path, default=Path("work_data/valset"))
    ap.add_argument("--model", action="append", required=True, metavar="NAME=PATH")
    ap.add_argument("--files", type=int, default=6)
    ap.add_argument("--rate", type=int, default=16000, choices=(8000, 16000))
    ap.add_argument("--hum-floor", type=float, action="append", default=[], metavar="DBFS",
                    help="also the hum cases over a pink floor (a microphone's own noise) whose 300-4000 Hz "
                         "band is at this level; repeatable")
    args = ap.parse_args()
    rate = args.rate
    rng = np.random.default_rng(5)
    clean_files = sorted((args.valset / f"{rate // 1000}k" / "clean" / "snr+20").glob("*.wav"))[: args.files]
    speech = []
    for path in clean_files:
        x, file_rate = sf.read(str(path), dtype="float64")
        assert file_rate == rate
        x *= 10 ** (-26 / 20) / np.sqrt(np.mean(x**2))  # -26 dBFS, a podcast's speech level
        speech.append(np.concatenate([np.zeros(int(PAUSE_S * rate)), x]))
    models = [(spec.split("=", 1)[0], load_model(Path(spec.split("=", 1)[1]))) for spec in args.model]
    pause = slice(int(0.25 * rate), int(PAUSE_S * rate))  # the pause, less the first quarter second
    print(f"{len(speech)} held-out recordings at -26 dBFS after {PAUSE_S:.0f} s of pause. Sloped noise: its 300-4000 Hz "
          "band at the level given; pause: change of that band in the pause, dB. Hum: its RMS at the level given; "
          "pause: change at its harmonics in the pause, and in brackets under speech; a floor: its 300-4000 Hz band "
          "at the level given.")
    print(f"| noise | {' | '.join(f'{name}: pause dB / SI-SDR in -> out' for name, _ in models)} |")
    print("|---|" + "---|" * len(models))
    cases = [(f"slope {s:+.0f} dB/oct, {lvl} dBFS", s, lvl, None) for s in (3, 0, -3, -6) for lvl in (-45, -60)]
    cases += [(f"hum 50 Hz, {lvl} dBFS", None, lvl, None) for lvl in (-40, -50)]
    cases += [(f"hum 50 Hz, {lvl} dBFS, pink floor {floor:g} dBFS", None, lvl, floor)
              for floor in args.hum_floor for lvl in (-40, -50)]
    for label, slope, level, floor in cases:
        cells = []
        noises = []
        if floor is not None:  # each floor case its own draws, so that it does not depend on the others asked for
            rng = np.random.default_rng((5, abs(round(10 * floor)), abs(level)))
        for s in speech:
            if slope is None:
                t = np.arange(len(s)) / rate
                n = sum(10 ** (-3 * (k - 1) / 20) * np.sin(2 * np.pi * 50 * k * t + rng.uniform(0, 6.3)) for k in range(1, 13) if 50 * k < rate / 2)
                n *= 10 ** (level / 20) / np.sqrt(np.mean(n**2))
                if floor is not None:
                    f = sloped(rng, len(s), -3, rate)
                    n = n + f * 10 ** ((floor - band_db(f, rate)) / 20)
            else:
                n = sloped(rng, len(s), slope, rate)
                n *= 10 ** ((level - band_db(n, rate)) / 20)
            noises.append(n)
        for _, model in models:
            pause_change, hum_change, before, after = [], [], [], []
            for s, n in zip(speech, noises):
                x = (s + n).astype(np.float32)
                y = enhance_signal(x, rate, model.settings, model.predict).astype(np.float64)
                speaking = slice(int(PAUSE_S * rate), None)
                if slope is None:
                    pause_change.append(hum_db(y[pause], 50, rate) - hum_db(x[pause], 50, rate))
                    hum_change.append(hum_db(y[speaking], 50, rate) - hum_db(x[speaking], 50, rate))
                else:
                    pause_change.append(band_db(y[pause], rate) - band_db(x[pause], rate))
                before.append(si_sdr(s[speaking], x[speaking]))
                after.append(si_sdr(s[speaking], y[speaking]))
            cell = f"{np.mean(pause_change):+.1f}"
            if hum_change:
                cell += f" (under speech {np.mean(hum_change):+.1f})"
            cells.append(f"{cell} / {np.mean(before):.1f} -> {np.mean(after):.1f}")
        print(f"| {label} | {' | '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()
