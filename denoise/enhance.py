"""Enhancement: predict the noise in overlapping spectrogram blocks and subtract it.

At the model's rate the signal's STFT magnitude (in dB, scaled) is cut into blocks of ``n_frames``
frames overlapping by a quarter (``overlap``), the model predicts each block's noise share, the predictions are
cross-faded together, and the noise share is subtracted from the noisy magnitude in dB (a gain of at
most 1 on each bin). The inverse STFT uses the noisy phase.

Any input rate: the audio is resampled to the model's rate (polyphase FIR), what the model removed
there is resampled back and subtracted from the original, so a model that removes nothing gives back
the input exactly. Above the model's Nyquist frequency the original's high band gets, frame by frame,
the gain the model applied to its own top band (see ``HIGH_BAND_SHARE``).

Long recordings are processed in chunks aligned to the STFT frames, each read with enough margin that
every output sample depends on exactly the same input as when the recording is processed whole, so
memory stays bounded and the result does not depend on the chunk size.

The network judges noise by absolute level (its input is dB relative to full scale), and it was
trained on mixtures at -35 to -15 dBFS. A recording far quieter or louder is judged as if it were at
the nearest end of ``LEVEL_RANGE_DB`` (``match_level``, each channel at its own level); the gains are
then applied to the recording as it is, so the output keeps its level. A constant (DC) offset is
taken out before the network and put back after (``recording_stats``).
"""

from __future__ import annotations

import bisect
import functools
import glob
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Collection, Iterator

import numpy as np

from . import audio as audio_io
from .errors import AudioError, Cancelled, DenoiseError, ModelFileError, UsageProblem
from .settings import Settings
from .spectrogram import (
    block_starts,
    istft,
    magnitude_db,
    overlap_add,
    scale_input,
    split_blocks,
    stft,
    unscale_target,
)

PredictFn = Callable[[np.ndarray], np.ndarray]
# The top eighth of the model's bins (7-8 kHz for a 16 kHz model) sets the high band's gain.
HIGH_BAND_SHARE = 8
HIGH_BAND_MODES = ("gain", "keep", "drop")
CHUNK_SECONDS = 30.0
FLOOR_DB = -40.0  # the most prediction attenuates any bin by default (training's noise+clean loss too)
# Recording levels (RMS over the non-silent half seconds, dBFS) the network judges as they are: inside
# the training mixtures' -35..-15 dBFS, and the held-out validation set's -34..-20.
LEVEL_RANGE_DB = (-35.0, -20.0)
SILENT_WINDOW_DB = -70.0
SILENT_RUN = 256  # input samples of exact zeros that are digital silence, kept silent


def keras_predict_fn(model, batch_size: int = 4, name: str = "the Keras model") -> PredictFn:
    """Wrap a Keras model: (n, n_bins, n_frames, 1) float32 -> same shape, on the CPU.

    The model runs as one traced TensorFlow graph in small batches: as fast per block as large
    batches on a CPU, and peak memory stays low. A model that fails to run raises ModelFileError
    naming ``name``: no file's problem, so a batch stops.
    """
    import tensorflow as tf

    run = tf.function(lambda x: model(x, training=False), reduce_retracing=True, autograph=False)

    def predict(x: np.ndarray) -> np.ndarray:
        out = []
        with tf.device("/CPU:0"):
            for start in range(0, x.shape[0], batch_size):
                batch = x[start : start + batch_size]
                if batch.shape[0] < batch_size:  # one graph shape: pad the last batch
                    batch = np.concatenate([batch, np.zeros((batch_size - batch.shape[0], *batch.shape[1:]), batch.dtype)])
                try:
                    out.append(np.asarray(run(tf.constant(batch)))[: x.shape[0] - start])
                except (RuntimeError, ValueError, tf.errors.OpError) as exc:
                    raise ModelFileError(f"{name}: cannot run the model ({_first_line(exc)})") from None
        return np.concatenate(out).astype(np.float32) if out else np.zeros_like(x)

    return predict


def usable_cpus() -> int:
    """The CPUs this process may use: a container's CPU set or ``taskset``'s, capped by a CPU quota
    (``docker --cpus``, a Kubernetes limit), not the machine's count, so the model's threads do not
    outnumber them (more threads than the quota allows are throttled and run slower)."""
    import os

    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        count = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    if quota is not None:
        count = min(count, int(quota))
    return max(1, count)


def cgroup_cpu_quota(mountinfo: str | Path = "/proc/self/mountinfo",
                     cgroups: str | Path = "/proc/self/cgroup") -> float | None:
    """The tightest CPU quota, in CPUs, on this process's cgroup or its parents (cgroup v2
    ``cpu.max``, v1 ``cpu.cfs_quota_us``); None where there is none or Linux's files are absent."""
    try:
        own = {}  # controller ("" for cgroup v2) -> this process's cgroup path
        for line in Path(cgroups).read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for name in controllers.split(","):
                own[name] = path
        mounts = Path(mountinfo).read_text().splitlines()
    except (OSError, ValueError):
        return None
    quotas = []
    for line in mounts:
        fields, _, rest = line.partition(" - ")
        fields, rest = fields.split(), rest.split()
        if len(fields) < 5 or len(rest) < 3:
            continue
        if rest[0] == "cgroup2":
            path = own.get("")
        elif rest[0] == "cgroup" and "cpu" in rest[2].split(","):
            path = own.get("cpu")
        else:
            continue
        if path is None:
            continue
        root, mount = _unescape(fields[3]), Path(_unescape(fields[4]))
        # Inside a container the mount's root is the container's own cgroup.
        if root == "/":
            rel = path
        else:
            rel = path[len(root):] if path == root or path.startswith(root + "/") else "/"
        folder = mount / rel.lstrip("/")
        while True:
            quotas.append(_cpu_quota_in(folder))
            if folder == mount or mount not in folder.parents:
                break
            folder = folder.parent
    quotas = [q for q in quotas if q is not None]
    return min(quotas) if quotas else None


