"""Room echo for data creation: seeded room impulse responses, and speech convolved with them.

A room impulse response (RIR) here is the image-source simulation of a random shoebox room
(pyroomacoustics, the ``reverb`` extra) for the direct sound and early reflections, continued by a
seeded, exponentially decaying noise tail that reaches -60 dB at the drawn RT60. The image method
alone would need hundreds of reflection orders for a 1 s RT60 (seconds per response), and
pyroomacoustics' ray tracer is not reproducible; this hybrid is both fast and identical for the same
seed. Each response is shifted so its direct path is sample 0 with gain 1: the reverberant speech
stays aligned with the dry speech that training uses as the target.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from .errors import DataError, install_hint

EARLY_ORDER = 10  # image-source reflection orders simulated exactly
MIXING_TIME = 0.05  # seconds after the direct sound where the noise tail takes over
ROOM_MIN = (3.0, 3.0, 2.5)  # metres (length, width, height)
ROOM_MAX = (10.0, 8.0, 4.0)
WALL_MARGIN = 0.5
MIN_DISTANCE = 0.5  # source to microphone, metres: a talker near a phone or a laptop
MAX_DISTANCE = 3.0


def require_pyroomacoustics() -> ModuleType:
    """The pyroomacoustics module, or DataError saying how to install it."""
    try:
        import pyroomacoustics
    except ImportError:
        raise DataError("--reverb needs the 'pyroomacoustics' package: " + install_hint("reverb")) from None
    return pyroomacoustics


def room_impulse_response(rng: np.random.Generator, rate: int, rt60: float) -> np.ndarray:
    """A random room's impulse response with reverberation time ``rt60`` seconds, talker and
    microphone 0.5 to 3 m apart; float32, starting at the direct path with gain 1, about 1.2 x rt60
    long."""
    pra = require_pyroomacoustics()
    dims = rng.uniform(ROOM_MIN, ROOM_MAX)
    while True:
        source, mic = (rng.uniform(WALL_MARGIN, dims - WALL_MARGIN) for _ in range(2))
        if MIN_DISTANCE <= np.linalg.norm(source - mic) <= MAX_DISTANCE:
            break
    try:
        absorption, _ = pra.inverse_sabine(rt60, dims)
    except ValueError:  # a room too small or too large for this RT60: allow any absorption
        absorption = 0.99
    room = pra.ShoeBox(dims, fs=rate, materials=pra.Material(float(absorption)), max_order=EARLY_ORDER)
    room.add_source(source)
    room.add_microphone(mic)
    room.compute_rir()
    early = np.asarray(room.rir[0][0], dtype=np.float64)
    direct = int(np.argmax(np.abs(early)))
    early = early[direct:] / early[direct]

    n = max(int(1.2 * rt60 * rate), early.shape[0])
    t = np.arange(n) / rate
    envelope = 10.0 ** (-3.0 * t / rt60)  # amplitude falls 60 dB in rt60 seconds
    tail = rng.standard_normal(n) * envelope
    # Give the tail the early part's level just before the mixing time, then cross-fade into it.
    mix = int(MIXING_TIME * rate)
    window = slice(max(1, mix - int(0.01 * rate)), mix)
    early = np.pad(early, (0, max(0, n - early.shape[0])))[:n]
    scale = np.sqrt(np.mean(early[window] ** 2) / max(np.mean(tail[window] ** 2), 1e-30))
    fade = np.clip((np.arange(n) - window.start) / max(1, window.stop - window.start), 0.0, 1.0)
    rir = (1.0 - fade) * early + fade * scale * tail
    rir[0] = 1.0
    return rir.astype(np.float32)


def reverberate(signal: np.ndarray, start: int, length: int, rir: np.ndarray) -> np.ndarray:
    """``signal[start:start + length]`` as heard in the room: convolved with ``rir``, including the
    echo of what was said just before ``start``. float32, ``length`` samples."""
    from scipy.signal import fftconvolve

    begin = max(0, start - (rir.shape[0] - 1))
    stop = min(signal.shape[0], start + length)
    wet = fftconvolve(signal[begin:stop].astype(np.float64), rir.astype(np.float64))
    out = wet[start - begin : start - begin + length]
    return np.pad(out, (0, length - out.shape[0])).astype(np.float32)


def measure_rt60(rir: np.ndarray, rate: int) -> float:
    """Reverberation time in seconds from the Schroeder decay (-5 to -25 dB, extrapolated to -60 dB)."""
    energy = np.cumsum(rir[::-1].astype(np.float64) ** 2)[::-1]
    decay = 10.0 * np.log10(np.maximum(energy / energy[0], 1e-30))
    t5, t25 = np.argmax(decay <= -5.0), np.argmax(decay <= -25.0)
    return float(3.0 * (t25 - t5) / rate)
