"""`denoise serve`: the HTTP API on a real server (uvicorn in a thread), its limits, errors and clean-up."""

import base64
import io
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from conftest import speech_like, write_encoded
from denoise.audio import audio_info
from denoise.cli import main
from denoise.errors import DenoiseError
from denoise.model_io import default_weights, read_model_info
from denoise.serve import Limits, bind, create_app, exposure_warning, is_loopback, serve_in_thread

LIMITS = Limits(max_upload_bytes=200_000, max_seconds=5.0)


@pytest.fixture(scope="module")
def server():
    """The app with the shipped models, served on a free loopback port for this module's tests."""
    app = create_app(limits=LIMITS)
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield SimpleNamespace(app=app, url=url, client=client)
    assert not app.state.workdir.exists(), "the private folder outlives the server"


@pytest.fixture
def client(server):
    """The module's client; after each test, the private folder must hold nothing."""
    yield server.client
    assert os.listdir(server.app.state.workdir) == [".alive"]  # the lock that says this server runs


def noisy(seconds: float, rate: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    voice = speech_like(rng, seconds, rate)
    audio = voice[:, None] + 0.05 * rng.standard_normal((voice.shape[0], channels)).astype(np.float32)
    return audio.astype(np.float32)


def encode(audio: np.ndarray, rate: int, fmt: str = "WAV", subtype: str | None = None) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def post(client, data: bytes, name: str = "talk.wav", content_type: str = "audio/wav", path: str = "/api/denoise"):
    return client.post(path, files={"file": (name, data, content_type)})


def test_wav_upload_gives_denoised_wav_of_the_same_shape(client):
    audio = noisy(1.0, 16000)
    response = post(client, encode(audio, 16000, subtype="PCM_16"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/wav"
    assert response.headers["content-disposition"] == 'attachment; filename="talk-denoised.wav"'
    assert float(response.headers["x-processing-seconds"]) > 0
    assert float(response.headers["x-audio-seconds"]) == pytest.approx(1.0)
    info = sf.info(io.BytesIO(response.content))
    assert (info.format, info.subtype, info.samplerate, info.channels, info.frames) == ("WAV", "PCM_16", 16000, 1, 16000)
    out, _ = sf.read(io.BytesIO(response.content), dtype="float32")
    assert np.sqrt(np.mean(out**2)) < 0.97 * np.sqrt(np.mean(audio**2))  # the model removed something


def test_strength_sets_how_much_is_removed(client):
    audio = noisy(1.0, 16000)
    data = encode(audio, 16000, subtype="FLOAT")
    levels = {}
    for strength in (0.0, 0.5, 1.0):
        response = client.post(f"/api/denoise?strength={strength}", files={"file": ("t.wav", data, "audio/wav")})
        assert response.status_code == 200, response.text
        out, _ = sf.read(io.BytesIO(response.content), dtype="float32")
        levels[strength] = float(np.sqrt(np.mean(out**2)))
    assert levels[0.0] == pytest.approx(float(np.sqrt(np.mean(audio**2))), rel=1e-3)  # nothing removed
    assert levels[0.0] > levels[0.5] > levels[1.0]
    for bad in ("1.5", "-1", "abc"):  # one line, as every other error: the page shows body.detail
        response = client.post(f"/api/analyze?strength={bad}", files={"file": ("t.wav", data, "audio/wav")})
        assert response.status_code == 422 and isinstance(response.json()["detail"], str), response.text
        assert response.json()["detail"].startswith("strength: ") and "\n" not in response.json()["detail"]
    # As a form field too; a parameter or field the API does not know is refused, not ignored.
    response = client.post("/api/denoise", files={"file": ("t.wav", data, "audio/wav")}, data={"strength": "0"})
    assert response.status_code == 200, response.text
    out, _ = sf.read(io.BytesIO(response.content), dtype="float32")
    assert float(np.sqrt(np.mean(out**2))) == pytest.approx(levels[0.0], rel=1e-6)
    for query, form, said in (("?strenght=0", {}, "unknown query parameter 'strenght'"),
                              ("", {"strenght": "0"}, "unknown form field 'strenght'"),
                              ("", {"strength": "2"}, "strength: 2 is outside 0 to 1"),
                              ("", {"strength": "nan"}, "strength: nan is outside 0 to 1"),
                              ("", {"strength": "x"}, "strength: 'x' is not a number"),
                              ("?strength=0", {"strength": "0"}, "given both as a query parameter and as a form")):
        response = client.post(f"/api/denoise{query}", files={"file": ("t.wav", data, "audio/wav")}, data=form)
        assert response.status_code == 422 and said in response.json()["detail"], response.text


def test_flac_upload_gives_flac_with_the_same_rate_and_channels(client):
    response = post(client, encode(noisy(0.8, 44100, channels=2), 44100, "FLAC", "PCM_24"), "duo.flac", "audio/flac")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/flac"
    assert 'filename="duo-denoised.flac"' in response.headers["content-disposition"]
    info = sf.info(io.BytesIO(response.content))
    assert (info.format, info.subtype, info.samplerate, info.channels, info.frames) == ("FLAC", "PCM_24", 44100, 2, 35280)


def test_analyze_gives_audio_and_both_spectrograms(client):
    response = post(client, encode(noisy(1.2, 8000), 8000), path="/api/analyze")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["filename"], body["media_type"], body["sample_rate"], body["channels"]) == \
        ("talk-denoised.wav", "audio/wav", 8000, 1)
    assert body["seconds"] == pytest.approx(1.2) and body["processing_seconds"] > 0
    assert sf.info(io.BytesIO(base64.b64decode(body["audio"]))).frames == 9600
    for key in ("original", "denoised"):
        png = base64.b64decode(body["spectrograms"][key])
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def garbled_flac() -> bytes:
    data = bytearray(encode(noisy(1.0, 16000), 16000, "FLAC"))
    middle = len(data) // 3
    data[middle : middle + 2000] = np.random.default_rng(1).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    return bytes(data)


@pytest.mark.parametrize("name, data, content_type, status, message", [
    ("talk.wav", b"", "audio/wav", 400, "talk.wav: empty upload (0 bytes)"),
    ("notes.wav", b"these are my notes, not audio\n" * 20, "audio/wav", 415, "notes.wav: cannot read audio"),
    ("notes.txt", b"hello", "text/plain", 415, "notes.txt: sent as text/plain, expected an audio file"),
    ("broken.flac", "garbled", "audio/flac", 422, "broken.flac: truncated or corrupt"),
    ("low.wav", "4 kHz", "audio/wav", 422, "low.wav: unsupported sample rate 4000 Hz"),
    ("big.wav", "too large", "audio/wav", 413, "larger than the limit of 0.190735 MB"),
    ("long.flac", "too long", "audio/flac", 413, "long.flac: 6.0 s long; the limit is 5 s"),
])
def test_bad_uploads_get_a_4xx_with_a_message(client, name, data, content_type, status, message):
    data = {
        "garbled": garbled_flac,
        "4 kHz": lambda: encode(noisy(0.5, 4000), 4000),
        "too large": lambda: encode(noisy(4.0, 16000), 16000, subtype="FLOAT"),  # 256 kB
        "too long": lambda: encode(np.zeros((48000, 1), np.float32), 8000, "FLAC"),
    }.get(data, lambda: data)()
    response = post(client, data, name, content_type)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    assert "/tmp" not in response.text and str(Path.home()) not in response.text  # no server paths


def test_requests_without_a_file_get_a_4xx(client):
    wav = encode(noisy(0.3, 16000), 16000)
    response = client.post("/api/denoise", files={"audio": ("a.wav", wav, "audio/wav")})
    assert response.status_code == 400 and "no file: send the recording in the multipart field 'file' (it came in 'audio')" in response.text
    response = client.post("/api/denoise", content=wav, headers={"content-type": "audio/wav"})
    assert response.status_code == 415 and "expected a multipart/form-data upload" in response.text
    response = client.post("/api/denoise", content=b"garbage\r\n--x\r\n",
                           headers={"content-type": "multipart/form-data; boundary=x"})
    assert response.status_code == 400 and "malformed multipart upload" in response.text


def test_an_oversized_stream_is_refused_while_it_arrives(client):
    """Without Content-Length (chunked), the limit is enforced on the bytes received, not stored whole."""
    boundary = "b0undary"

    def body():
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
               "Content-Type: audio/wav\r\n\r\n").encode()
        for _ in range(50):  # 3.2 MB, far above the 0.19 MB limit
            yield b"\0" * 65536

    response = client.post("/api/denoise", content=body(),
                           headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert response.status_code == 413 and "larger than the limit" in response.text
    assert "content-length" not in response.request.headers

    def big_field_first():  # a field that is not the file counts too: the whole body is capped
        yield f"--{boundary}\r\nContent-Disposition: form-data; name=\"strength\"\r\n\r\n".encode()
        for _ in range(50):
            yield b"x" * 65536
        yield (f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
               f"Content-Type: audio/wav\r\n\r\n").encode() + encode(noisy(0.3, 16000), 16000)
        yield f"\r\n--{boundary}--\r\n".encode()

    response = client.post("/api/denoise", content=big_field_first(),
                           headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert response.status_code == 413 and "larger than the limit" in response.text


def test_a_wav_cut_short_is_denoised_with_a_note(client):
    whole = encode(noisy(1.0, 16000), 16000, subtype="PCM_16")
    response = post(client, whole[: len(whole) // 3], "cut.wav")
    assert response.status_code == 200, response.text
    assert response.headers["x-truncated"].startswith("cut.wav: truncated: its header promises 1.0 s")
    response = post(client, whole[: len(whole) // 3], "cut.wav", path="/api/analyze")
    assert response.status_code == 200 and response.json()["truncated"].startswith("cut.wav: truncated")
    assert "x-truncated" not in post(client, whole, "whole.wav").headers
    # A header with no length (a recorder that never closed the file) is read to its end, with a note;
    # a streaming writer's "size unknown" is not a cut.
    unclosed = whole[:4] + bytes(4) + whole[8:40] + bytes(4) + whole[44:]
    response = post(client, unclosed, "unclosed.wav")
    assert response.status_code == 200, response.text
    assert "its header gives no length" in response.headers["x-truncated"]
    assert sf.info(io.BytesIO(response.content)).frames == 16000
    for unknown in (b"\xff\xff\xff\xff", b"\x00\xf0\xff\x7f"):  # FFmpeg's and SoX's
        streamed = whole[:4] + unknown + whole[8:40] + unknown + whole[44:]
        response = post(client, streamed, "streamed.wav")
        assert response.status_code == 200 and "x-truncated" not in response.headers, response.text


def test_a_telephone_codec_upload_is_denoised(client):
    """GSM 6.10 (voicemail): libsndfile reads it but cannot seek in it."""
    response = post(client, encode(noisy(1.0, 8000), 8000, subtype="GSM610"), "voicemail.wav")
    assert response.status_code == 200, response.text
    info = sf.info(io.BytesIO(response.content))
    assert (info.samplerate, info.subtype) == (8000, "GSM610") and abs(info.frames - 8000) < 400


def test_uploaded_names_never_become_paths(client, server):
    wav = encode(noisy(0.3, 16000), 16000)
    for name in ("../../evil.wav", "/etc/passwd", "..\\..\\x y.wav", "\u00e9t\u00e9\n.wav", "r\u00e9sum\u00e9 \U0001f399.wav"):
        response = post(client, wav, name)
        assert response.status_code == 200, response.text
        disposition = response.headers["content-disposition"]
        assert re.fullmatch(r'attachment; filename="[A-Za-z0-9._ -]+-denoised\.wav"'
                            r"(; filename\*=UTF-8''[A-Za-z0-9._%-]+-denoised\.wav)?", disposition), disposition
    assert not (server.app.state.workdir.parent / "evil.wav").exists()
    # A long name is shortened before its extension, which tools that save by it (curl -OJ) need.
    long = post(client, wav, "x" * 120 + ".wav").headers["content-disposition"]
    assert re.fullmatch(r'attachment; filename="x{60,80}-denoised\.wav"', long), long
    # A name in another alphabet keeps its letters for browsers that read filename* (RFC 6266).
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9%20_-denoised.wav" in disposition
    assert post(client, wav, "r\u00e9sum\u00e9.wav", path="/api/analyze").json()["filename"] == "r\u00e9sum\u00e9-denoised.wav"


def test_concurrent_requests_all_get_their_own_result(client):
    cases = [(0.5, 8000), (1.0, 16000), (1.5, 22050), (2.0, 44100), (0.7, 16000), (1.1, 11025)]
    uploads = [encode(noisy(s, rate, seed=i), rate) for i, (s, rate) in enumerate(cases)]
    results = [None] * len(cases)

    def send(i):
        results[i] = post(client, uploads[i], f"take{i}.wav")

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(cases))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for i, ((seconds, rate), response) in enumerate(zip(cases, results)):
        assert response.status_code == 200, response.text
        assert f'filename="take{i}-denoised.wav"' in response.headers["content-disposition"]
        info = sf.info(io.BytesIO(response.content))
        assert (info.samplerate, info.frames) == (rate, int(seconds * rate))


def test_phone_recording_and_video_uploads_give_wav(client, tmp_path):
    write_encoded(tmp_path / "memo.m4a", noisy(1.0, 16000)[:, 0], 16000)
    for name, declared, ext, media in (("memo.m4a", "audio/x-m4a", ".m4a", "audio/mp4"),
                                       ("clip.mp4", "video/mp4", ".wav", "audio/wav")):
        response = post(client, (tmp_path / "memo.m4a").read_bytes(), name, declared)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == media
        assert f'filename="{name[:-4]}-denoised{ext}"' in response.headers["content-disposition"]
        (tmp_path / f"back{ext}").write_bytes(response.content)
        assert audio_info(tmp_path / f"back{ext}") == (16000, 16000, 1)
    assert sf.info(str(tmp_path / "back.wav")).subtype == "PCM_16"
    # A recording never finished: FFmpeg's reason, the upload's name, no server path.
    cut = (tmp_path / "memo.m4a").read_bytes()
    response = post(client, cut[: len(cut) // 2], "cut.m4a", "audio/mp4")
    assert response.status_code == 415 and "cut.m4a: cannot read audio (moov atom not found)" in response.text
    assert str(tmp_path) not in response.text and "/tmp" not in response.text
    # Measured by decoding (a browser's WebM does not say how long it is), only as far as the limit.
    write_encoded(tmp_path / "long.webm", noisy(7.0, 48000)[:, 0], 48000, codec="libopus")
    response = post(client, (tmp_path / "long.webm").read_bytes(), "long.webm", "audio/webm")
    assert response.status_code == 413 and "long.webm: over 5.0 s long; the limit is 5 s" in response.text


def test_limits_page_assets_and_schema(client):
    assert client.get("/api/limits").json() == {"max_upload_bytes": 200_000, "max_seconds": 5.0, "max_jobs": 2,
                                                "max_waiting": 32, "max_channels": 8,
                                                "formats": ["wav", "flac", "ogg", "oga", "opus", "mp3", "aiff", "aif",
                                                                "aifc", "caf", "w64", "m4a", "aac", "mp4", "mov", "3gp",
                                                                "webm", "mka", "mkv", "wma"]}
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    links = re.findall(r'(?:src|href)="([^"]*)"', page.text)
    assert {"/static/app.js", "/static/style.css"} <= set(links)
    assert all(link.startswith("/") or link.startswith("data:") for link in links), links
    for asset in ("/static/app.js", "/static/style.css"):
        text = client.get(asset).text
        assert len(text) > 500 and "http://" not in text and "https://" not in text and "@import" not in text
    schema = client.get("/openapi.json").json()
    upload = schema["paths"]["/api/denoise"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert upload["schema"]["required"] == ["file"]
    assert "/api/analyze" in schema["paths"]
    assert client.get("/docs").status_code == 404  # Swagger UI would load scripts from a CDN


def test_page_answers_while_slow_requests_are_processed_and_queued():
    """One recording denoised, 45 waiting their turn (more than the server's 40 worker threads): the
    waiting ones hold no thread, so the page and its files still load at once."""
    settings = read_model_info(default_weights(16000))[0]
    running, release = threading.Event(), threading.Event()

    def slow_predict(x):
        if x.shape[0] > 1:  # not the warm-up call
            running.set()
            release.wait(30)
        return np.zeros_like(x)

    app = create_app(model_for_rate=lambda rate: SimpleNamespace(settings=settings, predict=slow_predict),
                     limits=Limits(max_jobs=1, max_waiting=64))
    audio = noisy(1.0, 16000)
    data = encode(audio, 16000, subtype="FLOAT")
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=60,
                                                   limits=httpx.Limits(max_connections=64)) as client:
        results = [None] * 46
        senders = [threading.Thread(target=lambda i=i: results.__setitem__(i, post(client, data))) for i in range(46)]
        for t in senders:
            t.start()
        assert running.wait(20)
        time.sleep(1.0)  # the others arrive and wait
        for path in ("/", "/static/app.js", "/static/style.css", "/api/limits"):
            started = time.perf_counter()
            assert client.get(path).status_code == 200
            assert time.perf_counter() - started < 0.5, f"GET {path} waited for the queued requests"
        assert all(t.is_alive() for t in senders)
        release.set()
        for t in senders:
            t.join(60)
    assert all(r.status_code == 200 for r in results), [r.text for r in results if r.status_code != 200][:1]
    out, _ = sf.read(io.BytesIO(results[0].content), dtype="float32", always_2d=True)
    np.testing.assert_allclose(out, audio, atol=1e-6)  # a model that removes nothing returns the input


def test_requests_beyond_the_waiting_room_are_told_the_server_is_busy():
    settings = read_model_info(default_weights(16000))[0]
    running, release = threading.Event(), threading.Event()

    def slow_predict(x):
        if x.shape[0] > 1:
            running.set()
            release.wait(30)
        return np.zeros_like(x)

    app = create_app(model_for_rate=lambda rate: SimpleNamespace(settings=settings, predict=slow_predict),
                     limits=Limits(max_jobs=1, max_waiting=1))
    data = encode(noisy(1.0, 16000), 16000)
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        results = [None] * 2
        senders = [threading.Thread(target=lambda i=i: results.__setitem__(i, post(client, data))) for i in range(2)]
        senders[0].start()
        assert running.wait(20)
        senders[1].start()
        time.sleep(0.5)  # the second waits its turn
        busy = post(client, data)
        assert busy.status_code == 503 and "busy: 2 recordings are waiting or being denoised" in busy.text
        release.set()
        for t in senders:
            t.join(60)
        assert [r.status_code for r in results] == [200, 200]
        # Failed uploads leave nothing counted: the room is free again.
        for _ in range(4):
            assert client.post("/api/denoise", content=b"x", headers={"content-type": "text/plain"}).status_code == 415
        assert post(client, data).status_code == 200


def test_uploads_arriving_at_once_are_capped_before_anything_is_stored():
    """Slow uploads cannot fill the disk: beyond max_waiting arriving at once, 503 before the body."""
    settings = read_model_info(default_weights(16000))[0]
    app = create_app(model_for_rate=lambda rate: SimpleNamespace(settings=settings, predict=lambda x: np.zeros_like(x)),
                     limits=Limits(max_jobs=1, max_waiting=1))
    data = encode(noisy(0.5, 16000), 16000)
    boundary = "b0undary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
            "Content-Type: audio/wav\r\n\r\n").encode() + data
    tail = f"\r\n--{boundary}--\r\n".encode()
    sent = threading.Event()

    def slow_body():
        yield head
        sent.set()
        time.sleep(2)
        yield tail

    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        results = []
        slow = threading.Thread(target=lambda: results.append(client.post(
            "/api/denoise", content=slow_body(), headers={"content-type": f"multipart/form-data; boundary={boundary}"})))
        slow.start()
        assert sent.wait(10)
        time.sleep(0.3)
        busy = post(client, data)
        assert busy.status_code == 503 and "1 uploads are arriving" in busy.text
        slow.join(30)
        assert results[0].status_code == 200, results[0].text
        assert post(client, data).status_code == 200


def test_other_sites_and_other_host_names_are_refused(tmp_path):
    """Any page the user visits may post to 127.0.0.1, and a site's own name may be made to point
    there (DNS rebinding): such requests do no work."""
    settings = read_model_info(default_weights(16000))[0]
    calls = []
    app = create_app(model_for_rate=lambda rate: SimpleNamespace(settings=settings,
                                                                 predict=lambda x: calls.append(1) or np.zeros_like(x)),
                     limits=LIMITS, allowed_hosts=("localhost", "127.0.0.1", "::1"))
    data = encode(noisy(0.5, 16000), 16000)
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        warm = len(calls)
        port = url.rstrip("/").rsplit(":", 1)[1]
        evil = client.post("/api/denoise", files={"file": ("a.wav", data, "audio/wav")},
                           headers={"origin": "https://evil.example"})
        assert evil.status_code == 403 and "another web site" in evil.text
        rebound = client.post("/api/denoise", files={"file": ("a.wav", data, "audio/wav")},
                              headers={"host": f"evil.example:{port}", "origin": f"http://evil.example:{port}"})
        assert rebound.status_code == 421 and "unknown host" in rebound.text
        assert client.get("/", headers={"host": f"evil.example:{port}"}).status_code == 421
        assert len(calls) == warm  # nothing was denoised
        # The page's own requests, by either loopback name, and a client that sends no Origin (curl).
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LocalHost:{port}"):
            ok = client.post("/api/denoise", files={"file": ("a.wav", data, "audio/wav")},
                             headers={"host": host, "origin": f"http://{host}"})
            assert ok.status_code == 200, ok.text
        assert post(client, data).status_code == 200
    # Behind a reverse proxy or tunnel, its public name is named (denoise serve --public-name).
    app = create_app(model_for_rate=lambda rate: SimpleNamespace(settings=settings, predict=lambda x: np.zeros_like(x)),
                     limits=LIMITS, allowed_hosts=("localhost", "127.0.0.1", "::1"), public_names=("Talks.Example",))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        port = url.rstrip("/").rsplit(":", 1)[1]
        for headers in ({"origin": "https://talks.example"}, {"host": "talks.example", "origin": "https://talks.example"}):
            ok = client.post("/api/denoise", files={"file": ("a.wav", data, "audio/wav")}, headers=headers)
            assert ok.status_code == 200, (headers, ok.text)
        assert client.post("/api/denoise", files={"file": ("a.wav", data, "audio/wav")},
                           headers={"origin": "https://evil.example"}).status_code == 403
        assert client.get("/", headers={"host": f"evil.example:{port}"}).status_code == 421


def test_too_much_audio_for_its_size_is_refused_before_the_work(client, tmp_path):
    """A few kB of compressed silence over many channels, or a high rate, would cost gigabytes."""
    many = encode(np.zeros((1000, 9), np.float32), 16000)
    response = post(client, many, "many.wav")
    assert response.status_code == 413 and "many.wav: 9 channels; this server takes at most 8" in response.text
    dense = encode(np.zeros((4 * 192000, 2), np.float32), 192000, "FLAC")  # 4 s: under the 5-s limit
    response = post(client, dense, "dense.flac", "audio/flac")
    assert response.status_code == 413, response.text
    assert "dense.flac: 2 channels at 192000 Hz for 4.0 s is more audio than this server takes at once" in response.text
    # A three-channel m4a cannot be answered as m4a: WAV instead, not advice to write another format.
    import fractions

    import av

    with av.open(str(tmp_path / "three.m4a"), "w") as container:
        stream = container.add_stream("aac", rate=16000, layout="3.0")
        audio = noisy(1.0, 16000, channels=3).T.copy()
        for i in range(0, 16000, 1024):
            frame = av.AudioFrame.from_ndarray(audio[:, i:i + 1024].copy(), format="fltp", layout="3.0")
            frame.sample_rate, frame.pts, frame.time_base = 16000, i, fractions.Fraction(1, 16000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    response = post(client, (tmp_path / "three.m4a").read_bytes(), "three.m4a", "audio/mp4")
    assert response.status_code == 200 and response.headers["content-type"] == "audio/wav", response.text
    assert sf.info(io.BytesIO(response.content)).channels == 3


def test_a_huge_timestamp_jump_is_cut_not_filled(tmp_path):
    """A crafted file whose timestamps jump 100 hours ahead was filled with silence (129 GiB at once)."""
    import fractions

    import av

    from denoise.audio import decode_to

    path = tmp_path / "jump.mka"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libopus", rate=48000, layout="mono")
        for i, at in enumerate((0, 960, 100 * 3600 * 48000)):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 960), np.float32), format="flt", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = 48000, at, fractions.Fraction(1, 48000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    problems = []
    n, rate, _ = decode_to(path, tmp_path / "out.w64", problems=problems)
    assert n < 10 * 48000 and "timestamps jump" in problems[0], problems


def test_recordings_of_a_killed_server_are_removed_by_the_next_one(tmp_path):
    from denoise.serve import remove_stale_workdirs

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead, alive = tmp_path / f"denoise-serve-{gone.stdout.strip()}-abc", tmp_path / f"denoise-serve-{os.getpid()}-def"
    for folder in (dead, alive):
        (folder / "job").mkdir(parents=True)
        (folder / "job" / "upload.wav").write_bytes(b"a recording")
    (tmp_path / "denoise-serve-other").mkdir()  # not named by a server: left alone
    assert remove_stale_workdirs(tmp_path) == [dead]
    assert not dead.exists() and alive.exists() and (tmp_path / "denoise-serve-other").exists()
    # A server holds a lock on its folder, which says more than a process ID (another container's
    # server may have any ID): a held lock keeps the folder, a lock nobody holds does not.
    from denoise.serve import hold_alive

    held = tmp_path / f"denoise-serve-{gone.stdout.strip()}-held"  # its ID gone, its lock held
    free = tmp_path / f"denoise-serve-{os.getpid()}-free"  # its ID running, its lock free
    for folder in (held, free):
        folder.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from denoise.serve import hold_alive; h = hold_alive(Path(sys.argv[1])); "
                               "print('held', flush=True); time.sleep(60)", str(held)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        hold_alive(free).close()
        assert sorted(remove_stale_workdirs(tmp_path)) == [free]
        assert held.exists()
    finally:
        holder.kill()
        holder.wait()


def test_public_names_must_be_host_names():
    for bad in ("", "talks.example.org:8443", "https://talks.example.org", "talks.example.org."):
        result = CliRunner().invoke(main, ["serve", "--public-name", bad])
        assert result.exit_code == 2 and "give the host name alone" in result.output, (bad, result.output)


def test_loopback_checks_and_warning():
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert is_loopback(host) and exposure_warning(host) is None
    for host in ("127.1", "LOCALHOST"):  # resolved, not matched as text
        assert exposure_warning(host) is None
    assert "all network interfaces" in exposure_warning("0.0.0.0")
    assert "all network interfaces" in exposure_warning("0")
    assert "no authentication" in exposure_warning("192.168.1.20")
    with pytest.raises(DenoiseError, match="Limits|max_seconds"):
        Limits(max_seconds=0).validate()


def test_cli_warns_for_all_interfaces_and_reports_a_busy_port(monkeypatch):
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--port", str(port)])
    assert result.exit_code == 1
    assert f"0.0.0.0:{port}: cannot listen there (Address already in use)" in result.output
    assert "warning" not in result.stderr  # no warning about an address it does not listen on
    result = CliRunner().invoke(main, ["serve", "--host", "999.1.1.1", "--port", "0"])
    assert result.exit_code == 1 and "cannot listen there" in result.output and "warning" not in result.stderr

    def no_models(*args, **kwargs):
        raise DenoiseError("stopped here by the test")

    monkeypatch.setattr("denoise.serve.create_app", no_models)
    result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--port", "0"])
    assert "warning: listening on all network interfaces" in result.stderr and "stopped here" in result.output
    with pytest.raises(DenoiseError, match="cannot listen there"):
        bind("256.1.1.1", 0)
    help_text = CliRunner().invoke(main, ["serve", "--help"]).output
    for option in ("--host", "--port", "--weights", "--max-upload-mb", "--max-seconds"):
        assert option in help_text


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])  # Ctrl+C; docker stop, systemd
def test_cli_serves_until_interrupted_and_removes_its_folder(tmp_path, stop):
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "denoise", "serve", "--port", "0", "--max-seconds", "60",
                             "--max-jobs", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert url, line + proc.stderr.read()
        assert [p.name.startswith("denoise-serve-") for p in tmp_path.iterdir()] == [True]
        assert httpx.get(url.group(0)).status_code == 200
        limits = httpx.get(url.group(0) + "api/limits").json()
        assert (limits["max_seconds"], limits["max_jobs"]) == (60, 3)
        proc.send_signal(stop)
        assert proc.wait(20) == 0, proc.stderr.read()
        assert proc.stdout.read().strip() == "Stopped."
    finally:
        proc.kill()
        proc.wait()
    assert list(tmp_path.iterdir()) == []


def test_a_model_that_fails_to_run_is_the_servers_error_not_the_uploads():
    from denoise.errors import ModelFileError

    settings = read_model_info(default_weights(16000))[0]

    def broken(x):
        if x.shape[0] > 1:  # not the warm-up call
            raise ModelFileError("/srv/models/secret.keras: cannot run the model (arena)")
        return np.zeros_like(x)

    app = create_app(model_for_rate=lambda rate: SimpleNamespace(settings=settings, predict=broken))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        response = post(client, encode(noisy(1.0, 16000), 16000))
    assert response.status_code == 500 and "model failed to run" in response.text
    assert "secret" not in response.text


def test_a_client_that_goes_away_stops_its_job():
    """Cancel on the page closes the request: the job stops at its next chunk instead of holding a slot."""
    settings = read_model_info(default_weights(16000))[0]
    calls = []

    def slow_predict(x):
        if x.shape[0] > 1:  # not the warm-up call
            calls.append(time.perf_counter())
            time.sleep(1.0)
        return np.zeros_like(x)

    app = create_app(model_for_rate=lambda rate: SimpleNamespace(settings=settings, predict=slow_predict),
                     limits=Limits(max_upload_bytes=50 * 2**20, max_seconds=300))
    data = encode(noisy(150.0, 16000), 16000)  # five 30-s chunks: five slow calls if it ran to the end
    with serve_in_thread(app) as url:
        with httpx.Client(base_url=url, timeout=httpx.Timeout(60, read=0.5)) as client:
            with pytest.raises(httpx.ReadTimeout):
                post(client, data)
        time.sleep(4.0)
        assert 1 <= len(calls) <= 2, len(calls)
        assert os.listdir(app.state.workdir) == [".alive"]  # its files are gone with it
