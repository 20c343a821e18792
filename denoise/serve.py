"""``denoise serve``: a local web page and HTTP API that denoise one recording per request.

The app (FastAPI on uvicorn, the ``serve`` extra) loads its models once, up front. Each request
streams its upload into a fresh private folder (mode 0700) under the app's own temporary folder,
under a fixed name, with the size limit enforced while the bytes arrive; the folder is deleted
before the answer is sent, so no recording outlives its request. Denoising runs in a worker thread
(at most ``Limits.max_jobs`` at once, each model's predictor behind a lock because a LiteRT
interpreter is not thread-safe), so the page keeps loading while a long recording is processed.

Endpoints: ``GET /`` (the page, served from ``denoise/web``), ``GET /api/limits``,
``POST /api/denoise`` (the denoised audio), ``POST /api/analyze`` (JSON: the denoised audio and both
spectrograms as base64), ``GET /openapi.json``. Errors answer 4xx with ``{"detail": "one line"}``.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import logging
import os
import re
import shutil
import socket
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator
from urllib.parse import quote, urlsplit

import anyio
import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from python_multipart.multipart import MultipartParser, parse_options_header
from python_multipart.exceptions import FormParserError
from starlette.requests import ClientDisconnect

from . import __version__
from . import audio as audio_io
from .errors import AudioError, Cancelled, DenoiseError, ModelFileError

WEB_DIR = Path(__file__).resolve().parent / "web"
FIELD = "file"
PARAMETERS = ("strength",)  # as a query parameter or a form field
MAX_FIELD_BYTES = 100
DEFAULT_MAX_UPLOAD_MB = 50.0
DEFAULT_MAX_SECONDS = 300.0
FORM_OVERHEAD = 64 * 1024  # multipart boundaries and part headers around the file itself
# How much audio one request may hold, as sample rate x channels (with Limits.max_seconds): 96 kHz
# stereo. A few kB of compressed silence over many channels at a high rate would otherwise cost
# gigabytes of memory and disk and minutes of CPU.
MAX_RATE_CHANNELS = 96000 * 2
UPLOAD_IDLE_SECONDS = 60  # an upload that sends nothing for this long is dropped
MIN_UPLOAD_RATE = 100_000  # bytes a second on average: a slower upload is dropped once past 120 s
# Output format per input format (libsndfile's name): the same family, else WAV.
OUTPUT_FORMATS = {
    "WAV": (".wav", "audio/wav"),
    "FLAC": (".flac", "audio/flac"),
    "OGG": (".ogg", "audio/ogg"),
    "MP3": (".mp3", "audio/mpeg"),
    "AIFF": (".aiff", "audio/aiff"),
    "M4A": (".m4a", "audio/mp4"),
}
FORMATS_TEXT = "an audio file (wav, flac, ogg, opus, mp3, aiff, caf, w64, m4a, aac, webm or wma; or a video)"
# Declared upload types accepted besides audio/* and video/* (a video's sound track is denoised; the
# content decides in the end); others are refused.
OTHER_ACCEPTED_TYPES = {"", "application/octet-stream", "application/ogg"}
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
                                 b"connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


@dataclass(frozen=True)
class Limits:
    """What one request may ask for. Uploads above the limits get 413 with a message saying which."""

    max_upload_bytes: int = int(DEFAULT_MAX_UPLOAD_MB * 2**20)
    max_seconds: float = DEFAULT_MAX_SECONDS
    max_jobs: int = 2  # recordings denoised at once; further requests wait their turn
    max_waiting: int = 32  # recordings waiting their turn beyond those, and uploads arriving at once: more get 503
    max_channels: int = 8

    def validate(self) -> "Limits":
        if self.max_upload_bytes < 1:
            raise DenoiseError(f"max_upload_bytes={self.max_upload_bytes} must be at least 1")
        if not self.max_seconds > 0:
            raise DenoiseError(f"max_seconds={self.max_seconds} must be > 0")
        for name in ("max_jobs", "max_channels"):
            if getattr(self, name) < 1:
                raise DenoiseError(f"{name}={getattr(self, name)} must be at least 1")
        if self.max_waiting < 0:
            raise DenoiseError(f"max_waiting={self.max_waiting} must be at least 0")
        return self

    @property
    def max_samples(self) -> int:
        """Samples (all channels together) one recording may hold: ``max_seconds`` of 96 kHz stereo."""
        return int(self.max_seconds * MAX_RATE_CHANNELS)


class LockedModel:
    """A loaded model whose predictor runs one call at a time (shared by the request threads)."""

    def __init__(self, model: Any) -> None:
        self.settings = model.settings
        self._predict = model.predict
        self._lock = threading.Lock()

    def predict(self, x: np.ndarray) -> np.ndarray:
        with self._lock:
            return self._predict(x)


class SharedModels:
    """The models for each sample rate, loaded and warmed up once when the app is created."""

    def __init__(self, model_for_rate: Callable[[int], Any], warm_rates: tuple[int, ...] = (16000, 8000)) -> None:
        self._model_for_rate = model_for_rate
        self._lock = threading.Lock()
        self._wrapped: dict[int, LockedModel] = {}
        for rate in warm_rates:
            model = self.for_rate(rate)
            s = model.settings
            model.predict(np.zeros((1, s.n_bins, s.n_frames, 1), np.float32))  # builds the interpreter now

    def for_rate(self, rate: int) -> LockedModel:
        with self._lock:
            model = self._model_for_rate(rate)
            if id(model) not in self._wrapped:
                self._wrapped[id(model)] = LockedModel(model)
            return self._wrapped[id(model)]


@dataclass
class Upload:
    """The recording a request carried: where it was saved, and its name for messages only."""

    path: Path
    name: str
    content_type: str
    size: int
    original_name: str = ""  # as the client sent it: only for the download's name, made safe there
    fields: dict[str, str] = field(default_factory=dict)  # the form's other fields (strength)


@dataclass
class Denoised:
    """The result of one request, held in memory (its files are already deleted)."""

    audio: bytes
    media_type: str
    filename: str
    sample_rate: int
    channels: int
    seconds: float
    processing_seconds: float
    scaled_db: float
    spectrograms: dict[str, bytes] | None = None
    truncated: str | None = None  # the upload held less than its header promised, or was damaged


def display_name(filename: str | None, ascii_only: bool = True) -> str:
    """A client's file name made safe for messages and download names (never used as a path): ASCII
    letters, digits and ``._ -``, or with ``ascii_only=False`` any letter or digit (résumé.wav)."""
    base = re.split(r"[\\/]", filename or "")[-1]
    safe = re.sub(r"[^A-Za-z0-9._ -]+" if ascii_only else r"[^\w. -]+", "_", base).strip(" .")
    if len(safe) > 80:  # shortened before its extension, which names the format
        stem, dot, ext = safe.rpartition(".")
        safe = (stem[:79 - len(ext)] + dot + ext) if dot and len(ext) <= 8 else safe[:80]
    return safe or "upload"


def content_disposition(filename: str) -> str:
    """An attachment header: the ASCII name, and the name in full for browsers that read RFC 6266's ``filename*``."""
    fallback = display_name(filename)
    if fallback == filename:
        return f'attachment; filename="{filename}"'
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def header_text(text: str, limit: int = 300) -> str:
    """``text`` as a header value: printable ASCII only, at most ``limit`` characters."""
    return re.sub(r"[^ -~]+", "?", text)[:limit]


