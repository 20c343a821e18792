"""Data creation: blend clean speech with noise at random SNRs and stream spectrogram shards to disk.

Each shard is an ``.npz`` file holding ``noisy_db``, ``clean_db`` and ``noise_db``, float16 arrays of
shape (n_pairs, n_bins, n_frames). Every shard draws its pairs from its own seeded random stream,
so a run is reproducible and memory stays bounded by one shard plus one pool of source files,
whatever the number of pairs.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import audio as audio_io
from .errors import DataError
from .settings import Settings, save_settings, write_json
from .sources import find_sources
from .reverb import require_pyroomacoustics, reverberate, room_impulse_response
from .spectrogram import example_db

SHARD_PATTERN = "shard-{:05d}.npz"
MANIFEST_FILE = "manifest.json"
SAMPLES_DIR = "samples"
# A voice frame more than this far below the file's loudest frame is a pause, not speech:
# mixing it at a given SNR would drown silence in noise and teach nothing.
PAUSE_BELOW_PEAK_DB = 40.0
# Anything quieter than this is digital silence.
SILENCE_DB = -70.0
# Noise clips shorter than a frame are looped; shorter than this they are skipped.
MIN_NOISE_SECONDS = 0.1
LOWPASS_LIMIT = 0.49  # the highest low-pass cut-off, as a share of the sample rate
SNR_WEIGHTINGS = ("uniform", "hard")


@dataclass(frozen=True)
class MixOptions:
    """How pairs are drawn. SNR in dB; the mixture's RMS level in dBFS is drawn from ``level_db``."""

    nb_samples: int
    snr_db: tuple[float, float] = (-5.0, 20.0)
    level_db: tuple[float, float] = (-35.0, -15.0)
    seed: int = 0
    shard_size: int = 1000
    pool_files: int = 200
    noise_hop: int | None = None  # default: half a frame, so noise windows overlap
    qc_seconds: float = 5.0
    noise_classes: tuple[str, ...] = ()  # ESC-50 classes to draw noise from; () uses every file
    reverb_share: float = 0.0  # share of pairs whose speech is convolved with a room impulse response
    rt60: tuple[float, float] = (0.2, 1.0)  # reverberation time range in seconds
    rirs_per_shard: int = 8
    max_noises: int = 1  # each pair mixes 1..max_noises noise windows, the extra ones 0-10 dB quieter
    snr_weighting: str = "uniform"  # "uniform", or "hard": density falling linearly from low to high SNR
    clean_share: float = 0.0  # share of pairs with no noise added, so the model learns to leave clean speech alone
    pitch_share: float = 0.0  # share of pairs whose (dry) speech is played faster or slower, see shift_pitch
    pitch_semitones: tuple[float, float] = (-2.0, 7.0)  # range the shift is drawn from, uniformly
    noise_only_share: float = 0.0  # share of pairs with the speech left out: noise alone, as in a pause
    lowpass_share: float = 0.0  # share of pairs low-passed whole (speech and noise), see band_limit
    lowpass_hz: tuple[float, float] = (3000.0, 7500.0)  # range the cut-off is drawn from, uniformly
    steady_share: float = 0.0  # share of pairs given steady noise too (room tone, hum), see steady_noise
    steady_slope: tuple[float, float] = (-6.0, 3.0)  # its spectral slope in dB per octave, drawn uniformly


@dataclass
class SourceFile:
    path: Path
    kind: str  # "voice" or "noise"


@dataclass
class CreationReport:
    """What data creation did, for the summary and the manifest."""

    pairs: int = 0
    shards: list[str] = field(default_factory=list)
    found: dict[str, int] = field(default_factory=dict)
    used: dict[str, set[str]] = field(default_factory=lambda: {"voice": set(), "noise": set()})
    skipped: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "pairs": self.pairs,
            "shards": self.shards,
            "files_found": self.found,
            "files_used": {k: len(v) for k, v in self.used.items()},
            "files_skipped": self.skipped,
        }


