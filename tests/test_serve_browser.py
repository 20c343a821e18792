"""`denoise serve` end to end in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

Playwright never downloads a browser here: it launches /usr/bin/chromium (``.ci/run`` installs it).
"""

from pathlib import Path

import pytest
import soundfile as sf

from denoise.serve import create_app, serve_in_thread

CHROMIUM = Path("/usr/bin/chromium")
EXAMPLE = Path(__file__).resolve().parent.parent / "data_layout" / "example" / "noisy_example.wav"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--disable-default-apps", "--disable-extensions",
    # A fake microphone (a beeping tone) and no permission prompt, for the record button.
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
]
WAIT_MS = 60_000


@pytest.fixture(scope="module")
def site():
    """The app with the shipped models, on a free loopback port."""
    app = create_app()
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Chromium with a fresh profile, headless, its background networking off."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install chromium chromium-driver (.ci/run does)"
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("profile")), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_ARGS, accept_downloads=True, permissions=["microphone"],
            viewport={"width": 1200, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(site, browser):
    """The page, freshly loaded; the test fails if it fetched anything from elsewhere or threw."""
    from playwright.sync_api import expect

    page = browser.new_page()
    requests, errors = [], []
    page.on("request", lambda request: requests.append(request.url))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(site)
    expect(page.locator("#limits")).to_contain_text("MB", timeout=WAIT_MS)
    try:
        yield page
    finally:
        page.close()
    outside = [url for url in requests if not url.startswith((site, "data:", "blob:"))]
    assert outside == [] and errors == []


def enhance_and_wait(page) -> None:
    """Press Enhance; check the busy state shows, then wait for the download link."""
    page.evaluate("""() => {
        window.sawBusy = false;
        new MutationObserver(() => { if (!document.getElementById('busy').hidden) window.sawBusy = true; })
            .observe(document.getElementById('busy'), { attributes: true });
    }""")
    page.click("#enhance")
    page.wait_for_selector("#download:not([hidden])", timeout=WAIT_MS)
    assert page.evaluate("window.sawBusy")
    assert page.is_hidden("#busy") and page.is_hidden("#message")


def denoised_duration(page) -> float:
    return page.evaluate("""async () => {
        const audio = document.getElementById('denoised');
        if (audio.readyState < 1) await new Promise((done) => audio.addEventListener('loadedmetadata', done, { once: true }));
        return audio.duration;
    }""")


def test_upload_enhance_listen_and_download(page, tmp_path):
    page.set_input_files("#file", str(EXAMPLE))
    assert "noisy_example.wav" in page.inner_text("#chosen")
    enhance_and_wait(page)
    info = sf.info(str(EXAMPLE))
    assert denoised_duration(page) == pytest.approx(info.duration, abs=0.01)
    for image in ("#spec-original", "#spec-denoised"):
        assert page.evaluate(f"document.querySelector('{image}').naturalWidth") > 300
    assert "s of audio denoised at strength 100 % in" in page.inner_text("#timing")
    assert page.evaluate("document.activeElement.id") == "download"  # focus is not lost on the body
    with page.expect_download() as download:
        page.click("#download")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == "noisy_example-denoised.wav"
    got = sf.info(str(saved))
    assert (got.format, got.samplerate, got.channels, got.frames) == ("WAV", 16000, 1, info.frames)
    shot = tmp_path / "serve.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    # Another file: the last result is gone, and its player no longer holds (or plays) it.
    drop_text(page, "notes.txt", "text/plain", "not a recording")
    assert page.is_hidden("#download") and page.is_disabled("#enhance")
    assert page.evaluate("(() => { const a = document.getElementById('denoised'); "
                         "return [a.readyState, isNaN(a.duration)]; })()") == [0, True]
    assert "notes.txt does not look like a recording" in page.inner_text("#message")
    assert page.inner_text("#chosen") == ""
    # At phone width nothing runs off the side.
    page.set_input_files("#file", str(EXAMPLE))
    enhance_and_wait(page)
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def drop_text(page, name: str, media_type: str, text: str) -> None:
    page.evaluate("""([name, type, text]) => {
        const data = new DataTransfer();
        data.items.add(new File([text], name, { type }));
        document.getElementById('drop').dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true }));
    }""", [name, media_type, text])


def test_record_from_the_microphone(page):
    from playwright.sync_api import expect

    page.click("#record")
    expect(page.locator("#record-time")).to_have_text("1 s", timeout=WAIT_MS)
    page.click("#record")
    expect(page.locator("#chosen")).to_contain_text("recording-", timeout=WAIT_MS)
    page.fill("#strength", "50")  # the strength slider reaches the API
    assert page.inner_text("#strength-value") == "50 %"
    with page.expect_request(lambda r: r.url.endswith("/api/analyze?strength=0.5")):
        enhance_and_wait(page)
    assert 0.5 < denoised_duration(page) < 5


def test_a_dropped_file_that_is_not_audio_gets_the_servers_message(page):
    drop_text(page, "notes.wav", "audio/wav", "these are notes, not audio\n" * 10)
    assert "notes.wav" in page.inner_text("#chosen")
    page.click("#enhance")
    page.wait_for_selector("#message:not([hidden])", timeout=WAIT_MS)
    assert "notes.wav: cannot read audio" in page.inner_text("#message")
    assert page.is_hidden("#download") and page.is_enabled("#enhance")