def _too_large(limits: Limits) -> HTTPException:
    mb = limits.max_upload_bytes / 2**20
    return HTTPException(413, f"upload larger than the limit of {mb:g} MB (denoise serve --max-upload-mb)")


class _TooLarge(Exception):
    pass


async def receive_upload(request: Request, dest: Path, limits: Limits) -> Upload:
    """Stream the multipart field ``file`` of ``request`` into ``dest``; the other fields' values (a
    few bytes each: ``strength``) come back in ``Upload.fields``.

    The size limit is checked against Content-Length first, then against the bytes as they arrive
    (the file's and the whole body's), so an oversized upload is never stored or read whole.
    """
    ctype, params = parse_options_header(request.headers.get("content-type"))
    if ctype != b"multipart/form-data" or not params.get(b"boundary"):
        raise HTTPException(415, f"expected a multipart/form-data upload with the recording in the field '{FIELD}'")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limits.max_upload_bytes + FORM_OVERHEAD:
        raise _too_large(limits)
    part: dict[str, Any] = {}
    found: dict[str, Any] = {}
    fields: dict[str, bytes] = {}

    def on_part_begin() -> None:
        part.clear()
        part.update(headers={}, field=b"", value=b"", out=None, name=None)

    def on_header_field(data: bytes, start: int, end: int) -> None:
        part["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        part["value"] += data[start:end]

    def on_header_end() -> None:
        part["headers"][part["field"].lower()] = part["value"]
        part["field"] = part["value"] = b""

    def on_headers_finished() -> None:
        _, disposition = parse_options_header(part["headers"].get(b"content-disposition"))
        if disposition.get(b"name") == FIELD.encode() and not found:
            found.update(name=disposition.get(b"filename", b"").decode("utf-8", "replace"),
                         content_type=part["headers"].get(b"content-type", b"").decode("latin-1").strip().lower(),
                         size=0)
            try:
                part["out"] = open(dest, "wb")
            except OSError as exc:
                raise HTTPException(507, f"the server cannot store the upload ({exc.strerror})") from None
        elif disposition.get(b"name") != FIELD.encode():
            part["name"] = disposition.get(b"name", b"").decode("utf-8", "replace")
            if b"filename" in disposition:  # a file in another field: the usual mistake, said as such
                raise HTTPException(400, f"no file: send the recording in the multipart field '{FIELD}' "
                                         f"(it came in {_short(part['name'])})")
            if part["name"] not in PARAMETERS:  # refused at once: nothing a client invents is collected
                raise HTTPException(422, f"unknown form field {_short(part['name'])} "
                                         f"(this API takes: {FIELD}, {', '.join(PARAMETERS)})")
            fields.setdefault(part["name"], b"")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if part.get("out") is not None:
            found["size"] += end - start
            if found["size"] > limits.max_upload_bytes:
                raise _TooLarge
            try:
                part["out"].write(data[start:end])
            except OSError as exc:
                raise HTTPException(507, f"the server cannot store the upload ({exc.strerror})") from None
        elif part.get("name") is not None:
            fields[part["name"]] = (fields[part["name"]] + data[start:end])[:MAX_FIELD_BYTES]

    def on_part_end() -> None:
        if part.get("out") is not None:
            part["out"].close()
            part["out"] = None

    received, started = 0, time.monotonic()
    deadline = max(120.0, limits.max_upload_bytes / MIN_UPLOAD_RATE)  # a trickle does not hold its slot for ever
    try:
        parser = MultipartParser(params[b"boundary"], {
            "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
            "on_header_end": on_header_end, "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data, "on_part_end": on_part_end,
        })
        chunks = request.stream().__aiter__()
        while True:
            with anyio.fail_after(UPLOAD_IDLE_SECONDS):  # a client that stalls does not hold its slot forever
                try:
                    chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    break
            received += len(chunk)  # the whole body too: a chunked one has no Content-Length to check
            if received > limits.max_upload_bytes + FORM_OVERHEAD:
                raise _TooLarge
            if time.monotonic() - started > deadline:
                raise HTTPException(408, f"the upload took more than {deadline:.0f} s")
            parser.write(chunk)
        parser.finalize()
    except _TooLarge:
        raise _too_large(limits) from None
    except TimeoutError:
        raise HTTPException(408, f"the upload sent nothing for {UPLOAD_IDLE_SECONDS} s") from None
    except (FormParserError, ValueError) as exc:  # ValueError: a boundary the parser refuses
        raise HTTPException(400, f"malformed multipart upload ({exc})") from None
    except ClientDisconnect:
        raise HTTPException(400, "the upload was interrupted") from None
    finally:
        on_part_end()
    if not found:
        raise HTTPException(400, f"no file: send the recording in the multipart field '{FIELD}'")
    name = display_name(found["name"])
    if found["size"] == 0:
        raise HTTPException(400, f"{name}: empty upload (0 bytes)")
    declared = found["content_type"].split(";")[0].strip()
    if not (declared.startswith(("audio/", "video/")) or declared in OTHER_ACCEPTED_TYPES):
        raise HTTPException(415, f"{name}: sent as {declared}, expected {FORMATS_TEXT}")
    return Upload(dest, name, found["content_type"], found["size"], found["name"],
                  {k: v.decode("utf-8", "replace").strip() for k, v in fields.items()})


def _short(name: str, limit: int = 40) -> str:
    """A client's name for a field, quoted and cut short for a message."""
    return repr(name if len(name) <= limit else name[:limit] + "...")


def job_strength(query: dict[str, str], fields: dict[str, str]) -> float | None:
    """The strength a request asked for, as a query parameter or a form field (None: the default);
    a query parameter the API does not know is refused rather than ignored (a misspelt
    ``strenght=0`` would otherwise denoise at full strength), as ``receive_upload`` refuses a form
    field."""
    unknown = sorted(set(query) - set(PARAMETERS))
    if unknown:
        raise HTTPException(422, f"unknown query parameter {', '.join(_short(u) for u in unknown[:3])}"
                                 f"{' and more' if len(unknown) > 3 else ''} (this API takes: {', '.join(PARAMETERS)})")
    if "strength" in query and "strength" in fields:
        raise HTTPException(422, "strength: given both as a query parameter and as a form field")
    if "strength" not in fields:
        return None
    try:
        value = float(fields["strength"])
    except ValueError:
        raise HTTPException(422, f"strength: {fields['strength']!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise HTTPException(422, f"strength: {fields['strength']} is outside 0 to 1")
    return value


STRENGTH = Query(1.0, ge=0.0, le=1.0, allow_inf_nan=False,
                 description="Share of the predicted noise to remove (0: none, 1: all); also taken as a form field.")


def denoise_upload(upload: Upload, models: SharedModels, limits: Limits, spectrograms: bool = False,
                   strength: float = 1.0, stop: Callable[[], bool] | None = None) -> Denoised:
    """Check and denoise a saved upload into its folder; return the result in memory.

    Runs in a worker thread. Problems with the recording raise HTTPException 413, 415 or 422 whose
    one-line message names the upload (server paths never appear in it). ``stop`` (the client went
    away, asked between chunks) abandons the work: 499, which nobody reads.
    """
    from .enhance import enhance_file

    if stop is not None and stop():  # gone while it waited for its turn
        raise HTTPException(499, "the client closed the request")
    name = upload.name
    suffix = Path(name).suffix.lower()  # kept, so a file's problem is put as for the same file on disk
    src = upload.path.rename(upload.path.with_suffix(suffix)) if suffix in audio_io.AUDIO_EXTENSIONS else upload.path

    def public(exc: DenoiseError) -> str:
        return str(exc).replace(str(out), f"denoised{ext}").replace(str(src), name)

    ext, media_type = ".wav", "audio/wav"
    out = src.with_name(f"denoised{ext}")
    measured = audio_io.needs_decoding(src)  # m4a, a video, GSM: measured by decoding, below
    try:
        n, rate, channels = (0, *audio_io.audio_format(src)) if measured else audio_io.audio_info(src)
        lossy_m4a = suffix == ".m4a" and not audio_io.is_lossless_av(src)  # ALAC is answered in WAV
        in_format = audio_io.container_format(src) or ("M4A" if lossy_m4a else None)
        ext, media_type = OUTPUT_FORMATS.get(in_format, (ext, media_type))
    except AudioError as exc:
        raise HTTPException(415, f"{public(exc)}; expected {FORMATS_TEXT}") from None
    if channels > limits.max_channels:
        raise HTTPException(413, f"{name}: {channels} channels; this server takes at most {limits.max_channels}")
    try:  # a rate or channel count its own format cannot write back (3-channel m4a): answered in WAV
        audio_io.check_writable(src.with_name(f"denoised{ext}"), rate, channels)
    except AudioError:
        ext, media_type = ".wav", "audio/wav"
    if measured:  # m4a, a video: its length is known once decoded (a browser's WebM does not say it)
        most = min(int(limits.max_seconds * rate), limits.max_samples // channels)
        try:
            n, rate, channels = audio_io.decode_to(src, src.with_name("measure.w64"), most)
        except AudioError as exc:
            raise HTTPException(422, public(exc)) from None
        finally:
            audio_io.remove_quietly(src.with_name("measure.w64"))
    seconds = n / rate
    if seconds > limits.max_seconds:
        raise HTTPException(413, f"{name}: {'over ' if measured else ''}{seconds:.1f} s long; the limit is "
                                 f"{limits.max_seconds:g} s (denoise serve --max-seconds)")
    if n * channels > limits.max_samples:
        raise HTTPException(413, f"{name}: {channels} channels at {rate} Hz for {'over ' if measured else ''}"
                                 f"{seconds:.1f} s is more audio than this server takes at once (as much as "
                                 f"{limits.max_seconds:g} s of 96 kHz stereo)")
    out = src.with_name(f"denoised{ext}")
    try:
        result = enhance_file(src, out, *_settings_and_predict(models, rate), strength=strength, stop=stop)
        data = out.read_bytes()
        images = _spectrograms(src, out, name) if spectrograms else None
    except Cancelled:
        raise HTTPException(499, "the client closed the request") from None
    except ModelFileError as exc:  # the server's fault, not the upload's: its path stays in the server's log
        logging.getLogger("denoise.serve").error("%s", exc)
        raise HTTPException(500, "the server's model failed to run; its log says why") from None
    except DenoiseError as exc:
        raise HTTPException(422, public(exc)) from None
    full_name = display_name(upload.original_name, ascii_only=False)
    stem = (full_name.rsplit(".", 1)[0] if "." in full_name else full_name)[:80 - len(f"-denoised{ext}")]
    truncated = result.truncated.replace(str(src), name) if result.truncated else None
    return Denoised(data, media_type, f"{stem}-denoised{ext}", rate, result.channels, seconds,
                    result.processing_s, result.scaled_db, images, truncated)


def _settings_and_predict(models: SharedModels, rate: int) -> tuple[Any, Callable]:
    model = models.for_rate(rate)
    return model.settings, model.predict


def warm_up_plots() -> None:
    """Draw one tiny spectrogram so the first request does not pay matplotlib's start-up."""
    from .plots import spectrogram_png

    spectrogram_png(np.zeros((2048, 1), np.float32), 16000, "")


def _spectrograms(src: Path, out: Path, name: str) -> dict[str, bytes]:
    """PNG spectrograms of the original and the denoised recording, on one colour scale."""
    from .plots import PLOT_SECONDS, spectrogram_png

    images, vmax = {}, None
    for key, path, title in (("original", src, f"original: {name}"), ("denoised", out, "denoised")):
        rate, _ = audio_io.audio_format(path)
        data, rate = audio_io.read_audio(path, stop=int(PLOT_SECONDS * rate))
        images[key], vmax = spectrogram_png(data, rate, title, vmax)
    return images


class SpectrogramImages(BaseModel):
    original: str
    denoised: str
    seconds: float  # how much of the recording they show (its beginning, when it is long)


class Analysis(BaseModel):
    """``POST /api/analyze``: the denoised audio and both spectrograms (PNG), base64-encoded."""

    filename: str
    media_type: str
    audio: str
    sample_rate: int
    channels: int
    seconds: float
    processing_seconds: float
    scaled_db: float
    spectrograms: SpectrogramImages
    truncated: str | None = None


UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": [FIELD],
            "properties": {FIELD: {"type": "string", "format": "binary",
                                   "description": f"the recording: {FORMATS_TEXT}"},
                           "strength": {"type": "number", "minimum": 0, "maximum": 1,
                                        "description": "as the query parameter strength (give one or the other)"}},
        }}},
    }
}
ERRORS = {code: {"description": text} for code, text in (
    (400, "no file, an empty file or a malformed upload"), (403, "a POST from another web site (Origin)"),
    (408, "an upload that stalled or took too long"), (413, "over the size or duration limit"),
    (415, "not audio, or not a format this server reads"), (421, "a Host other than this machine's loopback names"),
    (422, "audio that cannot be denoised, or a bad or unknown parameter"), (500, "the model failed to run"),
    (507, "the server cannot store the upload (its disk is full)"),
    (503, "busy: too many uploads arriving or waiting"))}