def _unescape(field: str) -> str:
    """A mountinfo path: spaces, tabs, newlines and backslashes are written as octal escapes."""
    import re

    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _cpu_quota_in(folder: Path) -> float | None:
    """One cgroup folder's CPU quota in CPUs (None: no limit or unreadable)."""
    try:
        if (folder / "cpu.max").exists():
            quota, period = (folder / "cpu.max").read_text().split()[:2]
            return None if quota == "max" or int(period) <= 0 else int(quota) / int(period)
        quota = int((folder / "cpu.cfs_quota_us").read_text())
        period = int((folder / "cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def lite_predict_fn(path: Path, batch_size: int = 4, threads: int | None = None,
                    block_shape: tuple[int, ...] | None = None) -> PredictFn:
    """Run an exported LiteRT model (no TensorFlow import): same contract as keras_predict_fn.

    ``block_shape`` (n_bins, n_frames, 1), when given, is checked against the model's input.
    """
    import os

    from ai_edge_litert.interpreter import Interpreter

    from .model_io import quiet_stderr

    try:
        with quiet_stderr():  # the runtime prints an INFO line on the C stderr
            interpreter = Interpreter(model_path=str(path), num_threads=threads or usable_cpus())
            inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
            interpreter.resize_tensor_input(inp["index"], [batch_size, *inp["shape"][1:]])
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{path}: cannot load the LiteRT model ({exc})") from None
    found = tuple(int(d) for d in inp["shape"][1:])
    if block_shape is not None and found != tuple(block_shape):
        raise ModelFileError(f"{path}: model input {found} does not match its settings {tuple(block_shape)}")

    def predict(x: np.ndarray) -> np.ndarray:
        result = np.empty_like(x, dtype=np.float32)
        for start in range(0, x.shape[0], batch_size):
            batch = x[start : start + batch_size]
            n = batch.shape[0]
            if n < batch_size:
                batch = np.concatenate([batch, np.zeros((batch_size - n, *batch.shape[1:]), np.float32)])
            try:
                interpreter.set_tensor(inp["index"], np.ascontiguousarray(batch, dtype=np.float32))
                interpreter.invoke()
            except (RuntimeError, ValueError) as exc:  # not the file being denoised: the batch stops
                raise ModelFileError(f"{path}: cannot run the LiteRT model ({_first_line(exc)})") from None
            result[start : start + n] = interpreter.get_tensor(out["index"])[:n]
        return result

    return predict


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


@dataclass(frozen=True)
class EnhanceOptions:
    """How much to remove, and how.

    strength: share of the predicted noise removed (1: all of it; 0: nothing).
    floor_db: the most any bin is attenuated, in dB (negative), so speech is never zeroed.
    high_band: above the model's band (inputs sampled higher than the model): "gain" applies the
      model's top-band gain frame by frame, "keep" passes it untouched, "drop" removes it.
    chunk_seconds: length of the chunks a long recording is processed in (the output does not
      depend on it).
    overlap: share of each block's frames also predicted by the next block, where the two are
      cross-faded (0.5: every frame is predicted twice, 1.5 times the work of 0.25 for no measured
      gain; 0 is fastest but leaves seams; benchmarks/quality_speed_options.txt).
    match_level: judge a recording whose level is outside ``LEVEL_RANGE_DB`` as if it were at the
      nearest end of that range (the output keeps the input's level).
    link_channels: apply one gain to every channel (``linked_removal``; above the model's band too), so
      a voice recorded in stereo keeps its place between the speakers. Each channel's noise is
      predicted on its own either way. Off by default: it suits one scene recorded on two channels
      with like noise, and costs the cleaner channel where the noise is very uneven, and a
      microphone per person most (benchmarks/stereo.txt).
    """

    strength: float = 1.0
    floor_db: float = FLOOR_DB
    high_band: str = "gain"
    chunk_seconds: float = CHUNK_SECONDS
    overlap: float = 0.25
    match_level: bool = True
    link_channels: bool = False

    def block_step(self, settings: Settings) -> int:
        """Frames from one block's start to the next's."""
        return max(1, settings.n_frames - round(settings.n_frames * self.overlap))

    def validate(self) -> "EnhanceOptions":
        if not 0.0 <= self.strength <= 1.0:
            raise DenoiseError(f"strength={self.strength} must be between 0 and 1")
        if self.floor_db > 0:
            raise DenoiseError(f"floor_db={self.floor_db} must be <= 0 dB")
        if self.high_band not in HIGH_BAND_MODES:
            raise DenoiseError(f"high_band={self.high_band!r} must be one of {', '.join(HIGH_BAND_MODES)}")
        if self.chunk_seconds <= 0:
            raise DenoiseError(f"chunk_seconds={self.chunk_seconds} must be > 0")
        if not 0.0 <= self.overlap <= 0.75:
            raise DenoiseError(f"overlap={self.overlap} must be between 0 and 0.75")
        return self


@dataclass(frozen=True)
class ChunkPlan:
    """How a recording of ``n`` samples at ``rate`` Hz is cut into exact, overlapping chunks.

    ``unit`` (input samples) is the smallest step that is a whole number of STFT hops at the model's
    rate and a whole number of resampling periods; chunks and margins are multiples of it, so every
    chunk sees the same STFT frames and filter phases as the whole signal (the block grid is the
    recording's, whatever the chunk).
    """

    rate: int
    n: int
    up: int
    down: int
    unit: int
    margin: int
    chunk: int

    @property
    def model_length(self) -> int:
        return -(-self.n * self.up // self.down)


def plan_chunks(n: int, rate: int, settings: Settings, chunk_seconds: float, step: int) -> ChunkPlan:
    """Chunks for ``n`` samples at ``rate``; ``step``: frames between block starts."""
    ratio = Fraction(settings.sample_rate, rate)
    up, down = ratio.numerator, ratio.denominator
    hop = settings.hop_length
    unit_model = hop * (up // math.gcd(up, hop))  # model samples: whole hops and whole periods of ``up``
    unit = unit_model * down // up
    # Each output sample depends on input within a block and a step, plus the STFT window and filter tails.
    reach = (settings.n_frames + step + 4) * hop + settings.n_fft + 64 + 4 * _resample_tail(up, down)
    margin = unit * -(-reach // unit_model)
    chunk = unit * max(1, round(chunk_seconds * rate / unit))
    return ChunkPlan(rate, n, up, down, unit, margin, chunk)


def _resample(x: np.ndarray, up: int, down: int) -> np.ndarray:
    if up == down:
        return x.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    return resample_poly(x, up, down).astype(np.float32)


def _resample_tail(up: int, down: int) -> int:
    """How far (in samples at the output rate) one sample spreads through ``_resample``'s filter."""
    # scipy's resample_poly designs a filter of 10 * max(up, down) taps each side at the up-sampled rate.
    return 0 if up == down else 10 * max(up, down) // down + 2


def recording_stats(
    read: Callable[[int, int], np.ndarray], n: int, rate: int, chunk: int, match_level: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Per channel: the DC offset, and the dB to add to the level so the network sees it in ``LEVEL_RANGE_DB``.

    The offset (the channel's mean) is removed before the network and added back after: a constant
    offset from a cheap interface is no noise to remove, but the network reads it as low-frequency
    energy and removes less of everything else. The level is the RMS of the channel, less its
    offset, over the half-second windows that are not digital silence; the shift is 0 when the level
    is inside the range, the channel is silent or ``match_level`` is off. Channels are judged each on
    their own, as they are denoised.
    """
    window = max(1, rate // 2)
    step = window * max(1, chunk // window)  # reads on the window grid: the same windows for any chunk size
    sums, squares, sizes = [], [], []
    for a in range(0, n, step):
        seg = read(a, min(n, a + step)).astype(np.float64)
        for w in range(0, seg.shape[0], window):
            part = seg[w : w + window]
            sums.append(part.sum(axis=0))
            squares.append(np.square(part).sum(axis=0))
            sizes.append(part.shape[0])
    sums, squares, sizes = np.array(sums), np.array(squares), np.array(sizes, dtype=np.float64)[:, None]
    offset = sums.sum(axis=0) / max(1, n)
    mean_square = np.maximum(squares / sizes - 2.0 * offset * sums / sizes + offset**2, 0.0)
    shift = np.zeros(offset.shape[0])
    if match_level:
        low, high = LEVEL_RANGE_DB
        for ch in range(offset.shape[0]):
            loud = mean_square[:, ch][mean_square[:, ch] > 10.0 ** (SILENT_WINDOW_DB / 10.0)]
            if loud.size:
                level = 10.0 * math.log10(float(np.mean(loud)))
                shift[ch] = float(np.clip(level, low, high) - level)
    return offset.astype(np.float32), shift


@functools.lru_cache(maxsize=4)
def _block_grid(total_frames: int, block: int, step: int) -> tuple[int, ...]:
    """The recording's block starts (global frames), made once per recording, not once per chunk."""
    return tuple(block_starts(total_frames, block, step))


def _model_stage(
    seg: np.ndarray, frame0: int, total_frames: int, settings: Settings, predict: PredictFn,
    options: EnhanceOptions, need: tuple[float, float], trusted: tuple[float, float], cache: dict[int, np.ndarray],
    shift_db: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """The STFT of a segment at the model's rate whose first sample is global frame ``frame0``'s centre,
    and the dB to remove from each of its bins.

    Only blocks whose frames touch the samples ``need`` (local) are predicted; the output elsewhere
    is not meaningful. Blocks that read only ``trusted`` samples (those equal to the whole
    recording's) are the same in the next chunk: they are kept in ``cache`` by global start frame,
    and blocks found there are not predicted again.
    ``shift_db``: the level the network judges the segment at, relative to its own.
    Returns (STFT, dB removed), both of shape (bins, frames).
    """
    hop, pad = settings.hop_length, settings.n_fft // 2
    n_local = -(-seg.shape[0] // hop)
    n_valid = max(0, min(n_local, total_frames - frame0))
    padded = np.concatenate([np.zeros(pad, np.float32), seg, np.zeros(pad + settings.n_fft, np.float32)])
    spec = stft(padded, settings, center=False)[:, :n_valid]
    scaled = scale_input(magnitude_db(spec * np.float32(10.0 ** (shift_db / 20.0)), settings), settings)
    block, step = settings.n_frames, options.block_step(settings)
    first_frame = math.floor((need[0] - pad) / hop) - 1
    last_frame = math.floor((need[1] + pad) / hop) + 1
    # The global block grid (the last block ends on the recording's last frame), in local frames;
    # only blocks inside this segment that touch the needed samples.
    grid = _block_grid(total_frames, block, step)
    inside = grid[bisect.bisect_left(grid, frame0) : bisect.bisect_left(grid, frame0 + n_valid)]
    starts = [g - frame0 for g in inside if first_frame < g - frame0 + block and g - frame0 <= last_frame]
    todo = [s for s in starts if frame0 + s not in cache]
    fresh = dict(zip(todo, predict(split_blocks(scaled, todo, block)[..., None])[..., 0])) if todo else {}
    predicted = [cache[frame0 + s] if frame0 + s in cache else fresh[s] for s in starts]
    cache.clear()
    cache.update({frame0 + s: p for s, p in zip(starts, predicted)
                  if trusted[0] <= s * hop - pad and (s + block - 1) * hop + pad < trusted[1]})
    share = unscale_target(overlap_add(np.stack(predicted), starts, n_valid), settings)
    return spec, np.clip(options.strength * share, 0.0, -options.floor_db)


def _apply_removal(spec: np.ndarray, removed_db: np.ndarray, length: int, settings: Settings) -> np.ndarray:
    """Attenuate ``spec`` by ``removed_db`` and invert it to ``length`` samples (see ``_model_stage``)."""
    pad = settings.n_fft // 2
    out = istft(spec * np.power(10.0, -removed_db / 20.0, dtype=np.float32), settings, center=False)
    return np.pad(out[pad:], (0, max(0, length - out.shape[0] + pad)))[:length].astype(np.float32)


def _top_band_gain(specs: list[np.ndarray], removed_db: list[np.ndarray], settings: Settings) -> np.ndarray:
    """Per frame, the amplitude gain of the model's top band (its top eighth), over the channels given."""
    top = slice(settings.n_bins - settings.n_bins // HIGH_BAND_SHARE, settings.n_bins)
    power_in = sum(np.sum(np.square(np.abs(s[top]).astype(np.float64)), axis=0) for s in specs)
    power_out = sum(np.sum(np.square(np.abs(s[top]).astype(np.float64)) * np.power(10.0, -r[top] / 10.0), axis=0)
                    for s, r in zip(specs, removed_db))
    return np.sqrt(np.divide(power_out, power_in, out=np.ones_like(power_in), where=power_in > 0)).astype(np.float32)


def linked_removal(specs: list[np.ndarray], removed_db: list[np.ndarray]) -> np.ndarray:
    """One removal for every channel: the gain that keeps, bin by bin, the channels' summed estimate
    of clean power (each channel's gain squared, weighted by its noisy power).

    Applying the same gain to every channel keeps the level differences between them, so a voice
    does not wander between the speakers as the noise in each channel comes and goes. The result
    lies between the channels' own removals (so within the floor), whatever the level.
    """
    power = [np.square(np.abs(s).astype(np.float64)) for s in specs]
    kept = sum(p * np.power(10.0, -r.astype(np.float64) / 10.0) for p, r in zip(power, removed_db))
    total = sum(power)
    ratio = np.divide(kept, total, out=np.ones_like(total), where=total > 0)
    linked = -10.0 * np.log10(np.maximum(ratio, 1e-300))
    stacked = np.stack(removed_db)
    return np.clip(linked, stacked.min(axis=0), stacked.max(axis=0)).astype(np.float32)


@dataclass(frozen=True)
class _Segment:
    """One channel's segment at the model's rate, and where it lies (see ``_process``)."""

    seg: np.ndarray
    model: np.ndarray
    frame0: int
    total_frames: int
    need: tuple[float, float]
    trusted: tuple[float, float]


def _segment(seg: np.ndarray, start: int, keep: tuple[int, int], plan: ChunkPlan, settings: Settings) -> _Segment:
    seg_model = _resample(seg, plan.up, plan.down)
    model_start = start * plan.up // plan.down
    total_frames = 1 + (plan.model_length - 1) // settings.hop_length
    tail = _resample_tail(plan.up, plan.down)
    need = (keep[0] * plan.up / plan.down - tail - 1, keep[1] * plan.up / plan.down + tail + 1)
    trusted = (tail if start > 0 else -math.inf,
               seg_model.shape[0] - tail if start + seg.shape[0] < plan.n else math.inf)
    return _Segment(seg, seg_model, model_start // settings.hop_length, total_frames, need, trusted)


def _finish(part: _Segment, spec: np.ndarray, removed_db: np.ndarray, band_gain: np.ndarray, plan: ChunkPlan,
            settings: Settings, options: EnhanceOptions) -> np.ndarray:
    """Apply the removal to one channel's segment and bring it back to the input rate; above the
    model's band, ``band_gain`` (per frame) applies."""
    seg, seg_model = part.seg, part.model
    enhanced = _apply_removal(spec, removed_db, seg_model.shape[0], settings)
    if plan.up == plan.down:
        return enhanced
    removed = _resample(seg_model - enhanced, plan.down, plan.up)[: seg.shape[0]]
    out = seg - np.pad(removed, (0, seg.shape[0] - removed.shape[0]))
    if plan.up < plan.down and options.high_band != "keep":  # input above the model's band
        low = _resample(seg_model, plan.down, plan.up)[: seg.shape[0]]
        high = seg - np.pad(low, (0, seg.shape[0] - low.shape[0]))
        if options.high_band == "drop":
            gain = 0.0
        else:
            centres = np.arange(band_gain.shape[0]) * settings.hop_length * plan.down / plan.up
            gain = np.interp(np.arange(seg.shape[0]), centres, band_gain) if band_gain.size else 1.0
        out = out - (1.0 - gain) * high
    return out.astype(np.float32)


def _process(
    seg: np.ndarray, start: int, keep: tuple[int, int], plan: ChunkPlan, settings: Settings, predict: PredictFn,
    options: EnhanceOptions, caches: list[dict[int, np.ndarray]], shift_db: np.ndarray,
) -> np.ndarray:
    """Denoise a segment (input rate, shape (samples, channels), offsets removed) that starts at input
    sample ``start``.

    Only the output samples ``keep`` (local) are used by the caller; ``caches`` carry each channel's
    block predictions from the previous chunk (see ``_model_stage``).
    """
    parts = [_segment(seg[:, ch], start, keep, plan, settings) for ch in range(seg.shape[1])]
    staged = [_model_stage(p.model, p.frame0, p.total_frames, settings, predict, options, p.need, p.trusted,
                           caches[ch], float(shift_db[ch])) for ch, p in enumerate(parts)]
    specs = [spec for spec, _ in staged]
    removed = [r for _, r in staged]
    if options.link_channels and len(parts) > 1:
        removed = [linked_removal(specs, removed)] * len(parts)
        band_gains = [_top_band_gain(specs, removed, settings)] * len(parts)
    else:
        band_gains = [_top_band_gain([spec], [r], settings) for spec, r in zip(specs, removed)]
    return np.stack([_finish(p, spec, r, g, plan, settings, options)
                     for p, spec, r, g in zip(parts, specs, removed, band_gains)], axis=1)


def enhance_chunks(
    read: Callable[[int, int], np.ndarray],
    n: int,
    rate: int,
    settings: Settings,
    predict: PredictFn,
    options: EnhanceOptions = EnhanceOptions(),
) -> Iterator[np.ndarray]:
    """Denoise a recording of ``n`` samples chunk by chunk; yields consecutive output pieces.

    read(start, stop): float32 samples [start, stop) of shape (stop - start, channels).
    Each yielded piece has shape (samples, channels); together they are exactly ``n`` samples.
    Blocks shared by neighbouring chunks are predicted once, so chunking costs almost no extra work.
    """
    options.validate()
    plan = plan_chunks(n, rate, settings, options.chunk_seconds, options.block_step(settings))
    offset, shift_db = recording_stats(read, n, rate, plan.chunk, options.match_level)
    caches: list[dict[int, np.ndarray]] = []
    for a in range(0, n, plan.chunk):
        b = min(n, a + plan.chunk)
        lo, hi = max(0, a - plan.margin), min(n, b + plan.margin)
        seg = read(lo, hi)
        audio_io.check_audio(seg, "input")
        caches += [{} for _ in range(seg.shape[1] - len(caches))]
        out = _process(seg - offset, lo, (a - lo, b - lo), plan, settings, predict, options, caches, shift_db) + offset
        # Digital silence (an edit's, a muted channel's) stays exactly silent, a DC offset or not.
        out[digital_silence(seg, min(SILENT_RUN, plan.margin))] = 0.0
        yield out[a - lo : b - lo]


def digital_silence(audio: np.ndarray, min_run: int) -> np.ndarray:
    """Mask of the samples of ``audio`` (samples, channels) in runs of at least ``min_run`` exact zeros."""
    mask = np.zeros(audio.shape, bool)
    for ch in range(audio.shape[1]):
        edges = np.diff(np.concatenate([[0], (audio[:, ch] == 0).astype(np.int8), [0]]))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        long = ends - starts >= min_run
        marks = np.zeros(audio.shape[0] + 1, np.int64)
        marks[starts[long]] += 1
        marks[ends[long]] -= 1
        mask[:, ch] = np.cumsum(marks)[:-1] > 0
    return mask


def enhance_signal(audio: np.ndarray, rate: int, settings: Settings, predict: PredictFn, **options) -> np.ndarray:
    """Denoise audio at any rate, each channel on its own (or with one gain for all: ``link_channels``).

    audio: float32, shape (n_samples, channels) or (n_samples,), at ``rate`` Hz. Returns the same
    shape and rate. ``options``: the fields of EnhanceOptions (strength, floor_db, high_band,
    chunk_seconds, overlap, match_level, link_channels).
    """
    given = np.asarray(audio)
    if given.dtype.kind in "iub":
        raise AudioError(f"audio of type {given.dtype}: expected floats in [-1, 1] "
                         f"(integer samples: divide by their full scale, 32768 for int16)")
    try:
        whole = isinstance(rate, (int, float, np.integer, np.floating)) and float(rate).is_integer()
    except (OverflowError, ValueError):  # inf, nan
        whole = False
    if not whole or isinstance(rate, bool) or not MIN_RATE <= int(rate) <= MAX_RATE:
        raise AudioError(f"sample rate {rate!r}: expected a whole number of Hz from {MIN_RATE} to {MAX_RATE}")
    rate = int(rate)
    audio = given.astype(np.float32, copy=False)
    if audio.ndim == 1:
        return enhance_signal(audio[:, None], rate, settings, predict, **options)[:, 0]
    if audio.ndim != 2:
        raise AudioError(f"audio of shape {audio.shape}: expected (n_samples, channels) or (n_samples,)")
    if audio.shape[1] > max(audio.shape[0], 64):
        raise AudioError(f"audio of shape {audio.shape}: more channels than samples; expected "
                         f"(n_samples, channels), so transpose a channels-first array (audio.T)")
    if audio.shape[0] == 0:
        return audio.copy()
    pieces = enhance_chunks(lambda a, b: audio[a:b], audio.shape[0], rate, settings, predict,
                            EnhanceOptions(**options))
    return np.concatenate(list(pieces), axis=0)


def enhance(audio: np.ndarray, settings: Settings, predict: PredictFn, **options) -> np.ndarray:
    """Denoise mono audio at the model's rate.

    audio: float32, shape (n_samples,), at settings.sample_rate Hz. Returns the same shape.
    """
    return enhance_signal(np.asarray(audio)[:, None], settings.sample_rate, settings, predict, **options)[:, 0]


@dataclass
class FileResult:
    input: Path
    output: Path
    seconds: float
    sample_rate: int
    channels: int
    scaled_db: float = 0.0  # gain applied to avoid clipping (0: none)
    processing_s: float = 0.0
    truncated: str | None = None  # the input holds less than its header promised, or was damaged: what is missing
    plot_skipped: str | None = None  # why --plot drew nothing for this file


MIN_RATE, MAX_RATE = 8000, 192000


def enhance_file(
    in_path: Path,
    out_path: Path,
    settings: Settings,
    predict: PredictFn,
    mono: bool = False,
    stop: Callable[[], bool] | None = None,
    progress: Callable[..., None] | None = None,
    **options,
) -> FileResult:
    """Denoise one file into ``out_path``: same rate, channels (or mono) and, where the output format
    allows, sample format. Memory stays bounded whatever the duration.

    ``stop``, asked before each chunk: True abandons the work (Cancelled), leaving no output.
    ``progress(seconds done, seconds in all, stage)`` is called as the work goes: stage "Decoding"
    (a file PyAV reads; seconds in all not yet known: 0), "Denoising" after each chunk, then
    "Writing" (encoding an hour as MP3 or AAC takes a minute). A ``progress(done, in_all)`` of two
    arguments hears of the denoising only, as before the stages were told.

    Nothing is left at ``out_path`` on failure: the audio goes to a temporary file in the output
    folder that is renamed at the end. If denoising would push samples past full scale, the whole
    output is scaled down just enough (``FileResult.scaled_db``).
    """
    import time

    in_path, out_path = Path(in_path), Path(out_path)
    enhance_options = EnhanceOptions(**options).validate()
    progress = _with_stage(progress)
    if out_path.exists() and (out_path.resolve() == in_path.resolve() or _same_file(in_path, out_path)):
        raise AudioError(f"{out_path}: output would overwrite its input")
    if not out_path.parent.is_dir():
        raise AudioError(f"{out_path}: output folder {out_path.parent} does not exist")
    audio_io.format_for(out_path)  # an extension that names no writable format: refused before the work
    # A format only PyAV reads (.m4a...), a codec libsndfile cannot seek in (GSM 6.10) or a header with
    # no length is decoded into the output folder first, then read in chunks; its length is known once
    # decoded.
    decoded = out_path.with_name(f".{out_path.name}.in.w64") if audio_io.needs_decoding(in_path) else None
    if decoded is None:
        n, rate, channels = audio_io.audio_info(in_path)
    else:
        n, (rate, channels) = 0, audio_io.audio_format(in_path)
    damage: list[str] = []
    if n <= 0 and decoded is None:
        raise AudioError(f"{in_path}: no samples")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(f"{in_path}: unsupported sample rate {rate} Hz (supported: {MIN_RATE} to {MAX_RATE} Hz)")
    subtype = audio_io.output_subtype(in_path, out_path)
    out_channels = 1 if mono else channels
    audio_io.check_writable(out_path, rate, out_channels)
    audio_io.check_picture(in_path, out_path, rate, out_channels)
    started = time.perf_counter()
    tmp_float = out_path.with_name(f".{out_path.name}.part.w64")
    tmp_final = out_path.with_name(f".{out_path.stem}.part{out_path.suffix}")
    try:
        tmp_float.touch()  # libsndfile would only say "System error." for a read-only or full folder
    except OSError as exc:
        raise AudioError(f"{out_path}: cannot write into {out_path.parent} ({exc.strerror})") from None
    try:
        # The work files get the output's permissions from the start: an embargoed recording's too.
        for work in (tmp_float, tmp_final, decoded):
            if work is not None:
                work.touch()
                _keep_mode(work, out_path, in_path)
        if decoded is not None:
            n, rate, channels = audio_io.decode_to(
                in_path, decoded, problems=damage,
                progress=progress and (lambda seconds: progress(seconds, 0.0, "Decoding")))
            if n <= 0:
                raise AudioError(f"{in_path}: no samples")
        peak, done = 0.0, 0
        with audio_io.open_audio(decoded or in_path) as src, audio_io.float_writer(tmp_float, rate, out_channels) as dst:

            def read(a: int, b: int) -> np.ndarray:
                try:
                    src.seek(a)
                    data = src.read(b - a, dtype="float32", always_2d=True)
                except RuntimeError as exc:  # libsndfile's errors
                    raise AudioError(f"{in_path}: truncated or corrupt ({audio_io.short_error(exc)})") from None
                if data.shape[0] != b - a:
                    raise AudioError(f"{in_path}: truncated: {a + data.shape[0]} of {n} samples readable")
                audio_io.check_audio(data, str(in_path))  # NaN, infinite or absurd values: a corrupt file
                return data.mean(axis=1, keepdims=True) if mono else data

            for piece in enhance_chunks(read, n, rate, settings, predict, enhance_options):
                if stop is not None and stop():
                    raise Cancelled(f"{in_path}: cancelled")
                if not np.all(np.isfinite(piece)):
                    raise AudioError(f"{in_path}: denoising gave non-finite samples (is the input's range sane?)")
                peak = max(peak, float(np.max(np.abs(piece))))
                dst.write(piece)
                if progress is not None:
                    done += piece.shape[0]
                    progress(done / rate, n / rate, "Denoising")
        # Past full scale, the whole file is scaled down: to full scale, or for a lossy format to
        # -1 dBFS (its decoder overshoots: an MP3 scaled to 1.0 decoded to 1.016).
        # A float output holds peaks past full scale as they are (a 32-bit-float field recorder's).
        # An overshoot under half a 16-bit step (the STFT round trip's, with nothing removed) is not one.
        floating = subtype in ("FLOAT", "DOUBLE")
        scale = 1.0 if peak <= 1.0 + 2.0 ** -16 or floating else (audio_io.LOSSY_PEAK if audio_io.is_lossy_output(out_path) else 1.0) / peak
        # A video output gets the input's picture (an input libsndfile reads has none).
        audio_io.convert_float_file(tmp_float, tmp_final, subtype, scale, picture=decoded and in_path,
                                    progress=progress and (lambda seconds: progress(seconds, n / rate, "Writing")),
                                    tags=audio_io.read_tags(in_path))
        if in_path.suffix.lower() == out_path.suffix.lower() == ".wav":
            audio_io.copy_broadcast_chunks(in_path, tmp_final, same_channels=out_channels == channels)
        tmp_final.replace(out_path)
    except (OSError, RuntimeError) as exc:  # RuntimeError: libsndfile's errors
        audio_io.remove_quietly(tmp_final)
        raise AudioError(f"{out_path}: cannot write audio ({audio_io.short_error(exc)})") from None
    except BaseException:  # DenoiseError, and Ctrl-C while writing: leave no hidden file behind
        audio_io.remove_quietly(tmp_final)
        raise
    finally:
        audio_io.remove_quietly(tmp_float)
        if decoded is not None:
            audio_io.remove_quietly(decoded)
    return FileResult(in_path, out_path, n / rate, rate, out_channels,
                      20 * math.log10(scale), time.perf_counter() - started,
                      audio_io.truncation(in_path) or ("; ".join(damage) or None))


def _same_file(a: Path, b: Path) -> bool:
    """Whether two names are one file (a case-insensitive card or disk: ZOOM0001.WAV, zoom0001.wav)."""
    import os

    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _keep_mode(path: Path, replaced: Path, source: Path) -> None:
    """Give a new output the permissions of the file it replaces, or else, as ``cp`` does, of its
    input within the umask: an embargoed recording readable by its owner only stays so."""
    import os
    import stat

    try:
        if replaced.exists():
            mode = stat.S_IMODE(replaced.stat().st_mode) & 0o777  # no setuid, setgid or sticky bit
        else:  # the new file was made with 0o666 less the umask
            mode = stat.S_IMODE(source.stat().st_mode) & stat.S_IMODE(path.stat().st_mode)
        os.chmod(path, mode)
    except OSError:
        pass


def _with_stage(progress: Callable[..., None] | None) -> Callable[[float, float, str], None] | None:
    """``progress`` called with a stage; one that takes two arguments only for "Denoising"."""
    import inspect

    if progress is None:
        return None
    try:
        inspect.signature(progress).bind(0.0, 0.0, "Denoising")
        return progress
    except TypeError:
        return lambda done, total, stage: progress(done, total) if stage == "Denoising" else None
    except ValueError:  # a builtin without a signature
        return progress


GLOB_CHARS = set("*?[")


def plan_outputs(paths: list[Path], out_dir: Path | None, out_format: str | None = None,
                 notes: dict[Path, str] | None = None, mono: bool = False) -> tuple[list[tuple[Path, Path]], list[str]]:
    """(input, output) pairs for ``denoise predict`` arguments, and one line per argument that fails.

    Without ``out_dir`` the arguments are exactly IN OUT. With it, each argument is a file, a folder
    (searched recursively, relative paths kept) or a glob pattern, written under ``out_dir`` in its
    own format, or ``out_format`` (an extension such as 'flac') when given; a format that can only be
    read (.m4a...) becomes WAV. An input written in another format than its own, where its own
    would lose something, is said in ``notes`` (input -> one line).
    """
    if out_dir is None:
        if out_format:
            raise UsageProblem("--out-format is for --out-dir; with IN OUT, OUT's extension names the format")
        if len(paths) != 2:
            raise UsageProblem(f"expected IN OUT, got {len(paths)} path(s); use --out-dir DIR for several inputs")
        src, dst = Path(paths[0]), Path(paths[1])
        if src.is_dir():
            raise AudioError(f"{src}: is a folder; use --out-dir DIR to denoise a folder")
        if dst.is_dir():
            raise AudioError(f"{dst}: is a folder; use --out-dir {dst} to write into it")
        note = notes is not None and _lossy_note(src, dst, batch=False)
        if note:
            notes[src] = note
        return [(src, dst)], []
    jobs, problems = [], []
    for arg in paths:
        arg = Path(arg)
        pattern = not arg.exists() and bool(GLOB_CHARS & set(str(arg)))
        searched = arg if arg.is_dir() else _pattern_root(arg) if pattern else None
        if searched is not None and searched.resolve() == Path(out_dir).resolve():
            # Its outputs would replace its recordings, or sit among them (--out-format) to be taken
            # for recordings by a rerun.
            problems.append(f"{arg}: {'searches' if pattern else 'is'} the --out-dir itself; write into another "
                            f"folder ({searched.resolve().name}_denoised, say), or one inside it")
        elif arg.is_dir():
            found = audio_io.find_audio_files(arg, skip=out_dir)
            if not found:
                problems.append(f"{arg}: no audio files in it")
            jobs += [(p, out_dir / p.relative_to(arg)) for p in found]
        elif pattern:
            # An --out-dir inside the folder the pattern searches: a rerun's pattern would also match
            # the last run's outputs (as for a folder; an --out-dir of "." above "rec/*.wav" is no such case).
            outputs = Path(out_dir).resolve()
            inside = outputs.is_relative_to(searched.resolve())
            matches = sorted(Path(m) for m in glob.glob(str(arg), recursive=True)
                             if Path(m).is_file() and not (inside and Path(m).resolve().is_relative_to(outputs)))
            if not matches:
                problems.append(f"{arg}: no file matches")
            jobs += [(m, out_dir / m.name) for m in matches]
        else:
            jobs.append((arg, out_dir / arg.name))
    unique, clashes = _one_input_per_output([(src, _with_format(dst, out_format, src, notes, mono)) for src, dst in jobs])
    return unique, problems + clashes


def _pattern_root(pattern: Path) -> Path:
    """The folder a glob pattern searches: its parts before the first with a glob character."""
    fixed = []
    for part in pattern.parts:
        if GLOB_CHARS & set(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _one_input_per_output(jobs: list[tuple[Path, Path]]) -> tuple[list[tuple[Path, Path]], list[str]]:
    """The jobs without repeats; a second input for one output (``memo.m4a`` and ``memo.wav`` both
    to ``memo.wav``) is a problem line, not a silent overwrite."""
    seen: dict[Path, Path] = {}
    unique, problems = [], []
    for src, dst in jobs:
        if dst in seen and Path(src).resolve() == Path(seen[dst]).resolve():
            continue  # the same file named twice (a folder and a glob, say): denoised once
        if dst in seen:
            problems.append(f"{src}: its output {dst} would also be written from {seen[dst]} "
                            "(rename one, or denoise them into different folders)")
        else:
            seen[dst] = src
            unique.append((src, dst))
    return unique, problems


def _with_format(path: Path, out_format: str | None, src: Path | None = None,
                 notes: dict[Path, str] | None = None, mono: bool = False) -> Path:
    """``path`` with the extension of ``out_format``, else its own if it can be written, else .wav;
    also where ``src`` would lose by its own: an m4a's ALAC is not made lossy AAC unasked, and a
    video whose picture or sound its container cannot take back (VP8 with 44.1-kHz sound in .webm)
    goes into .mkv if that holds them, else WAV (a 5.1 sound track). Such a change is noted, as is
    a video's lossless sound (a camera's PCM) written as AAC beside its picture."""
    if out_format or path.suffix.lower() not in audio_io.WRITABLE_EXTENSIONS:
        new = path.with_suffix("." + out_format.lower().lstrip(".")) if out_format else path.with_suffix(".wav")
    else:
        why = None if src is None else audio_io.own_format_problem(src, path, mono)
        if why is not None:
            return _format_for_loss(path, src, why, notes, mono)
        new = path
    note = notes is not None and src is not None and _lossy_note(src, new, batch=True)
    if note:  # asked for with --out-format, or a video kept in its own format
        notes[src] = note
    return new


def _format_for_loss(path: Path, src: Path, why: str, notes: dict[Path, str] | None, mono: bool) -> Path:
    """Where ``src``'s own format ``path`` would lose (``why``): .mkv for a video if that holds it, else WAV."""
    mkv = path.with_suffix(".mkv")
    if path.suffix.lower() in audio_io.VIDEO_EXTENSIONS and mkv.suffix != path.suffix.lower() \
            and audio_io.own_format_problem(src, mkv, mono) is None:
        new = mkv
    else:
        new = path.with_suffix(".wav")
        if path.suffix.lower() in audio_io.VIDEO_EXTENSIONS:
            why += "; the picture is not kept"
    if notes is not None:
        notes[src] = f"{src}: written as {new.name} ({why})"
    return new


def _lossy_note(src: Path, dst: Path, batch: bool) -> str | None:
    """A note where ``dst`` makes ``src``'s lossless sound (an m4a's ALAC, a camera's PCM) lossy
    (every format PyAV writes holds AAC, or Opus for .webm), with how to keep it lossless: a
    batch's --out-format, or one file's name."""
    suffix = dst.suffix.lower()
    if suffix not in audio_io.AV_OUTPUTS or not audio_io.is_lossless_av(src):
        return None
    codec = "Opus" if suffix == ".webm" else "AAC"
    if suffix in audio_io.VIDEO_EXTENSIONS and audio_io.has_picture(src):
        keep = "--out-format wav keeps it" if batch else f"write {dst.stem}.wav to keep it"
        keep += " lossless, without the picture"
    else:
        keep = "--out-format flac keeps it lossless" if batch else f"write {dst.stem}.flac or .wav to keep it lossless"
    return f"{src}: its sound is lossless; {dst.name} holds it as lossy {codec} ({keep})"


@dataclass
class BatchReport:
    done: list[FileResult]
    skipped: list[str]
    failed: list[str]

    @property
    def audio_seconds(self) -> float:
        return sum(r.seconds for r in self.done)

    @property
    def processing_seconds(self) -> float:
        return sum(r.processing_s for r in self.done)


def enhance_batch(
    jobs: list[tuple[Path, Path]],
    model_for_rate: Callable[[int], object],
    overwrite: bool = False,
    mono: bool = False,
    plot: bool = False,
    make_dirs: bool = False,
    progress: Callable[[int], None] | None = None,
    file_progress: Callable[..., None] | None = None,
    **options,
) -> BatchReport:
    """Denoise each (input, output) pair; a failure is recorded and the batch goes on.

    Existing outputs are skipped unless ``overwrite``; an output equal to its input is refused.
    ``make_dirs`` creates missing output folders (for --out-dir); otherwise a missing one is an error.
    ``model_for_rate(rate)`` gives the loaded model for a file's sample rate (loaded once each);
    ``options`` are EnhanceOptions fields. Bad options or a model that cannot be loaded or run stop
    the whole batch (DenoiseError): they are no single file's problem.
    """
    EnhanceOptions(**options).validate()
    report = BatchReport([], [], [])
    plotted: dict[Path, Path] = {}
    for src, dst in jobs:
        try:
            if dst.exists() and dst.resolve() == Path(src).resolve():
                raise AudioError(f"{dst}: output would overwrite its input")
            if dst.exists() and not overwrite:
                report.skipped.append(f"{dst}: exists (use --overwrite to replace it)")
            else:
                if make_dirs:
                    try:
                        dst.parent.mkdir(parents=True, exist_ok=True)
                    except OSError as exc:
                        raise AudioError(f"{dst}: cannot create output folder ({exc.strerror})") from None
                rate, _ = audio_io.audio_format(src)
                loaded = model_for_rate(rate)
                result = enhance_file(src, dst, loaded.settings, loaded.predict, mono=mono, progress=file_progress,
                                      **options)
                if plot:
                    png = dst.with_suffix(".png")
                    if png in plotted:
                        result.plot_skipped = f"{png}: already the plot of {plotted[png]}; none drawn for {dst}"
                    elif png.exists() and not overwrite:
                        result.plot_skipped = f"{png}: exists (use --overwrite to replace it); no plot drawn"
                    else:
                        from .plots import plot_before_after

                        plot_before_after(src, dst, png)
                        plotted[png] = dst
                report.done.append(result)
        except ModelFileError as exc:
            if report.done:
                raise ModelFileError(f"{exc} (stopped; {len(report.done)} of {len(jobs)} files were written)") from None
            raise
        except DenoiseError as exc:
            report.failed.append(str(exc))
        if progress is not None:
            progress(1)
    return report


def enhance_tree(
    in_dir: Path, out_dir: Path, model_for_rate: Callable[[int], object],
    progress: Callable[[int], None] | None = None, skip: Path | None = None,
    only: Collection[Path] | None = None,
) -> tuple[list[FileResult], list[str]]:
    """Denoise every audio file under ``in_dir`` (those in ``only``, when given) into ``out_dir``,
    keeping relative paths.

    Files under ``skip`` (default ``out_dir``) are not inputs. A lossy input (MP3, Ogg, AAC) is
    written as WAV, so that scoring the output does not count a second encoding against the
    denoiser. Returns the results and one line per file that failed.
    """
    files = audio_io.find_audio_files(in_dir, skip=skip or out_dir)
    if only is not None:
        files = [p for p in files if p in only]
    jobs = [(p, Path(out_dir) / p.relative_to(in_dir)) for p in files]
    jobs = [(p, _with_format(q, "wav" if audio_io.is_lossy_output(q) else None)) for p, q in jobs]
    jobs, clashes = _one_input_per_output(jobs)
    if progress is not None and clashes:
        progress(len(clashes))
    report = enhance_batch(jobs, model_for_rate, overwrite=True, make_dirs=True, progress=progress)
    return report.done, clashes + report.failed
