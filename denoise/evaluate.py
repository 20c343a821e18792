"""Evaluation of noisy input and enhanced output: PESQ, STOI and SI-SDR against clean references,
or, with no clean reference, DNSMOS (SIG, BAK, OVRL: a learned quality score).

Files are paired by relative path (extension ignored). Averages are reported overall and per
sub-folder (for example one folder per SNR band or noise class). PESQ, STOI and DNSMOS come from
the ``pesq``, ``pystoi`` and ``speechmos`` packages (the ``eval`` extra).
"""

from __future__ import annotations

import contextlib
import csv
import glob
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from . import audio as audio_io
from .errors import DenoiseError, MissingDependencyError, install_hint
from .settings import write_json

METRICS = ("pesq", "stoi", "si_sdr")
DNSMOS_METRICS = ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl")
LABELS = {"stoi": "STOI", "si_sdr": "SI-SDR dB", "dnsmos_sig": "DNSMOS SIG",
          "dnsmos_bak": "DNSMOS BAK", "dnsmos_ovrl": "DNSMOS OVRL"}
DNSMOS_RATE = 16000
DNSMOS_OFFSET = 1e-3  # -60 dBFS: a DC offset above this is taken out before DNSMOS
STOI_NO_SPEECH = 1e-5  # pystoi's answer when too few frames of the reference hold speech


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (both 1-D, same length)."""
    reference = reference.astype(np.float64) - np.mean(reference)
    estimate = estimate.astype(np.float64) - np.mean(estimate)
    energy = np.dot(reference, reference)
    if energy == 0 or not np.any(estimate):
        return float("nan")  # a silent reference or a silent estimate: no ratio to speak of
    target = np.dot(estimate, reference) / energy * reference
    residual = estimate - target
    return float(10 * np.log10(np.dot(target, target) / max(np.dot(residual, residual), 1e-20)))


def pesq_rate(rate: int) -> tuple[int, str]:
    """(rate PESQ runs at, mode): wide-band at 16 kHz, narrow-band at 8 kHz."""
    if rate >= 16000:
        return 16000, "wb"
    if rate >= 8000:
        return 8000, "nb"
    raise audio_io.AudioError(f"sample rate {rate} Hz is below 8000 Hz, which PESQ does not support")


def require_metrics() -> None:
    """Raise MissingDependencyError, saying how to install them, if the metric packages are missing."""
    try:
        import pesq  # noqa: F401
        import pystoi  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            f"evaluation needs the 'pesq' and 'pystoi' packages ({exc.name} is missing): " + install_hint("eval")
        ) from None


def require_dnsmos() -> None:
    """Raise MissingDependencyError, saying how to install it, if DNSMOS is missing."""
    try:
        import onnxruntime  # noqa: F401
        import speechmos.dnsmos  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            f"scoring without a clean reference needs DNSMOS from the 'speechmos' package "
            f"({exc.name} is missing): " + install_hint("eval")
        ) from None


def dnsmos(audio: np.ndarray, rate: int) -> dict[str, float]:
    """DNSMOS P.835 scores (1..5) of a mono signal: speech quality (SIG), background noise (BAK)
    and overall (OVRL). Runs at 16 kHz; audio is resampled, a DC offset above -60 dBFS (which nobody
    hears but DNSMOS punishes hard) is taken out of every sample but digital silence, and it is
    scaled down only if it clips. Smaller offsets and digital silence are left exactly as they are:
    DNSMOS is so sensitive at that level that a constant of 1e-5 added to RNNoise's outputs (which
    hold digital silence) lifts their OVRL from 2.82 to 2.92 (benchmarks/dnsmos_offset.txt)."""
    require_dnsmos()
    from speechmos import dnsmos as model

    x = audio_io.resample(audio.astype(np.float32), rate, DNSMOS_RATE)
    sounding = x != 0
    if sounding.any() and abs(float(x[sounding].mean())) > DNSMOS_OFFSET:
        x[sounding] -= x[sounding].mean()
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > 1.0:
        x = x / peak
    # DNSMOS scores 9.01 s windows. The reference code doubles a shorter clip until it is long enough
    # and averages every window of the copies (7 windows for 4 s); repeating it to one window's
    # length scores it once, several times faster, though not identically per file (docs/evaluate.md).
    window = int(model.INPUT_LENGTH * DNSMOS_RATE)
    if 0 < x.shape[0] < window:
        x = np.resize(x, window)
    result = model.run(x.astype(np.float64), DNSMOS_RATE)
    return {"dnsmos_sig": float(result["sig_mos"]), "dnsmos_bak": float(result["bak_mos"]),
            "dnsmos_ovrl": float(result["ovrl_mos"])}


def score(clean: np.ndarray, test: np.ndarray, rate: int) -> dict[str, float]:
    """PESQ (wb at >=16 kHz, nb at 8 kHz; resampled when needed), STOI and SI-SDR of ``test``."""
    require_metrics()
    from pesq import pesq
    from pystoi import stoi

    fs, mode = pesq_rate(rate)
    ref, deg = audio_io.resample(clean, rate, fs), audio_io.resample(test, rate, fs)
    with warnings.catch_warnings():  # their warnings would land inside the progress bar; a note says it
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            p = float(pesq(fs, ref, deg, mode))
        except Exception:  # pesq raises when it finds no speech in the reference
            p = float("nan")
        s = float(stoi(clean, test, rate, extended=False))
    if s == STOI_NO_SPEECH:  # too few frames of the reference hold speech (short or silent); a
        s = float("nan")     # negative STOI (unrelated speech) is a score, kept
    return {"pesq": p, "stoi": s, "si_sdr": si_sdr(clean, test)}


def delay(reference: np.ndarray, test: np.ndarray, rate: int, most_s: float = 0.05, window_s: float = 20.0) -> int:
    """Samples by which ``test`` lags ``reference`` (negative: leads), where cross-correlation is
    higher there than at 0, up to ``most_s``; else 0. Even a 1-sample delay costs SI-SDR
    most of its range (exact to 8 dB), while PESQ and STOI align or barely notice. Measured on the
    reference's loudest ``window_s`` seconds, so an hour-long file costs no more than a short one."""
    from scipy.fft import irfft, next_fast_len, rfft

    most = max(1, int(most_s * rate))
    n = min(reference.shape[0], test.shape[0])
    if n == 0:
        return 0
    width = min(n, max(1, int(window_s * rate)))
    start = 0
    if width < n:  # the loudest stretch, from the energy of half-second blocks
        block = max(1, rate // 2)
        blocks = reference[: n // block * block].reshape(-1, block)
        energy = np.concatenate([[0.0], np.cumsum(np.einsum("ij,ij->i", blocks, blocks, dtype=np.float64))])
        span = width // block
        start = int(np.argmax(energy[span:] - energy[:-span])) * block if span else 0
    ref = reference[start : start + width].astype(np.float64)
    # test[start - most : start + width + most], zeros outside the file
    lo, hi = start - most, start + width + most
    seg = np.zeros(hi - lo)
    seg[max(0, -lo) : max(0, -lo) + test[max(0, lo) : hi].shape[0]] = test[max(0, lo) : hi]
    size = next_fast_len(seg.shape[0] + width)
    corr = irfft(rfft(seg, size) * np.conj(rfft(ref, size)), size)[: 2 * most + 1]  # lags -most..most
    best = int(np.argmax(np.abs(corr)))
    return best - most if abs(corr[best]) > 1.01 * abs(corr[most]) else 0


def pair_files(
    clean_dir: Path, other_dir: Path, skip: Path | None = None,
) -> tuple[list[tuple[str, Path, Path]], list[str]]:
    """Match files by relative path without extension: (pairs (key, clean, other), problems).

    ``skip``: an output folder whose files are not inputs (see ``audio.find_audio_files``).
    """
    problems: list[str] = []
    clean = _by_key(audio_io.find_audio_files(clean_dir, skip=skip), clean_dir, problems)
    other = _by_key(audio_io.find_audio_files(other_dir, skip=skip), other_dir, problems)
    pairs = [(k, clean[k], other[k]) for k in sorted(clean) if k in other]
    problems += [f"{other_dir / k}: no file matches clean {clean[k]}" for k in sorted(clean) if k not in other]
    problems += [f"{other[k]}: no clean reference in {clean_dir}" for k in sorted(other) if k not in clean]
    return pairs, problems


def _key(path: Path, root: Path) -> str:
    return path.relative_to(root).with_suffix("").as_posix()


def _by_key(files: list[Path], root: Path, problems: list[str]) -> dict[str, Path]:
    """Files by key; a second file of the same name (``x.wav`` and ``x.flac``) is a problem, not a pair."""
    found: dict[str, Path] = {}
    for path in files:
        key = _key(path, root)
        if key in found:
            problems.append(f"{path}: same name as {found[key].name}; only {found[key].name} is scored")
        else:
            found[key] = path
    return found


def natural_key(name: str) -> list:
    """Sort key that orders embedded signed numbers by value: snr-05 < snr+00 < snr+10."""
    import re

    return [(0, float(p), "") if re.fullmatch(r"[+-]?\d+(\.\d+)?", p) else (1, 0.0, p)
            for p in re.split(r"([+-]?\d+(?:\.\d+)?)", name) if p]


def group_of(key: str) -> str:
    """The first sub-folder of a relative path, or '.' for files at the top."""
    return key.split("/", 1)[0] if "/" in key else "."


@dataclass
class Report:
    """Scored rows; ``problems``: files that could not be scored; ``notes``: scored files missing a metric."""

    rows: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    metrics: tuple[str, ...] = METRICS

    def averages(self, rows: Iterable[dict] | None = None) -> dict[str, float]:
        """Each metric's input and output averages over the same files, those where both sides
        have it (``METRIC_files`` of them), so a file that fails on one side changes neither; the
        change's 95 % confidence half-width (``METRIC_delta_ci95``, paired, normal approximation).
        PESQ-WB and PESQ-NB are different scales: with both, they are averaged apart (pesq_wb_*,
        pesq_nb_*); ``pesq_mode`` says which ("wb", "nb" or "wb+nb")."""
        rows = list(self.rows if rows is None else rows)
        out = {"files": len(rows)}
        if "pesq" in self.metrics:
            out["pesq_mode"] = "+".join(_pesq_modes(rows))
        for key, metric, _, subset in self._metric_rows(rows):
            pairs = [(r[f"{metric}_input"], r[f"{metric}_output"]) for r in subset]
            pairs = np.array([p for p in pairs if not (math.isnan(p[0]) or math.isnan(p[1]))], dtype=np.float64)
            n = pairs.shape[0]
            means = pairs.mean(axis=0) if n else (float("nan"), float("nan"))
            out[f"{key}_files"] = n
            out[f"{key}_input"], out[f"{key}_output"] = float(means[0]), float(means[1])
            out[f"{key}_delta"] = out[f"{key}_output"] - out[f"{key}_input"]
            change = pairs[:, 1] - pairs[:, 0] if n else pairs
            out[f"{key}_delta_ci95"] = float(1.96 * change.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
        return out

    def _metric_rows(self, rows: list[dict]) -> list[tuple[str, str, str, list[dict]]]:
        """(key, metric, label, rows) to average: PESQ split by mode when the rows hold both."""
        out = []
        for metric in self.metrics:
            if metric != "pesq":
                out.append((metric, metric, LABELS.get(metric, metric), rows))
                continue
            modes = _pesq_modes(rows)
            if len(modes) > 1:
                out += [(f"pesq_{mode}", metric, f"PESQ-{mode.upper()}",
                         [r for r in rows if pesq_rate(r["sample_rate"])[1] == mode]) for mode in modes]
            else:
                out.append((metric, metric, "PESQ-NB" if modes == ["nb"] else "PESQ-WB", rows))
        return out

    def groups(self) -> dict[str, dict[str, float]]:
        names = sorted({r["group"] for r in self.rows}, key=natural_key)
        return {g: self.averages(r for r in self.rows if r["group"] == g) for g in names}


def _pesq_modes(rows: list[dict]) -> list[str]:
    """The PESQ modes of the rows' rates, wide-band first: ["wb"], ["nb"] or ["wb", "nb"]."""
    return sorted({pesq_rate(r["sample_rate"])[1] for r in rows}, reverse=True)


def _read_checked(path: Path) -> tuple[np.ndarray, int]:
    """Audio and rate of ``path``, or AudioError if it is unreadable, empty or not finite."""
    data, rate = audio_io.read_audio(path)
    audio_io.check_audio(data, str(path))
    return data, rate


def read_pair(clean_path: Path, test_path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """Mono float32 clean and test signals at the same rate and length, or AudioError."""
    clean, rate = _read_checked(clean_path)
    test, test_rate = _read_checked(test_path)
    if test_rate != rate:
        raise audio_io.AudioError(f"{test_path}: sample rate {test_rate} Hz differs from the clean file's {rate} Hz")
    if test.shape[0] != clean.shape[0]:
        raise audio_io.AudioError(
            f"{test_path}: {test.shape[0]} samples, the clean file {clean_path.name} has {clean.shape[0]}"
        )
    try:
        pesq_rate(rate)
    except audio_io.AudioError as exc:
        raise audio_io.AudioError(f"{clean_path}: {exc}") from None
    return audio_io.to_mono(clean), audio_io.to_mono(test), rate


def evaluate(
    clean_dir: Path,
    noisy_dir: Path,
    enhanced_dir: Path,
    progress: Callable[[int], None] | None = None,
    skip: Path | None = None,
    reported: frozenset[Path] = frozenset(),
) -> Report:
    """Score every noisy file and its enhanced version against the clean file of the same name.

    A metric that cannot be computed for a file (PESQ or STOI on a very short or silent reference)
    is NaN, left out of the averages, and named in the notes. Noisy files in ``reported`` (whose
    denoising failed, already said) are passed over without a second line.
    """
    report = Report()
    pairs, report.problems = pair_files(clean_dir, noisy_dir, skip=skip)
    for key, clean_path, noisy_path in pairs:
        if noisy_path in reported:
            if progress is not None:
                progress(1)
            continue
        enhanced_path = _find(enhanced_dir, key, noisy_path.suffix)
        try:
            clean, noisy, rate = read_pair(clean_path, noisy_path)
            if enhanced_path is None:
                raise audio_io.AudioError(f"{noisy_path}: no denoised file for it in {enhanced_dir}")
            _, enhanced, _ = read_pair(clean_path, enhanced_path)
        except audio_io.AudioError as exc:
            report.problems.append(str(exc))
        else:
            row = {"file": key, "group": group_of(key), "sample_rate": rate}
            silent = silenced(clean, enhanced)
            if silent:  # unscored, so the file leaves both averages
                report.problems.append(f"{enhanced_path}: silent (100 dB or more under {clean_path.name}): "
                                       "left out of every average, with its input")
            for side, signal in (("input", noisy), ("output", enhanced)):
                scores = dict.fromkeys(METRICS, float("nan")) if side == "output" and silent else score(clean, signal, rate)
                for metric, value in scores.items():
                    row[f"{metric}_{side}"] = value
            for side, path, signal in (("input", noisy_path, noisy), ("output", enhanced_path, enhanced)):
                lag = delay(clean, signal, rate)
                aligned = lag and si_sdr(clean[max(0, -lag):len(clean) - max(0, lag)],
                                         signal[max(0, lag):len(signal) - max(0, -lag)])
                # A real misalignment, not room echo (whose reflections can outweigh the direct path):
                # aligned, the file scores clearly better, and well.
                if lag and aligned > max(row[f"si_sdr_{side}"] + 3.0, 5.0):
                    report.notes.append(f"{path}: {'lags' if lag > 0 else 'leads'} its clean reference by {abs(lag)} "
                                        f"samples (SI-SDR {row[f'si_sdr_{side}']:.1f} dB as it is, {aligned:.1f} dB "
                                        "aligned); scored as it is")
            missing = sorted({m for m in METRICS for s in ("input", "output") if math.isnan(row[f"{m}_{s}"])})
            if missing and not silent:  # a silent output's problem line says it
                names = " and ".join(LABELS.get(m, m.upper()) for m in missing)
                report.notes.append(f"{noisy_path}: no {names} (too short, or a silent reference, "
                                    "input or output); the file is left out of those averages, input and output")
            report.rows.append(row)
        if progress is not None:
            progress(1)
    return report


def evaluate_without_reference(
    noisy_dir: Path,
    enhanced_dir: Path,
    progress: Callable[[int], None] | None = None,
    skip: Path | None = None,
    reported: frozenset[Path] = frozenset(),
) -> Report:
    """DNSMOS of every noisy file and its enhanced version (same relative path): for real
    recordings, where no clean reference exists. Files under ``skip`` are not inputs; those in
    ``reported`` (whose denoising failed, already said) are passed over."""
    require_dnsmos()
    report = Report(metrics=DNSMOS_METRICS)
    files = audio_io.find_audio_files(noisy_dir, skip=skip)
    unique = _by_key(files, noisy_dir, report.problems)
    if progress is not None and len(files) > len(unique):
        progress(len(files) - len(unique))  # the bar counts files; a second of one name is a problem line
    for key, noisy_path in unique.items():
        if noisy_path in reported:
            if progress is not None:
                progress(1)
            continue
        try:
            signals = {}
            for side in ("input", "output"):  # the input first: its own problem is the real reason
                path = noisy_path if side == "input" else _find(enhanced_dir, key, noisy_path.suffix)
                if path is None:
                    raise audio_io.AudioError(f"{noisy_path}: no denoised file for it in {enhanced_dir}")
                data, rate = _read_checked(path)
                if rate < 8000:
                    raise audio_io.AudioError(f"{path}: sample rate {rate} Hz is below 8000 Hz")
                signals[side] = (audio_io.to_mono(data), rate)
                if side == "output":
                    _check_output(path, signals)
        except audio_io.AudioError as exc:
            report.problems.append(str(exc))
        else:
            row = {"file": key, "group": group_of(key), "sample_rate": signals["input"][1]}
            for side, (signal, rate) in signals.items():
                for metric, value in dnsmos(signal, rate).items():
                    row[f"{metric}_{side}"] = value
            report.rows.append(row)
        if progress is not None:
            progress(1)
    return report


def silenced(before: np.ndarray, after: np.ndarray) -> bool:
    """Whether ``after`` is silence (100 dB or more under ``before``, or all zeros) where ``before``
    is not: no denoised copy, and scored it would flatter (metrics undefined, DNSMOS 1.8)."""
    level = audio_io.rms_db(before)
    return level > float("-inf") and audio_io.rms_db(after) < level - 100.0


def _check_output(path: Path, signals: dict[str, tuple[np.ndarray, int]]) -> None:
    """AudioError where a denoised file cannot be its input's: silent where the input is not (DNSMOS
    scores silence 1.8, above many inputs), or of another duration (more than 10 ms apart)."""
    (noisy, rate), (output, out_rate) = signals["input"], signals["output"]
    if silenced(noisy, output):
        raise audio_io.AudioError(f"{path}: silent (100 dB or more under its input)")
    if abs(noisy.shape[0] / rate - output.shape[0] / out_rate) > 0.01:
        raise audio_io.AudioError(f"{path}: {output.shape[0] / out_rate:.2f} s long, its input "
                                  f"{noisy.shape[0] / rate:.2f} s (not its denoised copy?)")


@dataclass
class FolderEvaluation:
    """What ``evaluate_folder`` did: the scores, the files it could not denoise, the report's files."""

    report: Report
    failed: list[str]
    csv_path: Path
    json_path: Path

    @property
    def complete(self) -> bool:
        """Whether every file was denoised and scored (notes on a missing metric aside)."""
        return not self.failed and not self.report.problems


def evaluate_folder(
    noisy_dir: Path,
    out: Path,
    clean_dir: Path | None = None,
    enhanced_dir: Path | None = None,
    weights: Path | None = None,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
) -> FolderEvaluation:
    """``denoise evaluate``: denoise ``noisy_dir`` into ``out/enhanced`` (with ``weights``, or the
    shipped models; not when ``enhanced_dir`` is given), score input and output against
    ``clean_dir`` (PESQ, STOI, SI-SDR) or, without it, by DNSMOS, and write ``out/per_file.csv``
    and ``out/summary.json``. ``out`` inside ``noisy_dir`` holds no inputs.

    ``progress(stage, total)`` ("Denoising", "Scoring") returns the callback that stage calls with
    each file done. Problems found before any work (no audio, no file with a partner, a missing
    metrics package) raise DenoiseError.
    """
    from .enhance import enhance_tree
    from .model_io import ModelChooser

    noisy_dir, out = Path(noisy_dir), Path(out)
    require_metrics() if clean_dir else require_dnsmos()  # before spending minutes denoising
    inputs = audio_io.find_audio_files(noisy_dir, skip=out)  # a report folder inside holds no inputs
    if not inputs:
        raise DenoiseError(f"{noisy_dir}: no audio files found")
    # With references, only the files that have one are denoised (the others are listed once, as such).
    paired = [noisy for _, _, noisy in pair_files(clean_dir, noisy_dir, skip=out)[0]] if clean_dir else inputs
    n_pairs = len(paired)
    if clean_dir and not n_pairs:
        raise DenoiseError(f"{noisy_dir}: no file has a clean partner in {clean_dir} "
                           "(same relative path and name; any audio extension)")
    extra = {"clean_dir": str(clean_dir) if clean_dir else None, "noisy_dir": str(noisy_dir)}
    failed_inputs: frozenset[Path] = frozenset()  # said once, as failures, not again when scoring
    failures: list[str] = []
    if enhanced_dir is None:
        chooser = ModelChooser(weights)
        enhanced_dir = out / "enhanced"
        made = [d for d in (out, enhanced_dir) if not d.exists()]
        try:
            results, failures = enhance_tree(noisy_dir, enhanced_dir, chooser.for_rate,
                                             progress("Denoising", n_pairs) if progress else None, skip=out,
                                             only=set(paired))
        except DenoiseError:  # a model that cannot be loaded or run stops it: leave no empty folders
            if made:
                for folder in sorted((p for p in enhanced_dir.rglob("*") if p.is_dir()), reverse=True) + made[::-1]:
                    with contextlib.suppress(OSError):
                        folder.rmdir()  # only empty ones go
            raise
        failed_inputs = frozenset(paired) - {r.input for r in results}
        extra["models"] = sorted(str(m.path) for m in chooser.loaded)
    extra["enhanced_dir"] = str(enhanced_dir)
    scored = progress("Scoring", n_pairs) if progress else None
    if clean_dir:
        report = evaluate(clean_dir, noisy_dir, enhanced_dir, scored, skip=out, reported=failed_inputs)
    else:
        report = evaluate_without_reference(noisy_dir, enhanced_dir, scored, skip=out, reported=failed_inputs)
    csv_path, json_path = write_report(report, out, extra)
    return FolderEvaluation(report, failures, csv_path, json_path)


def _find(folder: Path, key: str, suffix: str) -> Path | None:
    """The file ``key`` (a relative path without extension) in ``folder``, with ``suffix`` or any audio extension."""
    exact = folder / f"{key}{suffix}"
    if exact.exists():
        return exact
    stem = Path(key).name  # "a.*" also matches "a.b.wav", another recording's output
    matches = sorted(p for p in folder.glob(f"{glob.escape(key)}.*")
                     if p.suffix.lower() in audio_io.AUDIO_EXTENSIONS and p.stem == stem)
    return matches[0] if matches else None


def write_report(report: Report, out_dir: Path, extra: dict | None = None) -> tuple[Path, Path]:
    """Write ``per_file.csv`` and ``summary.json`` into ``out_dir``; return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out_dir / "per_file.csv", out_dir / "summary.json"
    columns = ["file", "group", "sample_rate"] + [f"{m}_{s}" for m in report.metrics for s in ("input", "output")]
    tmp = csv_path.with_name(".per_file.tmp.csv")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for row in report.rows:
            writer.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()})
    tmp.replace(csv_path)
    summary = {"average": report.averages(), "groups": report.groups(), "problems": report.problems,
               "notes": report.notes}
    summary.update(extra or {})
    write_json(json_path, _finite(summary))
    return csv_path, json_path


def _finite(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def format_table(report: Report) -> str:
    """A plain-text table: each metric's input and output averages over the files that have both,
    the change and its 95 % confidence half-width, overall and per group."""
    sections = [("all files", report.averages())]
    groups = report.groups()
    if len(groups) > 1 or (groups and "." not in groups):
        sections += list(groups.items())
    lines = [f"{'group':<22}{'files':>6}  {'metric':<16}{'input':>8}{'output':>8}{'change':>8}{'±95%':>8}"]
    for name, avg in sections:
        rows = report.rows if name == "all files" else [r for r in report.rows if r["group"] == name]
        for i, (key, _, label, _) in enumerate(report._metric_rows(rows)):
            if avg[f"{key}_files"] != avg["files"]:
                label += f" ({avg[f'{key}_files']})"  # files that have it, input and output
            head = f"{name:<22}{avg['files']:>6}" if i == 0 else " " * 28
            ci = avg[f"{key}_delta_ci95"]  # NaN from one file: no interval to give
            lines.append(f"{head}  {label:<16}{avg[f'{key}_input']:>8.3f}{avg[f'{key}_output']:>8.3f}"
                         f"{avg[f'{key}_delta']:>+8.3f}" + (f"{ci:>8.3f}" if np.isfinite(ci) else f"{'n/a':>8}"))
    return "\n".join(lines)