class SecurityHeadersMiddleware:
    """Adds a strict Content-Security-Policy (nothing loaded from elsewhere) and no-store caching."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class SameSiteMiddleware:
    """Refuses what another web site could make the user's browser send: a POST whose ``Origin`` is
    not this server's own (any page the user visits may post a form to 127.0.0.1), and, when
    ``allowed_hosts`` is given (a server on loopback), a ``Host`` not among them (DNS rebinding: a
    site's own name made to point at 127.0.0.1)."""

    def __init__(self, app: Any, allowed_hosts: tuple[str, ...] | None = None, public_names: tuple[str, ...] = ()) -> None:
        self.app = app
        self.allowed_hosts = None if allowed_hosts is None else (*allowed_hosts, *public_names)
        self.public_names = public_names  # a reverse proxy's or tunnel's: Host and Origin may name them

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
            host = headers.get("host", "")
            if self.allowed_hosts is not None and _hostname(host) not in self.allowed_hosts:
                return await JSONResponse({"detail": f"unknown host {header_text(host, 80)!r}: open the page at "
                                                     "the address denoise serve printed"},
                                          status_code=421)(scope, receive, send)
            origin = headers.get("origin")
            if scope["method"] not in ("GET", "HEAD", "OPTIONS") and origin is not None \
                    and urlsplit(origin).netloc.lower() != host.lower() \
                    and (urlsplit(origin).hostname or "") not in self.public_names:
                return await JSONResponse({"detail": "a request from another web site is refused"},
                                          status_code=403)(scope, receive, send)
        await self.app(scope, receive, send)


def _hostname(host_header: str) -> str:
    """``[::1]:8000`` -> ``::1``, ``LocalHost:8000`` -> ``localhost``."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def loopback_names(host: str) -> tuple[str, ...]:
    """The ``Host`` names a browser on this machine uses for a server bound to loopback ``host``."""
    return tuple(sorted({"localhost", "127.0.0.1", "::1", host.strip("[]").lower()}))


WORKDIR_PREFIX = "denoise-serve-"


def remove_stale_workdirs(root: Path | None = None) -> list[Path]:
    """Remove the private folders of servers that were killed (``kill -9``, a crash, a power cut)
    before they could remove their own, so no recording outlives them; returns what was removed.
    A running server holds a lock on its folder's ``.alive`` file (which holds across containers
    sharing the folder); a folder without one is judged by the process ID in its name."""
    removed = []
    for folder in Path(root or tempfile.gettempdir()).glob(f"{WORKDIR_PREFIX}*"):
        match = re.fullmatch(rf"{WORKDIR_PREFIX}(\d+)-.*", folder.name)
        try:
            if not match or folder.is_symlink() or not folder.is_dir() or folder.stat().st_uid != os.getuid():
                continue
            if _held(folder / ".alive") if (folder / ".alive").exists() else _running(int(match[1])):
                continue
        except (OSError, AttributeError):  # unreadable, or no getuid (Windows): left alone
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


def _held(path: Path) -> bool:
    """Whether another process holds the lock on ``path`` (``hold_alive``)."""
    try:
        import fcntl
    except ImportError:
        return True  # cannot tell: keep it
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
    return False


def hold_alive(workdir: Path):
    """Lock ``workdir/.alive`` for as long as the returned file stays open (this server's life).
    Where locks are not to be had (Windows, some network file systems) the folder's name, with the
    process ID, is all a later server judges by."""
    fh = open(workdir / ".alive", "a")
    try:
        import fcntl

        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (ImportError, OSError):
        fh.close()
        (workdir / ".alive").unlink(missing_ok=True)
        return SimpleNamespace(close=lambda: None)
    return fh


def create_app(
    weights: Path | None = None,
    limits: Limits = Limits(),
    runtime: str = "auto",
    model_for_rate: Callable[[int], Any] | None = None,
    allowed_hosts: tuple[str, ...] | None = None,
    public_names: tuple[str, ...] = (),
) -> FastAPI:
    """The web app, its models loaded. ``model_for_rate`` (rate -> object with ``settings`` and
    ``predict``) replaces the models chosen from ``weights`` (default: the shipped ones).
    ``allowed_hosts``: the only ``Host`` names answered (``run`` gives the loopback names when the
    server listens on loopback only); None answers any. ``public_names``: host names a reverse proxy
    or tunnel serves the page under, answered and trusted as the page's origin.

    ``app.state.workdir`` is the private temporary folder requests use; it is removed at shutdown.
    """
    from .model_io import ModelChooser

    limits.validate()
    models = SharedModels(model_for_rate or ModelChooser(weights, runtime).for_rate)
    warm_up_plots()
    remove_stale_workdirs()
    workdir = Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-"))
    alive = hold_alive(workdir)
    jobs: list[anyio.CapacityLimiter] = []  # made in the event loop, at the first request
    in_flight = [0]  # received recordings waiting or being denoised (the event loop's own count)
    arriving = [0]  # uploads being received

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        try:
            yield
        finally:
            alive.close()
            shutil.rmtree(workdir, ignore_errors=True)

    app = FastAPI(title="denoise", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Denoise speech recordings. The interactive docs are off: they load scripts "
                              "from elsewhere; this schema is the documentation.")
    app.state.workdir = workdir
    app.state.limits = limits
    app.add_middleware(SameSiteMiddleware, allowed_hosts=allowed_hosts,
                       public_names=tuple(n.lower() for n in public_names))
    app.add_middleware(SecurityHeadersMiddleware)

    @app.exception_handler(RequestValidationError)
    async def one_line_validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        """A bad query value (strength=2) answers {"detail": "one line"} like every other error."""
        problems = [f"{'.'.join(str(part) for part in e['loc'][1:]) or 'request'}: {e['msg']}" for e in exc.errors()]
        return JSONResponse({"detail": "; ".join(problems)}, status_code=422)
    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")

    async def run_job(request: Request, spectrograms: bool, strength: float) -> Denoised:
        if arriving[0] >= limits.max_waiting:  # before a byte is stored: the disk holds at most this many
            raise HTTPException(503, f"busy: {arriving[0]} uploads are arriving; try again in a moment")
        query = dict(request.query_params)
        job_strength(query, {})  # an unknown parameter is refused before the upload is stored
        job_dir = Path(tempfile.mkdtemp(dir=workdir))
        counted = False
        try:
            arriving[0] += 1
            try:
                upload = await receive_upload(request, job_dir / "upload", limits)
            finally:
                arriving[0] -= 1
            asked = job_strength(query, upload.fields)
            strength = strength if asked is None else asked
            # Counted once received, so slow uploads cannot fill the room that whole ones wait in.
            if in_flight[0] >= limits.max_jobs + limits.max_waiting:
                raise HTTPException(503, f"busy: {in_flight[0]} recordings are waiting or being denoised; "
                                         "try again in a moment")
            in_flight[0] += 1
            counted = True
            if not jobs:
                jobs.append(anyio.CapacityLimiter(limits.max_jobs))
            # Requests beyond max_jobs wait here, in the event loop, holding no worker thread: the
            # threads that serve the page's files stay free however many recordings are queued.
            # A client that went away (Cancel on the page) stops its job at the next chunk.
            gone = lambda: anyio.from_thread.run(request.is_disconnected)  # noqa: E731
            return await anyio.to_thread.run_sync(
                lambda: denoise_upload(upload, models, limits, spectrograms, strength, gone), limiter=jobs[0])
        finally:
            in_flight[0] -= counted
            shutil.rmtree(job_dir, ignore_errors=True)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", media_type="text/html")

    @app.get("/api/limits", summary="The upload limits and accepted formats")
    async def get_limits() -> dict[str, Any]:
        return {**asdict(limits), "formats": [e.lstrip(".") for e in audio_io.AUDIO_EXTENSIONS]}

    @app.post("/api/denoise", summary="Denoise a recording; answers with the denoised audio",
              openapi_extra=UPLOAD_BODY, response_class=Response,
              responses={200: {"description": "the denoised audio, in the upload's format (else WAV)",
                               "content": {t: {} for _, t in OUTPUT_FORMATS.values()}}, **ERRORS})
    async def denoise(request: Request, strength: float = STRENGTH) -> Response:
        result = await run_job(request, spectrograms=False, strength=strength)
        return Response(result.audio, media_type=result.media_type, headers={
            "content-disposition": content_disposition(result.filename),
            "x-processing-seconds": f"{result.processing_seconds:.3f}",
            "x-audio-seconds": f"{result.seconds:.3f}",
            "x-scaled-db": f"{result.scaled_db:.2f}",
            **({"x-truncated": header_text(result.truncated)} if result.truncated else {}),
        })

    @app.post("/api/analyze", summary="Denoise a recording; answers with the audio and both spectrograms",
              openapi_extra=UPLOAD_BODY, response_model=Analysis, responses=ERRORS)
    async def analyze(request: Request, strength: float = STRENGTH) -> dict[str, Any]:
        from .plots import PLOT_SECONDS

        result = await run_job(request, spectrograms=True, strength=strength)
        b64 = lambda data: base64.b64encode(data).decode("ascii")  # noqa: E731
        return {
            "filename": result.filename, "media_type": result.media_type, "audio": b64(result.audio),
            "sample_rate": result.sample_rate, "channels": result.channels, "seconds": result.seconds,
            "processing_seconds": result.processing_seconds, "scaled_db": result.scaled_db,
            "spectrograms": {**{k: b64(v) for k, v in result.spectrograms.items()},
                             "seconds": min(result.seconds, PLOT_SECONDS)},
            "truncated": result.truncated,
        }

    return app


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str) -> str | None:
    """A warning to print when ``host`` makes the page reachable from other machines, else None
    (the name is resolved: ``127.1`` and ``LOCALHOST`` are loopback, ``0`` is every interface)."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host or None, 0, type=socket.SOCK_STREAM,
                                                                flags=socket.AI_PASSIVE)}
    except OSError:
        addresses = {host}
    if addresses and all(is_loopback(a) for a in addresses):
        return None
    where = "all network interfaces" if addresses & {"0.0.0.0", "::"} or host == "" else host
    return (f"warning: listening on {where}: anyone who can reach this machine can upload recordings "
            "and use its CPU; there is no authentication")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port`` (port 0: a free one); DenoiseError says why not."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise DenoiseError(f"{host}: cannot listen there ({exc.strerror or exc})") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise DenoiseError(f"{host}:{port}: cannot listen there ({exc.strerror or exc})") from None
    return sock