def scan_sources(
    folder: Path, kind: str, settings: Settings, report: CreationReport, classes: tuple[str, ...] = (),
    skip: Path | None = None,
) -> list[SourceFile]:
    """Find audio files under ``folder`` (only ESC-50 ``classes`` if given; none under ``skip``);
    report unreadable and too-short ones as skipped."""
    files = find_sources(folder, classes, skip)
    report.found[kind] = len(files)
    usable = []
    for path in files:
        try:
            n, rate, _ = audio_io.audio_info(path)
        except audio_io.AudioError as exc:
            report.skipped[str(path)] = f"unreadable: {str(exc).split(': ', 1)[-1]}"
            continue
        if n == 0:
            report.skipped[str(path)] = "no samples"
        elif kind == "noise" and n * settings.sample_rate / rate < MIN_NOISE_SECONDS * settings.sample_rate:
            report.skipped[str(path)] = f"too short: {n / rate:.3f} s < {MIN_NOISE_SECONDS} s"
        elif kind == "voice" and n * settings.sample_rate / rate < settings.frame_length:
            report.skipped[str(path)] = (
                f"too short: {n / rate:.2f} s < one frame of "
                f"{settings.frame_length / settings.sample_rate:.2f} s"
            )
        elif damage := audio_io.decoding_problems(path):  # silence where packets were lost is no example
            report.skipped[str(path)] = damage[0].split(": ", 1)[-1]
        else:
            usable.append(SourceFile(path, kind))
    return usable


def speech_frames(voice: np.ndarray, frame_length: int) -> list[int]:
    """Start samples of the non-overlapping frames of ``voice`` that hold speech, not pauses."""
    starts = list(range(0, voice.shape[0] - frame_length + 1, frame_length))
    levels = np.array([audio_io.rms_db(voice[s : s + frame_length]) for s in starts])
    if not len(levels):
        return []
    keep = (levels > SILENCE_DB) & (levels > levels.max() - PAUSE_BELOW_PEAK_DB)
    return [s for s, k in zip(starts, keep) if k]


def noise_windows(noise: np.ndarray, frame_length: int, hop: int) -> list[int]:
    """Start samples of overlapping noise windows that are not digital silence."""
    starts = range(0, noise.shape[0] - frame_length + 1, hop)
    return [s for s in starts if audio_io.rms_db(noise[s : s + frame_length]) > SILENCE_DB]


