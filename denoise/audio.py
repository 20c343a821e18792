"""Audio I/O: reading, writing, resampling, checking. The only module that imports soundfile and PyAV.

libsndfile reads and writes the usual formats; what it cannot read (AAC in .m4a from phones, the
sound track of a video, WebM, WMA) is decoded by PyAV (FFmpeg). PyAV also writes AAC in .m4a, and
videos: the input's picture copied unchanged beside the denoised sound track.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from .errors import AudioError

if TYPE_CHECKING:
    import soundfile

SNDFILE_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".aifc", ".caf", ".w64")
# Read through PyAV. Of these .m4a (AAC) and the video containers below are written; an output for
# the others is WAV unless another format is asked for.
DECODED_EXTENSIONS = (".m4a", ".aac", ".mp4", ".mov", ".3gp", ".webm", ".mka", ".mkv", ".wma")
AUDIO_EXTENSIONS = SNDFILE_EXTENSIONS + DECODED_EXTENSIONS
# Written by PyAV: extension -> (format_for's name, FFmpeg's muxer, audio codec). The video ones get
# the input's picture (every video stream, copied packet by packet, never re-encoded).
AV_OUTPUTS = {".m4a": ("M4A", "ipod", "aac"), ".mp4": ("MP4", "mp4", "aac"), ".mov": ("MOV", "mov", "aac"),
              ".mkv": ("MKV", "matroska", "aac"), ".webm": ("WEBM", "webm", "libopus")}
VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm")
WRITABLE_EXTENSIONS = SNDFILE_EXTENSIONS + tuple(AV_OUTPUTS)
AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)
AAC_LAYOUTS = {1: "mono", 2: "stereo"}  # more would be surround layouts: a 4th channel taken for LFE is low-passed
# Sample formats that carry over from any input format to any output format that holds them; a
# codec (MP3, Vorbis, Opus) only carries over within its own format (libsndfile accepts an MP3-in-WAV
# on paper, then cannot write it).
PLAIN_SUBTYPES = {"PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"}
# Beyond this a float sample is not audio (+120 dB over full scale): a corrupt file, not a loud one.
MAX_SAMPLE = 1e6
# A gap in a stream's timestamps longer than this is not filled with silence: decoding stops there.
MAX_GAP_SECONDS = 3600


def find_audio_files(folder: Path, skip: Path | None = None) -> list[Path]:
    """All audio files under ``folder``, recursively, sorted for reproducibility; hidden files and
    folders (a name starting with ".") are left out, as a shell's ``*`` leaves them out.

    ``skip``: an output folder; when it lies inside ``folder`` its files are not inputs (a rerun
    must not take the last run's outputs for new recordings).
    """
    folder = Path(folder)
    if not folder.exists():
        raise AudioError(f"{folder}: folder not found")
    if not folder.is_dir():
        raise AudioError(f"{folder}: not a folder")
    found, seen, top = [], set(), Path(os.path.realpath(folder))
    for root, dirs, files in os.walk(folder, followlinks=True):  # a subset made of linked folders
        real = os.path.realpath(root)
        if real in seen:  # a real folder reached again through a link: searched once, under its own name
            dirs[:] = []
            continue
        seen.add(real)
        # Real folders before links (sorted), so a folder is found under its own name; a link to the
        # top folder or above it would search outside it.
        dirs[:] = sorted((d for d in dirs if not top.is_relative_to(os.path.realpath(os.path.join(root, d)))),
                         key=lambda d: (os.path.islink(os.path.join(root, d)), d))
        # Hidden files and folders are not recordings: macOS's "._take.wav" beside each file on a
        # card, ".Trashes", ".git".
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(root) / name for name in files
                  if Path(name).suffix.lower() in AUDIO_EXTENSIONS and not name.startswith(".")]
    found = sorted(p for p in found if p.is_file())
    if skip is not None:
        inner, outer = Path(skip).resolve(), folder.resolve()
        if inner != outer and inner.is_relative_to(outer):
            found = [p for p in found if not p.resolve().is_relative_to(inner)]
    return found


def _check_path(path: Path) -> None:
    if not path.exists():
        raise AudioError(f"{path}: file not found")
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, expected an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")


def _sndfile_info(path: Path):
    """libsndfile's header of ``path`` (checked to exist and hold bytes), or the exception it raised."""
    import soundfile as sf

    _check_path(path)
    try:
        return sf.info(str(path))
    except Exception as exc:  # soundfile raises several types for unreadable files
        return exc


def audio_info(path: Path) -> tuple[int, int, int]:
    """(n_samples, sample_rate, channels) without decoding the file. For a file PyAV reads, n_samples
    is what an mp4/m4a/mov records, else the sum of its packets' durations (close; ``decode_to``
    gives the exact count)."""
    path = Path(path)
    info = _sndfile_info(path)
    if isinstance(info, Exception):
        return _av_info(path, info)
    return int(info.frames), int(info.samplerate), int(info.channels)


def audio_format(path: Path) -> tuple[int, int]:
    """(sample_rate, channels) from the header alone: for a file PyAV reads, cheaper than
    ``audio_info``, which may read every packet of a WebM to add up its length."""
    path = Path(path)
    info = _sndfile_info(path)
    if isinstance(info, Exception):
        return _av_format(path, info)
    return int(info.samplerate), int(info.channels)


def libsndfile_reads(path: Path) -> bool:
    """Whether libsndfile can read ``path`` (else PyAV decodes it)."""
    return container_format(path) is not None


def _whole_reader(path: Path) -> str | None:
    """How a file that cannot be read in chunks is decoded: "sndfile" (libsndfile, in order: a codec it
    cannot seek in, GSM 6.10, G.721, NMS ADPCM, telephone recordings), "av" (PyAV: a format only it
    reads, or a header that gives no length: a streamed FLAC, a WAV never closed), None: in chunks."""
    import soundfile as sf

    try:
        with sf.SoundFile(str(path)) as f:
            if f.frames >= UNKNOWN_FRAMES or (f.frames == 0 and _unclosed_wav(path)):
                return "av"
            return None if f.seekable() else "sndfile"
    except Exception:
        return "av"


def _unclosed_wav(path: Path) -> bool:
    """A WAV whose RIFF size was never filled in (0): a recorder stopped before it closed the file.
    (A WAV closed with no audio in it has its sizes, and stays empty.)"""
    with open(path, "rb") as f:
        head = f.read(12)
    return len(head) == 12 and head[:4] == b"RIFF" and head[8:12] == b"WAVE" and head[4:8] == bytes(4)


def needs_decoding(path: Path) -> bool:
    """Whether ``path`` is decoded whole into a work file (``decode_to``) before it is read in chunks."""
    return _whole_reader(path) is not None


def _sndfile_blocks(path: Path, stop: int | None = None, block: int = 1 << 16):
    """float32 blocks (samples, channels) of a file libsndfile reads, in order and without seeking,
    up to ``stop`` samples."""
    import soundfile as sf

    done = 0
    try:
        with sf.SoundFile(str(path)) as f:
            while stop is None or done < stop:
                data = f.read(block if stop is None else min(block, stop - done), dtype="float32", always_2d=True)
                if not data.shape[0]:
                    return
                done += data.shape[0]
                yield data
    except RuntimeError as exc:  # libsndfile's errors
        raise AudioError(f"{path}: truncated or corrupt ({short_error(exc)})") from None


def _whole_blocks(path: Path, stop: int | None = None, problems: list[str] | None = None):
    """Decoded blocks of a file ``needs_decoding`` names; a header that gave no length is noted in
    ``problems``."""
    if _whole_reader(path) == "sndfile":
        yield from _sndfile_blocks(path, stop)
        return
    done = 0
    for data in _av_blocks(path, stop, problems):
        done += data.shape[0]
        yield data
    if problems is not None and done and container_format(path) is not None and _unclosed_wav(path):
        problems.append(f"{path}: its header gives no length (a recording that was not closed properly)")


def container_format(path: Path) -> str | None:
    """libsndfile's name for the file's format ('WAV', 'FLAC'...), None for one PyAV decodes."""
    import soundfile as sf

    try:
        return str(sf.info(str(path)).format)
    except Exception:
        return None


def _av_open(path: Path, sf_exc: BaseException | None = None):
    """(container, first audio stream) of a file libsndfile could not read, or AudioError. The
    reason given is libsndfile's for its own formats' extensions (a broken .wav), else FFmpeg's."""
    ours = Path(path).suffix.lower() not in SNDFILE_EXTENSIONS or sf_exc is None
    try:
        import av
    except ImportError:
        why = "PyAV is not installed: pip install av" if ours else short_error(sf_exc)
        raise AudioError(f"{path}: cannot read audio ({why})") from None
    with _ffmpeg_log() as logs:
        try:
            container = av.open(str(path), metadata_errors="ignore")
        except Exception as exc:
            why = _av_reason(exc, logs) if ours else short_error(sf_exc)
            raise AudioError(f"{path}: cannot read audio ({why})") from None
    if not container.streams.audio:
        container.close()
        why = "no sound track in it" if ours else short_error(sf_exc)
        raise AudioError(f"{path}: cannot read audio ({why})")
    return container, container.streams.audio[0]


class _ffmpeg_log:
    """Collect FFmpeg's error lines (this thread's) instead of printing them: its last one is often
    the real reason ("moov atom not found": a phone recording that was never finished).

    FFmpeg's log level is process-wide: the first of overlapping uses (serve's threads) raises it,
    the last puts back what was there before. PyAV skips a line equal to the one before, so a
    second unfinished recording would lose its reason: skipping is off meanwhile."""

    _lock = threading.Lock()
    _users = 0
    _saved: tuple[int | None, bool] = (None, True)

    def __enter__(self) -> list:
        import av.logging

        with _ffmpeg_log._lock:
            if _ffmpeg_log._users == 0:
                _ffmpeg_log._saved = (av.logging.get_level(), av.logging.get_skip_repeated())
                av.logging.set_level(av.logging.ERROR)
                av.logging.set_skip_repeated(False)
            _ffmpeg_log._users += 1
        self.capture = av.logging.Capture(local=True)
        return self.capture.__enter__()

    def __exit__(self, *exc) -> None:
        import av.logging

        self.capture.__exit__(*exc)
        with _ffmpeg_log._lock:
            _ffmpeg_log._users -= 1
            if _ffmpeg_log._users == 0:
                av.logging.set_level(_ffmpeg_log._saved[0])
                av.logging.set_skip_repeated(_ffmpeg_log._saved[1])


def _av_reason(exc: BaseException, logs: list | None = None) -> str:
    """FFmpeg's last logged error, else the exception's reason, without error numbers or paths."""
    for _, _, message in reversed(logs or []):
        if message.strip():
            return message.strip()
    text = str(getattr(exc, "strerror", None) or exc).strip()
    return text.splitlines()[-1] if text else type(exc).__name__


_MOV = "mov,mp4,m4a,3gp,3g2,mj2"  # FFmpeg's demuxer for mp4/m4a/mov: its duration honours edit lists


def _exact_length(container, stream) -> int | None:
    """Samples an mp4/m4a/mov track says it holds (its encoder delay and padding excluded), else None."""
    if container.format.name == _MOV and stream.duration and stream.time_base:
        return int(round(float(stream.duration * stream.time_base) * stream.rate))
    return None


def _rate_channels(path: Path, stream) -> tuple[int, int]:
    rate, channels = int(stream.rate or 0), int(stream.channels or 0)
    if rate <= 0 or channels <= 0:
        raise AudioError(f"{path}: cannot read audio (no sample rate or channel count in its sound track)")
    return rate, channels


def _av_format(path: Path, sf_exc: BaseException | None = None) -> tuple[int, int]:
    """(sample_rate, channels) of a file PyAV reads, from its header alone."""
    container, stream = _av_open(path, sf_exc)
    with container:
        return _rate_channels(path, stream)


def _av_info(path: Path, sf_exc: BaseException) -> tuple[int, int, int]:
    container, stream = _av_open(path, sf_exc)
    with container:
        rate, channels = _rate_channels(path, stream)
        n = _exact_length(container, stream)
        if n is None:  # WebM from a browser and raw AAC carry no (or a guessed) duration: add up packets
            with _ffmpeg_log():
                try:
                    units = sum(packet.duration or 0 for packet in container.demux(stream))
                except Exception:
                    units = 0
            n = int(round(float(units * stream.time_base) * rate)) if stream.time_base else 0
    return n, rate, channels


def _av_blocks(path: Path, stop: int | None = None, problems: list[str] | None = None):
    """Decoded float32 blocks (samples, channels) of the first sound track, up to ``stop`` samples
    (and no further than an mp4/m4a/mov track says it holds: AAC pads its last frame).

    Damaged packets are skipped and gaps in the stream filled with silence, so what follows keeps
    its place; a file cut short gives what it holds. Either is appended to ``problems``.
    """
    container, stream = _av_open(path)
    end = _exact_length(container, stream)
    stop = end if stop is None else stop if end is None else min(stop, end)
    state = {"damaged": 0, "filled": 0, "cut": None, "short": None, "logged": None}
    done = 0
    try:
        with container:
            for block in _decoded(container, stream, state):
                if stop is not None and done + block.shape[0] >= stop:
                    yield block[: stop - done]
                    return
                done += block.shape[0]
                yield block
        if end is not None and done < end and (state["damaged"] or state["cut"]):
            state["short"] = f"holds {done / stream.rate:.1f} s of the {end / stream.rate:.1f} s its header promises"
    finally:
        what = []
        if state["damaged"]:
            what.append(f"{state['damaged']} damaged packet{'s' if state['damaged'] != 1 else ''} skipped")
        if state["filled"]:
            what.append(f"{state['filled'] / stream.rate:.2f} s of gaps filled with silence")
        if state["cut"]:
            what.append(f"unreadable after {done / stream.rate:.1f} s ({state['cut']})")
        if state["short"]:
            what.append(state["short"])
        if state["logged"]:
            what.append(f"FFmpeg reported errors while decoding ({state['logged']})")
        if problems is not None and what:
            problems.append(f"{path}: damaged: {'; '.join(what)}")


def _decoded(container, stream, state: dict):
    import av

    rate, channels, layout = int(stream.rate), int(stream.channels), stream.layout
    done, origin, frame_length, after_damage = 0, None, 0, False
    resampler, setup = None, None
    with _ffmpeg_log() as logs:
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except (av.error.FFmpegError, ValueError) as exc:
                state["cut"] = _av_reason(exc, logs)
                break
            try:
                frames = packet.decode()
            except (av.error.FFmpegError, ValueError):
                state["damaged"] += 1
                after_damage = True
                continue
            for frame in frames:
                start = (round(float(frame.pts * frame.time_base) * rate)
                         if frame.pts is not None and frame.time_base else None)
                if origin is None:
                    origin = start
                elif start is not None:
                    # Where packets were lost (skipped here, or dropped by the demuxer), silence keeps the
                    # timing. Without a decoding error, a gap under two frames is the encoder's delay.
                    gap = start - origin - done
                    if gap > MAX_GAP_SECONDS * rate:  # a broken or crafted timestamp, not a pause
                        state["cut"] = f"its timestamps jump {gap / rate:.0f} s ahead"
                        break
                    if gap > (rate // 1000 if state["damaged"] else 2 * frame_length):
                        state["filled"] += gap
                        done += gap
                        yield from _silence(gap, channels)  # in blocks: a reader may stop before the end
                frame_length = max(frame_length, frame.samples)
                if (frame.format.name, frame.layout.name, frame.sample_rate) != setup:
                    # A stream that changes channels or rate midway: every part is converted to the first's.
                    for block in _flush(resampler, channels):
                        done += block.shape[0]
                        yield block
                    resampler = av.AudioResampler(format="flt", layout=layout, rate=rate)
                    setup = (frame.format.name, frame.layout.name, frame.sample_rate)
                for out in resampler.resample(frame):
                    block = out.to_ndarray().reshape(-1, channels)
                    if after_damage:  # decoded from a missing predecessor's overlap: noise, up to 2x full scale
                        block = np.zeros_like(block)
                    done += block.shape[0]
                    yield block
                after_damage = False
            if state["cut"]:
                break
        for block in _flush(resampler, channels):
            done += block.shape[0]
            yield block
        if logs and not (state["damaged"] or state["cut"]):  # a decoder that conceals errors says so only here
            state["logged"] = logs[-1][2].strip()


def _silence(n: int, channels: int, block: int = 1 << 16):
    """``n`` samples of silence in blocks of at most ``block``, so that memory stays bounded."""
    for at in range(0, n, block):
        yield np.zeros((min(block, n - at), channels), np.float32)


def _flush(resampler, channels: int) -> list[np.ndarray]:
    return [] if resampler is None else [out.to_ndarray().reshape(-1, channels) for out in resampler.resample(None)]


def decode_to(path: Path, dest: Path, max_samples: int | None = None,
              problems: list[str] | None = None,
              progress: Callable[[float], None] | None = None) -> tuple[int, int, int]:
    """Decode a file ``needs_decoding`` names into a float W64 file ``dest`` (the caller removes it), block by
    block so memory stays bounded; returns the exact (n_samples, sample_rate, channels). With
    ``max_samples``, it stops once more than that are decoded (n_samples then exceeds it): some
    containers (a browser's WebM) do not say how long they are. Damage is noted in ``problems``;
    ``progress(seconds decoded)`` is called after each block."""
    import soundfile as sf

    _check_path(path)
    rate, channels = audio_format(path)  # the header only: audio_info would read every packet to count them
    n = 0
    with sf.SoundFile(str(dest), "w", rate, channels, subtype="FLOAT", format="W64") as out:
        for block in _whole_blocks(path, None if max_samples is None else max_samples + 1, problems):
            out.write(block)
            n += block.shape[0]
            if progress is not None:
                progress(n / rate)
    return n, rate, channels


def decoding_problems(path: Path) -> list[str]:
    """What decoding a file PyAV reads finds wrong (damaged packets, gaps, a cut), by decoding it
    once; [] for a sound one and for every file libsndfile reads in chunks."""
    if not needs_decoding(path):
        return []
    problems: list[str] = []
    for _ in _whole_blocks(path, problems=problems):
        pass
    return problems


# The tags a podcast or an archive names a recording by, as libsndfile names them; PyAV (FFmpeg)
# names the track number "track". Longer values are left out: FLAC, Ogg Vorbis and m4a hold show
# notes of 32 kB, but libsndfile writes a WAV with a 64-kB value, an AIFF with an 8-kB one or an Opus
# file with a 51-kB one that it cannot read back, and a WAV with a 4-kB one loses its other tags.
TAG_FIELDS = ("title", "artist", "album", "date", "comment", "genre", "tracknumber", "copyright", "license")
MAX_TAG_BYTES = 32000
MAX_SMALL_TAG_BYTES = 1000  # libsndfile's other formats (WAV, AIFF, CAF, Opus, MP3)


def read_tags(path: Path) -> dict[str, str]:
    """The recording's text tags (ID3, Vorbis comments, RIFF INFO, iTunes atoms...) by TAG_FIELDS
    name, so that its denoised copy keeps its title and artist; {} where there are none or the file
    cannot be read (its reading fails later, with the reason)."""
    import soundfile as sf

    found: dict[str, str] | None = None
    try:
        with sf.SoundFile(str(path)) as f:
            found = _sndfile_strings(f)
    except Exception:  # a file PyAV decodes
        pass
    suffix = Path(path).suffix.lower()
    if found is None or suffix in (".mp3", ".wav", ".aif", ".aiff", ".aifc"):
        try:
            if suffix == ".mp3" or found is None:  # FFmpeg also reads the ID3v2 frames libsndfile
                found = {**(found or {}), **_av_tags(path)}  # misses (an FFmpeg-written comment)
            else:  # a WAV's or AIFF's ID3 chunk, which libsndfile does not read
                found = {**_av_tags(path), **found}
        except Exception:
            pass
    values = {k: str(v).strip() for k, v in (found or {}).items() if k in TAG_FIELDS}
    return {k: v for k, v in values.items() if v and len(v.encode()) <= MAX_TAG_BYTES}


def _sndfile_strings(f) -> dict[str, str]:
    """An open file's libsndfile strings, decoded as UTF-8 or else as Windows-1252: a WAV's RIFF INFO
    and an AIFF's text are often Latin-1 ("Café"), which soundfile would give as "Caf\ufffd"."""
    import soundfile as sf

    try:
        get, string, kinds = sf._snd.sf_get_string, sf._ffi.string, sf._str_types
    except AttributeError:  # soundfile's internals changed: its own decoding
        return f.copy_metadata()
    found = {}
    for name, kind in kinds.items():
        data = get(f._file, kind)
        if data:
            found[name] = _decode_text(string(data))
    return found


def _decode_text(raw: bytes) -> str:
    """Text in UTF-8, or else in the Windows-1252 (Latin-1) that older software wrote."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def _av_tags(path: Path) -> dict[str, str]:
    """The container's tags as PyAV reads them, by TAG_FIELDS name. A stream's tags count only in
    Ogg, where they are the recording's: in Matroska or mp4 a track's title names the track
    ("Stereo", "Commentary"), not the recording."""
    container, stream = _av_open(path)
    with container:
        tags = dict(container.metadata)
        if container.format.name == "ogg":
            tags = {**stream.metadata, **tags}
    tags = {k.lower(): v for k, v in tags.items()}
    if "track" in tags:
        tags["tracknumber"] = tags.pop("track")
    return tags


# A broadcast WAV's chunks that stay true of its denoised copy (same rate and length): the
# broadcast extension (description, originator, time reference), iXML and axml, cue points and
# their labels. iXML and axml describe the channels, so they are not kept when --mono changes them.
BROADCAST_CHUNKS = (b"bext", b"cue ", b"LIST:adtl", b"iXML", b"axml")
CHANNEL_CHUNKS = (b"iXML", b"axml")
MAX_KEPT_CHUNK = 1 << 20
MAX_CHUNKS = 4096  # more is no broadcast WAV but a crafted one (50 MB of 8-byte chunks)


def _riff_chunks(f) -> list[tuple[bytes, int, int]]:
    """(id, offset of its data, size) of each whole chunk of an open RIFF WAVE file (a last one cut
    short is left out); [] for anything else (RF64, W64, a damaged header). A LIST's id carries its
    type: b"LIST:adtl"."""
    f.seek(0, os.SEEK_END)
    end = f.tell()
    f.seek(0)
    head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:] != b"WAVE":
        return []
    chunks, at = [], 12
    while at + 8 <= end and len(chunks) < MAX_CHUNKS:
        f.seek(at)
        cid, size = f.read(4), int.from_bytes(f.read(4), "little")
        if cid == b"LIST":
            cid += b":" + f.read(4)
        if at + 8 + size > end:
            break
        chunks.append((cid, at + 8, size))
        at += 8 + size + (size & 1)
    return chunks


def copy_broadcast_chunks(src: Path, dest: Path, same_channels: bool = True) -> bool:
    """Put ``src``'s broadcast chunks (BROADCAST_CHUNKS) into the WAV ``dest``, before its audio as
    broadcast tools expect; True if any were. Both must be plain RIFF WAVE files."""
    import shutil

    import soundfile as sf

    wanted = [c for c in BROADCAST_CHUNKS if same_channels or c not in CHANNEL_CHUNKS]
    with open(src, "rb") as f:
        kept = []
        for cid, at, size in _riff_chunks(f):
            if cid in wanted and size <= MAX_KEPT_CHUNK:
                f.seek(at - 8)
                chunk = f.read(8 + size)
                kept.append(chunk + b"\0" * (len(chunk) & 1))  # the pad byte, which some writers leave out
    if not kept:
        return False
    with open(dest, "rb") as f:
        chunks = _riff_chunks(f)
    extra = sum(len(k) for k in kept)
    if not chunks or chunks[-1][1] + chunks[-1][2] + extra >= 1 << 32:
        return False  # not RIFF, or the copy would pass RIFF's 4 GB
    tmp = dest.with_name(dest.name + ".bwf")
    try:
        with open(dest, "rb") as f, open(tmp, "wb") as out:
            out.write(b"RIFF\0\0\0\0WAVE")
            for cid, at, size in chunks:
                if cid in wanted:
                    continue  # libsndfile's own (it writes none of these today)
                if cid == b"data":
                    out.writelines(kept)
                f.seek(at - 8)
                shutil.copyfileobj(_limited(f, 8 + size + (size & 1)), out, 1 << 20)
            length = out.tell()
            out.seek(4)
            out.write((length - 8).to_bytes(4, "little"))
        try:
            sf.info(str(tmp))
        except RuntimeError:  # a chunk libsndfile cannot read (one that made it refuse the input): none kept
            return False
        shutil.copymode(dest, tmp)
        os.replace(tmp, dest)
    finally:
        remove_quietly(tmp)
    return True


class _limited:
    """A file read no further than ``n`` bytes from where it stands (for shutil.copyfileobj)."""

    def __init__(self, f, n: int):
        self.f, self.left = f, n

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        data = self.f.read(size)
        self.left -= len(data)
        return data


def _av_subtype(path: Path) -> str | None:
    """The libsndfile sample format matching a lossless PyAV-read track (24-bit ALAC -> PCM_24);
    None for a lossy codec (AAC, Opus...) or an unreadable file."""
    try:
        import av

        with av.open(str(path), metadata_errors="ignore") as container:
            context = container.streams.audio[0].codec_context
            codec, sample = context.name, context.format.name.rstrip("p")
    except Exception:
        return None
    if codec.startswith("pcm_"):
        bits = {"s16": "PCM_16", "s24": "PCM_24", "s32": "PCM_32", "f32": "FLOAT", "f64": "DOUBLE", "u8": "PCM_U8"}
        return next((v for k, v in bits.items() if codec[4:].startswith(k)), None)
    if codec in ("alac", "flac", "wavpack", "tta", "ape"):
        return {"s16": "PCM_16", "s32": "PCM_24", "u8": "PCM_U8"}.get(sample)  # 32-bit containers hold 24-bit audio
    return None


# Chunk sizes a program that streamed a WAV (a pipe) writes for "not known": FFmpeg's 0xFFFFFFFF, SoX's
# 0x7FFFF000.
UNKNOWN_SIZES = (0x7FFFF000, 0xFFFFFFFF)
# libsndfile's frame count for a file that does not say its length (a FLAC written through a pipe).
UNKNOWN_FRAMES = 2**62
_PROMISED = re.compile(r"^\s*(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


def truncation(path: Path) -> str | None:
    """A WAV or AIFF whose header promises more audio than the file holds: what is missing, else None.

    libsndfile reads such a file up to where it ends, without an error; a recording cut short (a
    crash, a full card) often looks like this.
    """
    import soundfile as sf

    try:
        info = sf.info(str(path))
        found = _PROMISED.search(info.extra_info)
    except Exception:
        return None
    if (not found or int(found.group(1)) <= int(found.group(2)) or int(found.group(2)) == 0
            or int(found.group(1)) in UNKNOWN_SIZES):  # a streaming writer's "size not known"
        return None
    held = info.frames / info.samplerate
    promised = held * int(found.group(1)) / int(found.group(2))
    return f"{path}: truncated: its header promises {promised:.1f} s, the file holds {held:.1f} s"


def read_audio(path: Path, start: int = 0, stop: int | None = None) -> tuple[np.ndarray, int]:
    """Read audio as float32, shape (n_samples, channels), values in [-1, 1], and its rate in Hz."""
    import soundfile as sf

    path = Path(path)
    _check_path(path)
    if not needs_decoding(path):
        try:
            data, rate = sf.read(str(path), start=start, stop=stop, dtype="float32", always_2d=True)
        except Exception as exc:
            raise AudioError(f"{path}: cannot read audio ({short_error(exc)})") from None
        return data, int(rate)
    rate, channels = audio_format(path)
    blocks = list(_whole_blocks(path, stop))
    data = np.concatenate(blocks) if blocks else np.zeros((0, channels), np.float32)
    return data[start:stop], int(rate)


def open_audio(path: Path) -> "soundfile.SoundFile":
    """An open ``soundfile.SoundFile`` for reading (a context manager); AudioError names the file."""
    import soundfile as sf

    path = Path(path)
    _check_path(path)
    try:
        return sf.SoundFile(str(path))
    except Exception as exc:
        raise AudioError(f"{path}: cannot read audio ({short_error(exc)})") from None


def format_for(path: Path) -> str:
    """The soundfile format named by ``path``'s extension ('M4A', 'MP4', 'MOV', 'MKV', 'WEBM':
    written by PyAV), or AudioError if none can be written."""
    import soundfile as sf

    if Path(path).suffix.lower() in AV_OUTPUTS:
        return AV_OUTPUTS[Path(path).suffix.lower()][0]
    ext = Path(path).suffix.lower().lstrip(".")
    fmt = {"oga": "OGG", "opus": "OGG", "aif": "AIFF", "aifc": "AIFF", "mp3": "MP3"}.get(ext, ext.upper())
    if fmt not in sf.available_formats():
        what = (f"cannot write the '{Path(path).suffix}' format" if ext else
                "no extension to choose the format by (to write into a folder: --out-dir FOLDER)")
        raise AudioError(f"{path}: {what} (use one of {', '.join(WRITABLE_EXTENSIONS)})")
    return fmt


OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
# The most channels libsndfile writes per format (measured: it refuses more, and Ogg Vorbis over 255 crashes it).
MAX_CHANNELS = {"FLAC (.flac)": 8, "MP3 (.mp3)": 2, "Opus (.opus)": 255, "Ogg Vorbis (.ogg)": 255}
# Formats whose decoder can overshoot the samples it was given: scaled to leave this headroom when
# denoising pushes a file past full scale (-1 dBFS, the usual ceiling for lossy delivery).
LOSSY_PEAK = 10 ** (-1 / 20)


def is_lossy_output(path: Path) -> bool:
    """Whether ``path``'s format stores audio lossily (MP3, Ogg Vorbis, Opus, AAC)."""
    return Path(path).suffix.lower() in (".mp3", ".ogg", ".oga", ".opus") + tuple(AV_OUTPUTS)


def check_writable(path: Path, rate: int, channels: int) -> None:
    """AudioError if ``path``'s format cannot hold this rate or channel count, before minutes of work."""
    fmt, suffix = format_for(path), Path(path).suffix.lower()
    for name, ok, rates in (("Opus (.opus)", suffix == ".opus", OPUS_RATES), ("MP3 (.mp3)", fmt == "MP3", MP3_RATES)):
        if ok and rate not in rates:
            raise AudioError(f"{path}: {name} cannot hold {rate} Hz audio (it holds "
                             f"{', '.join(str(r) for r in rates)} Hz); write .m4a, .flac or .wav")
    name = {"FLAC": "FLAC (.flac)", "MP3": "MP3 (.mp3)"}.get(fmt) or (
        "Opus (.opus)" if suffix == ".opus" else "Ogg Vorbis (.ogg)" if fmt == "OGG" else None)
    if name in MAX_CHANNELS and channels > MAX_CHANNELS[name]:
        raise AudioError(f"{path}: {name} holds at most {MAX_CHANNELS[name]} channels, not {channels}; "
                         "write .wav (or --mono for one channel)")
    if suffix not in AV_OUTPUTS:
        return
    codec, rates = ("Opus", OPUS_RATES) if suffix == ".webm" else ("AAC", AAC_RATES)
    if rate not in rates:
        instead = ".mkv (or .m4a for the sound alone)" if suffix == ".webm" else ".wav or .flac"
        raise AudioError(f"{path}: {codec} ({suffix}) cannot hold {rate} Hz audio (it holds "
                         f"{', '.join(str(r) for r in rates)} Hz); write {instead}")
    if channels not in AAC_LAYOUTS:
        raise AudioError(f"{path}: {suffix} output is mono or stereo, not {channels} channels; write .wav or "
                         ".flac (or --mono)")


def encode_av(src: Path, dest: Path, scale: float = 1.0, picture: Path | None = None,
              progress: Callable[[float], None] | None = None, tags: dict[str, str] | None = None) -> None:
    """AAC in .m4a (as phones record it), or a video, from a float W64/WAV file, block by block. In
    .m4a, .mp4 and .mov the encoder's delay is recorded, so a decoder gives back exactly the input's
    length. For a video, every video stream of ``picture`` (the input) is copied unchanged, and the
    sound keeps its place against the picture (``_timeline``)."""
    import fractions
    import heapq

    import av
    import soundfile as sf

    suffix = Path(dest).suffix.lower()
    _, muxer, codec = AV_OUTPUTS[suffix]
    with sf.SoundFile(str(src)) as audio, contextlib.ExitStack() as stack:
        rate, channels = audio.samplerate, audio.channels
        check_writable(dest, rate, channels)
        layout = AAC_LAYOUTS[channels]
        source, videos, lead, shift = None, [], 0, {}
        if picture is not None and suffix in VIDEO_EXTENSIONS:
            source = stack.enter_context(_av_open(picture)[0])
            videos = _pictures(source)
            if videos:
                lead, shift = _timeline(picture, source, videos, rate)
        try:
            # mp4/mov: the movie's time scale at the audio's rate, so the length it records is exact to the
            # sample; a video's index goes first, so that players on the web start before it has all arrived.
            options = {"movie_timescale": str(rate)} if muxer in ("ipod", "mp4", "mov") else {}
            if videos and muxer in ("mp4", "mov"):
                options["movflags"] = "+faststart"
            container = stack.enter_context(av.open(str(dest), "w", format=muxer, options=options))
            copies = {v.index: _copy_stream(container, v, muxer) for v in videos}
            stream = container.add_stream(codec, rate=rate, layout=layout)
            stream.bit_rate = 64000 * channels
            container.metadata.update({"track" if k == "tracknumber" else k: v for k, v in (tags or {}).items()})
            if source is not None:
                container.metadata.update(source.metadata)
                if source.streams.audio:  # the sound's language and title
                    stream.metadata.update({k: v for k, v in source.streams.audio[0].metadata.items()
                                            if k in ("language", "title")})

            def blocks():
                # Silence before the sound where the picture starts first: the sound track starts at 0,
                # so that the encoder's delay is recorded as in an m4a (a later first timestamp would not be).
                yield from _silence(lead, channels)
                done = 0
                for block in audio.blocks(blocksize=1 << 16, dtype="float32", always_2d=True):
                    yield block
                    done += block.shape[0]
                    if progress is not None:
                        progress(done / rate)

            def sound():
                done = 0
                for block in blocks():
                    frame = av.AudioFrame.from_ndarray((block * scale).reshape(1, -1), format="flt", layout=layout)
                    frame.sample_rate, frame.pts, frame.time_base = rate, done, fractions.Fraction(1, rate)
                    done += block.shape[0]
                    yield from stream.encode(frame)
                yield from stream.encode(None)

            def picture_packets():
                for packet in source.demux(videos) if videos else ():
                    if not packet.size:  # the demuxer's last, empty packet (a first B-frame packet may lack a dts)
                        continue
                    for name in ("pts", "dts"):
                        if getattr(packet, name) is not None:
                            setattr(packet, name, getattr(packet, name) - shift[packet.stream.index])
                    packet.stream = copies[packet.stream.index]
                    yield packet

            # Interleaved by time, as players and streaming expect (the muxer would otherwise hold
            # minutes of one stream in memory waiting for the other).
            def when(packet) -> float:
                at = packet.dts if packet.dts is not None else packet.pts
                return float(at * packet.time_base) if at is not None and packet.time_base else float("-inf")

            for packet in heapq.merge(sound(), picture_packets(), key=when):
                container.mux(packet)
        except (av.error.FFmpegError, ValueError, IndexError) as exc:  # a full disk, a codec the muxer refuses
            raise RuntimeError(_av_reason(exc)) from None


def _pictures(container) -> list:
    """The video streams to copy: pictures, not an audio file's cover (an attached picture)."""
    import av

    return [v for v in container.streams.video if not v.disposition & av.stream.Disposition.attached_pic]


def _copy_stream(container, template, muxer: str):
    """A stream of ``container`` for ``template``'s packets, unchanged: its codec (by name, not by
    the decoder FFmpeg would pick: libdav1d for AV1), its fourcc in mp4/mov (an iPhone's HEVC is
    'hvc1', which Apple's players need, not FFmpeg's default 'hev1'), and its metadata (the
    camera's timecode, language)."""
    copy = container.add_stream_from_template(template, opaque=True)
    name = template.codec_context.name if template.codec_context else ""
    if muxer in ("mp4", "mov") and name == "hevc":
        copy.codec_context.codec_tag = "hvc1"  # from Matroska too: the tag Apple's players need
    elif muxer in ("mp4", "mov") and name == "h264" and template.codec_context.codec_tag in ("avc1", "avc3"):
        copy.codec_context.codec_tag = template.codec_context.codec_tag
    copy.metadata.update(template.metadata)
    return copy


def _timeline(path: Path, container, videos: list, rate: int) -> tuple[int, dict[int, int]]:
    """Where a video's streams go in the output: (samples of silence before the sound, and for each
    video stream the amount, in its time base, taken off its timestamps). The output starts where
    the earliest stream started, as FFmpeg makes it, so a picture whose timestamps begin at 1000 s
    does not get 1000 s of silence before it, and a sound that starts first keeps its lead. A sound
    that starts more than ``MAX_GAP_SECONDS`` after the picture is refused (a crafted file)."""
    starts = [float(v.start_time * v.time_base) for v in videos if v.start_time is not None and v.time_base]
    picture_at = min(starts, default=0.0)
    sound_at = _sound_start(path)
    origin = picture_at if sound_at is None else min(picture_at, sound_at)
    lead = 0 if sound_at is None else round((sound_at - origin) * rate)
    if lead > MAX_GAP_SECONDS * rate:
        raise AudioError(f"{path}: its sound starts {lead / rate:.0f} s after its picture (a damaged or crafted "
                         "file); write the sound alone as .m4a or .wav")
    return lead, {v.index: round(origin / v.time_base) if v.time_base else 0 for v in videos}


def check_picture(src: Path, dest: Path, rate: int, channels: int) -> None:
    """AudioError, before the work, if the video ``dest`` cannot hold the picture of ``src`` beside
    a sound track of this ``rate`` and ``channels`` (H.264 into .webm, whose picture is VP8, VP9 or
    AV1; VP9 into .mov). A ``src`` without a picture passes."""
    import io

    import av

    suffix = Path(dest).suffix.lower()
    if suffix not in VIDEO_EXTENSIONS or libsndfile_reads(src) or channels not in AAC_LAYOUTS:
        return  # (a channel count the sound cannot have is check_writable's to say)
    container, _ = _av_open(src)
    with container:
        videos = _pictures(container)
        if not videos:
            return
        probe = av.open(io.BytesIO(), "w", format=AV_OUTPUTS[suffix][1])
        try:
            with _ffmpeg_log():
                for video in videos:
                    _copy_stream(probe, video, AV_OUTPUTS[suffix][1])
                probe.add_stream(AV_OUTPUTS[suffix][2], rate=rate, layout=AAC_LAYOUTS[channels])
                probe.start_encoding()  # the muxer says here what it refuses
        except (av.error.FFmpegError, ValueError):
            names = ", ".join(v.codec_context.name if v.codec_context else "?" for v in videos)
            instead = "write the sound alone as .m4a" if suffix == ".mkv" else \
                "write .mkv (it holds most), or the sound alone as .m4a"
            raise AudioError(f"{dest}: {suffix} cannot hold this video's picture ({names}); {instead}") from None
        finally:
            with contextlib.suppress(Exception):
                probe.close()
        _timeline(src, container, videos, rate)  # a sound that starts too late: refused now, not after the work


def _sound_start(path: Path) -> float | None:
    """Where the first sound track's first decoded sample lies on the file's timeline (s), or None
    if it cannot be told: a camera's sound may start after its picture, or before it."""
    import av

    container, stream = _av_open(path)
    with container, _ffmpeg_log():
        try:
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except (av.error.FFmpegError, ValueError):
                    continue  # a damaged packet: the decoding starts at the first good one, as here
                for frame in frames:
                    if frame.pts is not None and frame.time_base:
                        return float(frame.pts * frame.time_base)
        except (av.error.FFmpegError, ValueError):
            pass
    return None


def has_picture(path: Path) -> bool:
    """Whether ``path`` is a video (a picture stream, not an audio file's cover art)."""
    if libsndfile_reads(path):
        return False
    try:
        container, _ = _av_open(path)
    except AudioError:
        return False
    with container:
        return bool(_pictures(container))


def is_lossless_av(path: Path) -> bool:
    """Whether a file PyAV writes back in its own format (.m4a, a video) holds lossless sound
    (ALAC, as the iPhone's lossless memos; a camera's PCM): its output should not be lossy AAC by default."""
    return Path(path).suffix.lower() in AV_OUTPUTS and _av_subtype(path) is not None


def own_format_problem(src: Path, dest: Path, mono: bool = False) -> str | None:
    """Why a batch should not write ``src``'s output in ``dest``'s format, its own, or None: that
    would make an m4a's lossless sound lossy, or the format cannot hold its rate, channels (one with
    ``mono``) or picture (a 5.1 video, VP9 in .mov)."""
    suffix = Path(dest).suffix.lower()
    if suffix not in AV_OUTPUTS:
        return None
    try:
        rate, channels = audio_format(src)
    except AudioError:
        return None  # unreadable: its own error comes when it is denoised
    channels = 1 if mono else channels
    try:
        check_writable(dest, rate, channels)
    except AudioError:
        rates = OPUS_RATES if suffix == ".webm" else AAC_RATES
        return (f"{suffix} cannot hold its {rate} Hz sound" if rate not in rates
                else f"{suffix} cannot hold its {channels}-channel sound")
    try:
        check_picture(src, dest, rate, channels)
    except AudioError:
        return f"{suffix} cannot hold its picture"
    return "its sound is lossless" if suffix == ".m4a" and is_lossless_av(src) else None


def check_audio(audio: np.ndarray, name: str) -> None:
    """Raise AudioError if ``audio`` is empty, holds NaN/infinite samples or values no recording has."""
    if audio.size == 0:
        raise AudioError(f"{name}: no samples")
    if not np.all(np.isfinite(audio)):
        raise AudioError(f"{name}: contains NaN or infinite samples")
    peak = float(np.max(np.abs(audio)))
    if peak > MAX_SAMPLE:
        raise AudioError(f"{name}: sample values up to {peak:.3g}, over {MAX_SAMPLE:.0e} times full scale (corrupt file?)")


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Average the channels of (n_samples, channels) audio into shape (n_samples,)."""
    return audio.mean(axis=1) if audio.ndim == 2 else audio


def resample(audio: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Resample along the first axis (high-quality soxr); returns float32."""
    if orig_rate == target_rate:
        return audio.astype(np.float32, copy=False)
    import soxr

    return soxr.resample(audio, orig_rate, target_rate, quality="HQ").astype(np.float32)


def load_mono(path: Path, rate: int) -> np.ndarray:
    """Read a file, downmix to mono and resample to ``rate``: float32, shape (n_samples,)."""
    data, orig = read_audio(path)
    return resample(to_mono(data), orig, rate)


def float_writer(path: Path, rate: int, channels: int) -> "soundfile.SoundFile":
    """A float32 W64 file open for writing (no size limit): where long outputs are built up."""
    import soundfile as sf

    return sf.SoundFile(str(path), "w", rate, channels, subtype="FLOAT", format="W64")


def convert_float_file(src: Path, dest: Path, subtype: str | None, scale: float = 1.0,
                       picture: Path | None = None, progress: Callable[[float], None] | None = None,
                       tags: dict[str, str] | None = None) -> None:
    """Write the float file ``src``, times ``scale``, into ``dest``'s format (by its extension;
    ``subtype`` for libsndfile's formats), block by block so memory stays bounded. A video output
    copies the picture of ``picture`` (the input), if it has one. ``tags`` (read_tags) are written
    where the format holds them. ``progress(seconds written)`` is called after each block (encoding
    an hour as MP3 or AAC takes a minute)."""
    import soundfile as sf

    if Path(dest).suffix.lower() in AV_OUTPUTS:
        encode_av(src, dest, scale, picture, progress, tags)
        return
    fmt = format_for(dest)
    with sf.SoundFile(str(src)) as source:
        with sf.SoundFile(str(dest), "w", source.samplerate, source.channels, subtype=subtype, format=fmt) as out:
            roomy = fmt == "FLAC" or (fmt == "OGG" and out.subtype == "VORBIS")
            for name, value in (tags or {}).items():  # before the audio: FLAC and Ogg write them first
                if not roomy and len(value.encode()) > MAX_SMALL_TAG_BYTES:
                    continue
                if fmt == "MP3" and not value.isascii():
                    continue  # libsndfile marks UTF-8 as Latin-1 in ID3: "Épisode" would read back "Ã‰pisode"
                try:
                    setattr(out, name, value)
                except RuntimeError:  # refused by the format (libsndfile ignores most it cannot hold)
                    pass
            done = 0
            for block in source.blocks(blocksize=1 << 18, dtype="float32", always_2d=True):
                out.write(to_integer_pcm(block * scale if scale != 1.0 else block, out.subtype))
                done += block.shape[0]
                if progress is not None:
                    progress(done / source.samplerate)
    if tags:
        try:
            sf.info(str(dest))
        except RuntimeError:  # tags libsndfile wrote but cannot read back: written again without them
            convert_float_file(src, dest, subtype, scale, picture, progress)


def write_audio(path: Path, audio: np.ndarray, rate: int, subtype: str | None = None) -> None:
    """Write audio atomically (temporary file in the same folder, then rename).

    audio: float, shape (n_samples,) or (n_samples, channels), nominally in [-1, 1].
    The format follows the file extension.
    """
    import soundfile as sf

    path = Path(path)
    if not path.parent.is_dir():
        raise AudioError(f"{path}: output folder {path.parent} does not exist")
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fmt = format_for(path)
    try:
        subtype = subtype or ("OPUS" if path.suffix.lower() == ".opus" else sf.default_subtype(fmt))
        sf.write(str(tmp), to_integer_pcm(audio, subtype), rate, subtype=subtype, format=fmt)
        os.replace(tmp, path)
    except Exception as exc:
        remove_quietly(tmp)
        raise AudioError(f"{path}: cannot write audio ({short_error(exc)})") from None


def remove_quietly(path: Path) -> None:
    """Remove a temporary file if it is there; on a read-only disk, leave it (the caller's error says why)."""
    try:
        Path(path).unlink(missing_ok=True)
    except OSError:
        pass


# Integer sample formats: (bits kept, container dtype bits). libsndfile truncates floats toward minus
# infinity when it converts them (a -0.5 LSB bias, and an input given back off by one), so they are
# rounded here and handed over as integers it stores exactly (its top bits).
_PCM_BITS = {"PCM_S8": (8, 16), "PCM_U8": (8, 16), "PCM_16": (16, 16), "PCM_24": (24, 32), "PCM_32": (32, 32)}


def to_integer_pcm(audio: np.ndarray, subtype: str | None) -> np.ndarray:
    """Float audio rounded to the nearest step of an integer ``subtype`` (others: unchanged)."""
    if subtype not in _PCM_BITS or not np.issubdtype(np.asarray(audio).dtype, np.floating):
        return audio
    bits, container = _PCM_BITS[subtype]
    top = 2 ** (bits - 1)
    steps = np.clip(np.round(np.asarray(audio, dtype=np.float64) * top), -top, top - 1)
    return (steps.astype(np.int64) << (container - bits)).astype(np.int16 if container == 16 else np.int32)


def output_subtype(in_path: Path, out_path: Path) -> str | None:
    """The input's sample format (e.g. PCM_16) when the output's format can hold it (float or 32-bit
    input: 24-bit where only shorter integers fit), else None (the format's default). A `.opus`
    output is Opus, whatever the input."""
    import soundfile as sf

    try:
        fmt = format_for(out_path)
    except AudioError:
        return None
    if Path(out_path).suffix.lower() in AV_OUTPUTS:
        return None  # AAC or Opus: no sample format to keep
    if Path(out_path).suffix.lower() == ".opus":
        return "OPUS"
    try:
        info = sf.info(str(in_path))
        subtype, in_format = info.subtype, info.format
    except Exception:
        subtype, in_format = _av_subtype(in_path), None
        if subtype is None:
            return None
    if (subtype in PLAIN_SUBTYPES or in_format == fmt) and sf.check_format(fmt, subtype):
        return subtype
    if subtype in ("FLOAT", "DOUBLE", "PCM_32") and sf.check_format(fmt, "PCM_24"):
        return "PCM_24"  # float or 32-bit into FLAC, say: the finest integer format it holds, not 16-bit
    return None


def rms_db(audio: np.ndarray) -> float:
    """Root-mean-square level in dB relative to full scale (-inf for silence)."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
    return 20.0 * np.log10(rms) if rms > 0 else float("-inf")


def short_error(exc: BaseException) -> str:
    """The last line of a library's message; libsndfile's misleading ones put plainly."""
    text = str(exc).strip().splitlines()
    line = text[-1] if text else type(exc).__name__
    if "File does not exist or is not a regular file" in line:  # its answer to an undecodable MP3, too
        return "not a format libsndfile can decode, or corrupt"
    return re.sub(r"^Error opening '.*': ", "", line)  # the caller names the file already