def url_for(sock: socket.socket) -> str:
    """The address to open in a browser for a bound socket (loopback for the wildcard address)."""
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def _server(app: FastAPI, log_level: str):
    import uvicorn

    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="on", limit_concurrency=256,
                            timeout_graceful_shutdown=5)
    return uvicorn.Server(config)


def serve(app: FastAPI, sock: socket.socket, log_level: str = "warning") -> None:
    """Serve ``app`` on a bound socket until interrupted (Ctrl+C)."""
    _server(app, log_level).run(sockets=[sock])


@contextlib.contextmanager
def serve_in_thread(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` from a background thread (tests, notebooks); yields its URL, stops on exit."""
    sock = bind(host, port)
    server = _server(app, "warning")
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        if not server.started:
            raise DenoiseError(f"{url_for(sock)}: the server did not start")
        yield url_for(sock)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (``docker stop``, systemd, ``kill``) stops the server as Ctrl+C does, cleanly, with
    "Stopped." and exit 0, not killed by the signal uvicorn re-raises after its shutdown."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(host: str, port: int, weights: Path | None, limits: Limits, runtime: str = "auto",
        echo: Callable[[str], None] = print, public_names: tuple[str, ...] = (),
        warn: Callable[[str], None] | None = None) -> None:
    """``denoise serve``: bind, load the models, say where the page is, serve until Ctrl+C. ``warn``
    hears ``exposure_warning``, once the address is known to be usable."""
    sock = bind(host, port)
    try:
        warning = exposure_warning(host)
        if warn is not None and warning:
            warn(warning)
        bound = sock.getsockname()[0]
        app = create_app(weights, limits, runtime, allowed_hosts=loopback_names(host) if is_loopback(bound) else None,
                         public_names=public_names)
        elsewhere = (f"; from other machines: http://THIS-MACHINE'S-ADDRESS:{sock.getsockname()[1]}/"
                     if sock.getsockname()[0] in ("0.0.0.0", "::") else "")
        echo(f"denoise is serving on {url_for(sock)}{elsewhere} (Ctrl+C to stop); API: {url_for(sock)}openapi.json")
        with _sigterm_as_interrupt():
            try:
                serve(app, sock)
            except KeyboardInterrupt:  # uvicorn shuts down gracefully, then re-raises Ctrl+C or SIGTERM
                pass
        echo("Stopped.")
    finally:
        sock.close()