def mix_pair(
    voice: np.ndarray, noise: np.ndarray, snr_db: float, level_db: float, heard: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blend at ``snr_db`` and set the mixture's RMS to ``level_db`` dBFS without clipping.

    ``heard``: the voice as the microphone hears it (reverberant), when it differs from the dry
    ``voice`` the model should give back; the SNR is then relative to ``heard``.
    Returns (noisy, clean, noise), float32, each the shape of ``voice``, with noisy = clean + noise
    (with reverberation, "noise" includes the room's echo).
    """
    heard = voice if heard is None else heard
    speech_rms = _rms(heard)
    if speech_rms > 0:  # no speech (a noise-only pair): the noise alone sets the level
        noise = noise * (speech_rms / (max(_rms(noise), 1e-12) * 10.0 ** (snr_db / 20.0)))
    noisy = heard + noise
    noise = noisy - voice
    gain = 10.0 ** (level_db / 20.0) / max(math.sqrt(float(np.mean(np.square(noisy)))), 1e-12)
    peak = float(np.max(np.abs(noisy))) * gain
    if peak > 0.99:
        gain *= 0.99 / peak
    return (
        (noisy * gain).astype(np.float32),
        (voice * gain).astype(np.float32),
        (noise * gain).astype(np.float32),
    )


def _load_pool(
    files: list[SourceFile], rng: np.random.Generator, settings: Settings, options: MixOptions,
    report: CreationReport,
) -> list[tuple[SourceFile, np.ndarray, list[int]]]:
    """Load a random pool of files with their usable frame starts; report silent files."""
    count = min(options.pool_files, len(files))
    chosen = sorted(rng.choice(len(files), size=count, replace=False))
    pool = []
    hop = options.noise_hop or settings.frame_length // 2
    for index in chosen:
        source = files[index]
        if str(source.path) in report.skipped:
            continue
        try:
            signal = audio_io.load_mono(source.path, settings.sample_rate)
            audio_io.check_audio(signal, str(source.path))
        except audio_io.AudioError as exc:
            report.skipped[str(source.path)] = f"unreadable: {str(exc).split(': ', 1)[-1]}"
            continue
        if source.kind == "voice":
            starts = speech_frames(signal, settings.frame_length)
        else:
            if signal.shape[0] < settings.frame_length:  # a short clip is looped to fill a frame
                signal = np.tile(signal, -(-settings.frame_length // signal.shape[0]))
            starts = noise_windows(signal, settings.frame_length, hop)
        if not starts:
            report.skipped[str(source.path)] = "silent"
            continue
        pool.append((source, signal, starts))
    return pool


@dataclass
class ShardResult:
    """What one shard job did; merged into the CreationReport by the parent."""

    index: int
    pairs: int
    used: dict[str, set[str]]
    skipped: dict[str, str]
    qc: list[np.ndarray] | None  # noisy, clean, noise audio of shard 0's first pairs


def draw_snr(rng: np.random.Generator, snr_db: tuple[float, float], weighting: str = "uniform") -> float:
    """One SNR in dB: uniform over the range, or "hard": density falling linearly to zero at the top."""
    low, high = snr_db
    if weighting == "hard" and high > low:
        return float(rng.triangular(low, low, high))
    return float(rng.uniform(low, high))


def _rms(signal: np.ndarray) -> float:
    return math.sqrt(float(np.mean(np.square(signal, dtype=np.float64))))


def _match_level(signal: np.ndarray, reference: np.ndarray, gain_db: float) -> np.ndarray:
    """``signal`` scaled to ``gain_db`` relative to ``reference``'s RMS."""
    ratio = _rms(reference) / max(_rms(signal), 1e-10)
    return (signal * ratio * 10.0 ** (gain_db / 20.0)).astype(np.float32)


def band_limit(signals: tuple[np.ndarray, ...], rate: int, cutoff_hz: float) -> tuple[np.ndarray, ...]:
    """The signals with nothing left above ``cutoff_hz``, as a recording made at a lower rate and
    resampled up, or through a codec's low-pass: a linear-phase FIR like a resampler's (511 taps,
    Kaiser window, about 80 dB down 250 Hz above the cut-off at 16 kHz), aligned so nothing is
    delayed. Linear, so noisy = clean + noise still holds."""
    from scipy.signal import fftconvolve, firwin

    if cutoff_hz >= LOWPASS_LIMIT * rate:
        return signals
    taps = firwin(511, cutoff_hz, window=("kaiser", 8.0), fs=rate)
    # Mirrored ends, so the frame's edges are not faded as zero padding would.
    return tuple(fftconvolve(np.pad(x, len(taps) // 2, mode="reflect"), taps, mode="valid").astype(np.float32)
                 for x in signals)


def steady_noise(rng: np.random.Generator, length: int, rate: int, slope_db: tuple[float, float]) -> np.ndarray:
    """Steady noise as rooms, fans and air conditioning make it, which recorded noise clips rarely
    are: its power falls by a slope per octave drawn from ``slope_db`` (0 white, -3 pink, -6 brown),
    flat below a corner of 30-150 Hz; half the time with mains hum (50 or 60 Hz and 2-12 harmonics,
    -10 to +20 dB against the noise). Unit RMS."""
    spectrum = rng.standard_normal(length // 2 + 1) + 1j * rng.standard_normal(length // 2 + 1)
    freqs = np.maximum(np.fft.rfftfreq(length, 1.0 / rate), rng.uniform(30.0, 150.0))
    spectrum *= (freqs / 1000.0) ** (rng.uniform(*slope_db) / (20.0 * math.log10(2.0)))
    spectrum[0] = 0.0
    noise = np.fft.irfft(spectrum, length)
    noise /= max(_rms(noise), 1e-12)
    if rng.uniform() < 0.5:
        t = np.arange(length) / rate
        mains = rng.choice([50.0, 60.0]) * rng.uniform(0.995, 1.005)
        hum = np.zeros(length)
        for k in range(1, int(rng.integers(2, 13)) + 1):
            if k * mains < rate / 2:
                hum += 10.0 ** (-rng.uniform(0.0, 4.0) * (k - 1) / 20.0) * np.sin(2 * np.pi * k * mains * t + rng.uniform(0, 2 * np.pi))
        noise += hum * (10.0 ** (rng.uniform(-10.0, 20.0) / 20.0) / max(_rms(hum), 1e-12))
        noise /= max(_rms(noise), 1e-12)
    return noise.astype(np.float32)


PITCH_STEPS = 64  # shift_pitch's speed factor is a whole number of 64ths: within 1 % of 2 ** (semitones / 12)


def pitch_speed(semitones: float) -> float:
    """How much faster ``shift_pitch`` plays the voice: 2 ** (semitones / 12) in steps of 1/64."""
    return max(1, round(PITCH_STEPS * 2.0 ** (semitones / 12.0))) / PITCH_STEPS


def shift_pitch(voice: np.ndarray, start: int, length: int, semitones: float) -> np.ndarray | None:
    """``length`` samples of ``voice`` from ``start`` played 2**(semitones/12) times as fast.

    Pitch and formants move together, as from an adult's voice to a child's (a phase vocoder
    would keep the formants but smear the phase, which the model learns to remove). None when
    the recording is too short for the frame.
    """
    up = PITCH_STEPS
    down = round(up * pitch_speed(semitones))
    span = -(-length * down // up) + 2
    if voice.shape[0] < span:
        return None
    start = min(start, voice.shape[0] - span)
    from scipy.signal import resample_poly

    return resample_poly(voice[start : start + span], up, down)[:length].astype(np.float32)


def _rir_bank(index: int, settings: Settings, options: MixOptions) -> list[np.ndarray]:
    """Shard ``index``'s room impulse responses (none without reverberation), seeded like the shard."""
    if options.reverb_share <= 0:
        return []
    rng = np.random.default_rng([options.seed, index, 1])
    return [room_impulse_response(rng, settings.sample_rate, float(rng.uniform(*options.rt60)))
            for _ in range(options.rirs_per_shard)]


def make_shard(
    index: int, voices: list[SourceFile], noises: list[SourceFile], out_dir: Path,
    settings: Settings, options: MixOptions,
) -> ShardResult:
    """Create and write shard ``index``. Its content depends only on the seed, the index and the
    source lists, so any number of workers, or of independent jobs, gives identical files."""
    size = min(options.shard_size, options.nb_samples - index * options.shard_size)
    rng = np.random.default_rng([options.seed, index])
    report = CreationReport()
    voice_pool = _load_pool(voices, rng, settings, options, report)
    noise_pool = _load_pool(noises, rng, settings, options, report)
    if not voice_pool or not noise_pool:
        kind = "voice" if not voice_pool else "noise"
        raise DataError(f"every {kind} file of shard {index}'s pool is silent or unreadable")
    arrays = np.empty((3, size, settings.n_bins, settings.n_frames), dtype=np.float16)
    rirs = _rir_bank(index, settings, options)
    # Streams of their own, so datasets without these options stay identical to earlier versions.
    room_rng = np.random.default_rng([options.seed, index, 2])
    extra_rng = np.random.default_rng([options.seed, index, 3])
    clean_rng = np.random.default_rng([options.seed, index, 4])
    pitch_rng = np.random.default_rng([options.seed, index, 5])
    pause_rng = np.random.default_rng([options.seed, index, 6])
    lowpass_rng = np.random.default_rng([options.seed, index, 7])
    steady_rng = np.random.default_rng([options.seed, index, 8])
    qc: list[list[np.ndarray]] = [[], [], []]
    qc_samples = int(options.qc_seconds * settings.sample_rate) if index == 0 else 0
    for i in range(size):
        vsrc, vsig, vstarts = voice_pool[rng.integers(len(voice_pool))]
        nsrc, nsig, nstarts = noise_pool[rng.integers(len(noise_pool))]
        vs = vstarts[rng.integers(len(vstarts))]
        ns = nstarts[rng.integers(len(nstarts))]
        voice = vsig[vs : vs + settings.frame_length]
        heard, rir = None, None
        if rirs and room_rng.uniform() < options.reverb_share:
            rir = rirs[room_rng.integers(len(rirs))]
        source, at = vsig, vs  # what the room hears: the voice with what was said before the frame
        if options.pitch_share > 0 and pitch_rng.uniform() < options.pitch_share:
            semitones = float(pitch_rng.uniform(*options.pitch_semitones))
            speed = pitch_speed(semitones)
            # The echo's history, shifted too: `before` output samples, so that the frame starts at vs.
            before = 0 if rir is None else min(rir.shape[0] - 1, int(vs / speed))
            shifted = shift_pitch(vsig, vs - round(before * speed), settings.frame_length + before, semitones)
            if shifted is None and before:
                before, shifted = 0, shift_pitch(vsig, vs, settings.frame_length, semitones)
            if shifted is not None:
                source, at, voice = shifted, before, shifted[before:]
        if rir is not None:
            heard = reverberate(source, at, settings.frame_length, rir)
        noise = nsig[ns : ns + settings.frame_length]
        for _ in range(int(extra_rng.integers(options.max_noises))):
            xsrc, xsig, xstarts = noise_pool[extra_rng.integers(len(noise_pool))]
            xs = xstarts[extra_rng.integers(len(xstarts))]
            noise = noise + _match_level(xsig[xs : xs + settings.frame_length], noise, -extra_rng.uniform(0, 10))
            report.used["noise"].add(str(xsrc.path))
        if options.steady_share > 0 and steady_rng.uniform() < options.steady_share:
            # from under the recorded noise (-10 dB) to alone in effect (+20 dB)
            steady = steady_noise(steady_rng, settings.frame_length, settings.sample_rate, options.steady_slope)
            noise = noise + (_match_level(steady, noise, steady_rng.uniform(-10, 20)) if _rms(noise) > 1e-6 else steady)
        snr = draw_snr(rng, options.snr_db, options.snr_weighting)
        if options.clean_share > 0 and clean_rng.uniform() < options.clean_share:
            noise = np.zeros_like(noise)
        elif options.noise_only_share > 0 and pause_rng.uniform() * (1.0 - options.clean_share) < options.noise_only_share:
            # drawn only for pairs that are not clean: so the share of all pairs is noise_only_share
            voice, heard = np.zeros_like(voice), None
        triple = mix_pair(
            voice,
            noise,
            snr,
            float(rng.uniform(*options.level_db)),
            heard,
        )
        if options.lowpass_share > 0 and lowpass_rng.uniform() < options.lowpass_share:
            triple = band_limit(triple, settings.sample_rate, float(lowpass_rng.uniform(*options.lowpass_hz)))
        for k, signal in enumerate(triple):
            arrays[k, i] = example_db(signal, settings)
        report.used["voice"].add(str(vsrc.path))
        report.used["noise"].add(str(nsrc.path))
        if sum(len(x) for x in qc[0]) < qc_samples:
            for k, signal in enumerate(triple):
                qc[k].append(signal)
    _save_shard(out_dir / SHARD_PATTERN.format(index), arrays)
    samples = [np.concatenate(parts)[:qc_samples] for parts in qc] if index == 0 else None
    return ShardResult(index, size, report.used, report.skipped, samples)


def create_dataset(
    voice_dir: Path,
    noise_dir: Path,
    out_dir: Path,
    settings: Settings,
    options: MixOptions,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
    workers: int = 1,
    num_shards: int = 1,
    shard_index: int = 0,
) -> CreationReport:
    """Write ``options.nb_samples`` noisy/clean/noise spectrogram triples to ``out_dir`` in shards.

    Also writes ``settings.json`` (read by training), ``manifest.json`` (the report) and, for
    quality control, the first seconds of noisy, clean and noise audio under ``samples/``.
    ``workers`` processes share the shards; ``num_shards``/``shard_index`` make this run create only
    part ``shard_index`` of a ``num_shards``-part dataset (shards whose number modulo num_shards is
    shard_index), so K independent jobs can create one dataset together.
    ``progress`` is called with 0 once every input has been checked, then with the number of pairs
    written since its last call.
    """
    settings.validate()
    if options.nb_samples < 1:
        raise DataError(f"nb_samples={options.nb_samples} must be >= 1")
    if options.snr_db[0] > options.snr_db[1]:
        raise DataError(f"snr range {options.snr_db} must be (low, high) with low <= high")
    if options.shard_size < 1:
        raise DataError(f"shard_size={options.shard_size} must be >= 1")
    if options.max_noises < 1:
        raise DataError(f"max_noises={options.max_noises} must be >= 1")
    if options.snr_weighting not in SNR_WEIGHTINGS:
        raise DataError(f"snr_weighting={options.snr_weighting!r} must be one of {', '.join(SNR_WEIGHTINGS)}")
    if not 0 <= options.reverb_share <= 1:
        raise DataError(f"reverb share {options.reverb_share} must be between 0 and 1")
    if not 0 <= options.clean_share <= 1:
        raise DataError(f"clean share {options.clean_share} must be between 0 and 1")
    if not 0 <= options.pitch_share <= 1:
        raise DataError(f"pitch share {options.pitch_share} must be between 0 and 1")
    if not 0 <= options.noise_only_share <= 1 or options.clean_share + options.noise_only_share > 1:
        raise DataError(f"noise-only share {options.noise_only_share} must be between 0 and 1 - clean share")
    if not 0 <= options.lowpass_share <= 1:
        raise DataError(f"low-pass share {options.lowpass_share} must be between 0 and 1")
    if not 0 < options.lowpass_hz[0] <= options.lowpass_hz[1]:
        raise DataError(f"low-pass range {options.lowpass_hz} must be (low, high) Hz with 0 < low <= high")
    if options.lowpass_share > 0 and options.lowpass_hz[1] >= LOWPASS_LIMIT * settings.sample_rate:
        # band_limit leaves such a pair as it is: the share asked for would silently not be low-passed.
        raise DataError(f"low-pass range {options.lowpass_hz[0]:g} to {options.lowpass_hz[1]:g} Hz reaches past "
                        f"{LOWPASS_LIMIT * settings.sample_rate:g} Hz, the highest cut-off at {settings.sample_rate} Hz "
                        f"(pass a --lowpass-range below it)")
    if not 0 <= options.steady_share <= 1:
        raise DataError(f"steady share {options.steady_share} must be between 0 and 1")
    if not -12 <= options.steady_slope[0] <= options.steady_slope[1] <= 12:
        raise DataError(f"steady slope range {options.steady_slope} must be (low, high) dB per octave within -12..12")
    if not -12 <= options.pitch_semitones[0] <= options.pitch_semitones[1] <= 12:
        raise DataError(f"pitch range {options.pitch_semitones} must be (low, high) semitones within -12..12")
    if not 0 < options.rt60[0] <= options.rt60[1]:
        raise DataError(f"RT60 range {options.rt60} must be (low, high) seconds with 0 < low <= high")
    if options.reverb_share > 0:
        require_pyroomacoustics()
    if workers < 1:
        raise DataError(f"workers={workers} must be >= 1")
    if not 0 <= shard_index < num_shards:
        raise DataError(f"shard_index={shard_index} must be in 0..num_shards-1={num_shards - 1}")
    report = CreationReport()
    if Path(voice_dir).resolve() == Path(noise_dir).resolve():
        raise DataError(f"{voice_dir}: both the voice and the noise folder; noise would be mixed with itself as speech")
    # The listening samples a run writes are no input of the next (an --out-dir inside an input folder).
    written = Path(out_dir) / SAMPLES_DIR
    voices = scan_sources(voice_dir, "voice", settings, report, skip=written)
    noises = scan_sources(noise_dir, "noise", settings, report, options.noise_classes, skip=written)
    shortest = {"voice": settings.frame_length / settings.sample_rate, "noise": MIN_NOISE_SECONDS}
    for kind, files, folder in (("voice", voices, voice_dir), ("noise", noises, noise_dir)):
        if not files:
            raise DataError(
                f"{folder}: no usable {kind} audio found ({report.found[kind]} audio files, "
                f"none readable and at least {shortest[kind]:.2f} s long)"
            )

    out_dir = Path(out_dir)
    mine = [i for i in range(math.ceil(options.nb_samples / options.shard_size)) if i % num_shards == shard_index]
    for folder in (out_dir, out_dir / SAMPLES_DIR) if 0 in mine else (out_dir,):  # before the work, not after it
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(f"{folder}: cannot create the folder ({exc.strerror})") from None
    existing = [SHARD_PATTERN.format(i) for i in mine if (out_dir / SHARD_PATTERN.format(i)).exists()]
    if existing and not overwrite:
        raise DataError(f"{out_dir / existing[0]}: already exists (use --overwrite to replace the dataset)")
    if overwrite:  # shards of this part beyond the new count belong to the old dataset: training reads every shard
        for stale in out_dir.glob("shard-*.npz"):
            index = stale.stem.split("-")[-1]
            if index.isdigit() and int(index) % num_shards == shard_index and int(index) not in mine:
                stale.unlink()
    save_settings(settings, out_dir)
    manifest_name = MANIFEST_FILE if num_shards == 1 else f"manifest-part{shard_index:03d}-of-{num_shards:03d}.json"
    # Written last: an interrupted run leaves none, and training refuses the folder (an old one
    # would vouch for a mix of old and new shards).
    (out_dir / manifest_name).unlink(missing_ok=True)
    if overwrite:  # the manifests of the dataset made before with another number of parts
        for old in out_dir.glob("manifest*.json"):
            if old.name != manifest_name and not old.name.endswith(f"-of-{num_shards:03d}.json"):
                old.unlink()

    results = []
    if progress is not None:
        progress(0)  # every check passed: the work starts
    if workers == 1:
        for index in mine:
            results.append(make_shard(index, voices, noises, out_dir, settings, options))
            if progress is not None:
                progress(results[-1].pairs)
    else:
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(make_shard, i, voices, noises, out_dir, settings, options) for i in mine]
            try:
                for future in as_completed(futures):
                    results.append(future.result())
                    if progress is not None:
                        progress(results[-1].pairs)
            except BaseException:  # Ctrl-C or a failed shard: start no more shards
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    for result in sorted(results, key=lambda r: r.index):
        report.pairs += result.pairs
        report.shards.append(SHARD_PATTERN.format(result.index))
        for kind in ("voice", "noise"):
            report.used[kind] |= result.used[kind]
        report.skipped.update(result.skipped)
        if result.qc is not None:
            samples = out_dir / SAMPLES_DIR
            for name, audio in zip(("noisy", "clean", "noise"), result.qc):
                audio_io.write_audio(samples / f"{name}.wav", audio, settings.sample_rate)
    manifest = report.to_dict()
    manifest["options"] = {
        "nb_samples": options.nb_samples,
        "snr_db": list(options.snr_db),
        "level_db": list(options.level_db),
        "seed": options.seed,
        "shard_size": options.shard_size,
        "voice_dir": str(voice_dir),
        "noise_dir": str(noise_dir),
        "noise_classes": list(options.noise_classes),
        "reverb_share": options.reverb_share,
        "max_noises": options.max_noises,
        "snr_weighting": options.snr_weighting,
        "clean_share": options.clean_share,
        "pitch_share": options.pitch_share,
        "pitch_semitones": list(options.pitch_semitones),
        "lowpass_share": options.lowpass_share,
        "lowpass_hz": list(options.lowpass_hz),
        "steady_share": options.steady_share,
        "steady_slope_db": list(options.steady_slope),
        "noise_only_share": options.noise_only_share,
        "rt60": list(options.rt60),
        "part": f"{shard_index + 1} of {num_shards}",
    }
    write_json(out_dir / manifest_name, manifest)
    return report


def _save_shard(path: Path, arrays: np.ndarray) -> None:
    """Write a shard atomically (a hidden temporary file, then rename); a failure leaves neither."""
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    try:
        np.savez(tmp, noisy_db=arrays[0], clean_db=arrays[1], noise_db=arrays[2])
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DataError(f"{path}: cannot write the shard ({exc.strerror or exc})") from None
