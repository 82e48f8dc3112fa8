"""The web page in a real browser (Debian's chromium driven by Playwright) against a real server:
upload a clip, a longer joined video and a file that is not a video; the cards must show the
API's scores, the timeline chart, and the refusal in words. Screenshots (desktop and 390-px
phone width) are saved in $TIERMEM_TEST_ARTIFACTS (default: test-artifacts/)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("uvicorn", reason="the service needs the serve extra: pip install 'tiermem[serve]'")
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright: pip install playwright")

from serving import Server, chromium  # noqa: E402

from tiermem.video.samples import make_long_video  # noqa: E402

ARTIFACTS = Path(os.environ.get("TIERMEM_TEST_ARTIFACTS", "test-artifacts"))
#: Milliseconds the page may take to show all results (three jobs, one worker).
RESULTS_TIMEOUT_MS = 240_000


def wait_until(page: Any, expression: str, timeout: int = 30_000) -> None:
    """Poll a JavaScript expression until it is true. `page.wait_for_function` evaluates a
    string, which the page's Content-Security-Policy (no eval) forbids; `page.evaluate` is not."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"not true after {timeout} ms: {expression}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def browser():
    exe = chromium()
    if exe is None:
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run installs it)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


def test_page_uploads_and_shows_results(browser: Any, fitted, sample_clip_paths: list[Path], tmp_path: Path) -> None:
    _, model, _ = fitted
    clip = sample_clip_paths[1]
    long = make_long_video(tmp_path / "joined_12s.mp4", seconds=12, size=(320, 180))
    fake = tmp_path / "slides.mp4"
    fake.write_bytes(b"%PDF-1.4 not a video\n" * 100)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    server = Server(model, tmp_path / "data", tmp_path / "server.log").start()
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        refused_by_policy: list[str] = []  # the page must work under its own Content-Security-Policy
        page.on("console", lambda m: refused_by_policy.append(m.text) if "Content Security Policy" in m.text else None)
        page.goto(server.url)
        for _ in range(12):  # keyboard: the file picker is reachable with Tab
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement && document.activeElement.id") == "files":
                break
        assert page.evaluate("document.activeElement.id") == "files"
        assert page.get_by_label("Timeline").is_visible()  # the options are labelled controls
        page.set_input_files("#files", [str(clip), str(long), str(fake)])
        wait_until(page, "document.querySelectorAll('.card .score[data-score]').length === 2", timeout=RESULTS_TIMEOUT_MS)
        wait_until(page, "[...document.querySelectorAll('.card .error')].some(e => !e.hidden && e.textContent)")
        cards = {page.evaluate("c => c.querySelector('.name').textContent", c): c for c in page.query_selector_all(".card")}
        assert set(cards) == {clip.name, long.name, fake.name}

        refused = cards[fake.name].query_selector(".error").text_content()
        assert refused.startswith("slides.mp4: ") and "Traceback" not in refused

        for name in (clip.name, long.name):
            card = cards[name]
            job_id = card.get_attribute("data-job")
            api = httpx.get(f"{server.url}/v1/jobs/{job_id}").json()
            score = api["result"][0]["score"]
            assert card.query_selector(".score").text_content() == f"{score:.3f}"
            assert float(card.query_selector(".score").get_attribute("data-score")) == score
        timeline = httpx.get(f"{server.url}/v1/jobs/{cards[long.name].get_attribute('data-job')}").json()["result"][0]["timeline"]
        points = cards[long.name].query_selector(".curve polyline").get_attribute("points").split()
        assert len(points) == len(timeline["windows"]) >= 5  # the chart draws every window
        assert cards[long.name].query_selector(".timeline").is_visible()
        assert not cards[clip.name].query_selector(".timeline").is_visible()  # a 3-s clip: one score
        assert cards[clip.name].query_selector(".bars .track") is not None  # signed tier contributions
        wait_until(page, "[...document.querySelectorAll('.card .result:not([hidden]) img')].every(i => i.complete && i.naturalWidth > 0)",
                               timeout=30_000)
        assert len(cards[long.name].query_selector_all(".moments img")) == 2  # peak and trough frames
        wait_until(page, "document.querySelectorAll('#history tbody tr').length === 2")  # the refused upload is no job
        wait_until(page, "document.querySelector('#card-body dl') !== null")
        assert "memento10k" in page.text_content("#card-body")
        page.screenshot(path=str(ARTIFACTS / "serve_desktop.png"), full_page=True)

        page.set_viewport_size({"width": 390, "height": 844})
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling on a phone
        page.screenshot(path=str(ARTIFACTS / "serve_phone.png"), full_page=True)
        assert refused_by_policy == []
        page.close()
    finally:
        server.stop()
    assert (ARTIFACTS / "serve_desktop.png").stat().st_size > 10_000
