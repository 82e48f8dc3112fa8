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
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the browser test needs playwright: pip install playwright"
)

from serving import Server, chromium  # noqa: E402

from tiermem.video.samples import make_long_video  # noqa: E402

#: Marked slow (a real server and a real browser): `make test-fast` leaves them out; CI runs them.
pytestmark = pytest.mark.slow

ARTIFACTS = Path(os.environ.get("TIERMEM_TEST_ARTIFACTS", "test-artifacts"))
#: Milliseconds the page may take to show all results (three jobs, one worker).
RESULTS_TIMEOUT_MS = 240_000


def wait_until(page: Any, expression: str, timeout: int = 30_000, arg: Any = None) -> None:
    """Poll a JavaScript expression (a function of `arg`, when given) until it is true.
    `page.wait_for_function` evaluates a string, which the page's Content-Security-Policy (no
    eval) forbids; `page.evaluate` is not."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression, arg):
        assert time.monotonic() < deadline, f"not true after {timeout} ms: {expression}"
        time.sleep(0.1)


def check_the_curve(page: Any, card: Any, timeline: dict[str, Any], clip_card: Any) -> None:
    """What the long video's card says: its numbers named, ticks, gridlines and a legend, a
    window's score and frame on hover, the window's details on a click."""
    windows, summary = timeline["windows"], timeline["summary"]
    assert (
        card.query_selector(".score-label").text_content()
        == f"mean over {len(windows)} windows of {summary['window_s']:g} s"
    )
    assert "recognises this video" in card.query_selector(".meaning").text_content()
    assert "training videos" in card.query_selector(".percentile").text_content()
    assert clip_card.query_selector(".score-label").text_content() == "one score for the whole video"
    # a 12-s video: time ticks every 5 s, a score axis of stated gridlines around the scores
    assert [t.text_content() for t in card.query_selector_all(".curve .xtick")] == ["0 s", "5 s", "10 s"]
    ticks = [float(t.text_content()) for t in card.query_selector_all(".curve .ytick")]
    assert len(ticks) >= 3 and len(card.query_selector_all(".curve .grid")) == len(ticks)
    assert ticks[0] <= min(w["score"] for w in windows) and ticks[-1] >= max(w["score"] for w in windows)
    legend = [li.text_content() for li in card.query_selector_all(".legend li")]
    assert [text.split(" ")[0] for text in legend[:3]] == ["peak", "trough", "hook"]
    assert f"{summary['peak']['score']:.3f}" in legend[0] and "median" in legend[3]
    # hover the curve's right end: the last window, its score and its frame
    curve = card.query_selector(".curve")
    curve.scroll_into_view_if_needed()
    box = curve.bounding_box()
    page.mouse.move(box["x"] + box["width"] - 14, box["y"] + box["height"] / 2)
    last = windows[-1]
    tip = card.query_selector(".tip")
    assert tip.is_visible() and tip.query_selector(".tip-text").text_content().endswith(
        f": {last['score']:.3f}"
    )
    wait_until(
        page,
        "c => { const i = c.querySelector('.tip img'); return i.complete && i.naturalWidth > 0; }",
        arg=card,
    )
    page.mouse.click(box["x"] + box["width"] - 14, box["y"] + box["height"] / 2)
    detail = card.query_selector(".window-detail")
    assert detail.is_visible() and detail.query_selector(".window-title").text_content().endswith(
        f"{last['score']:.3f}"
    )
    assert detail.query_selector(".bars .track") is not None  # the window's tier contributions
    detail.query_selector(".show-heat").click()  # where in the frame: an overlay computed on request
    wait_until(
        page,
        "c => { const i = c.querySelector('.window-heat'); return !i.hidden && i.complete && i.naturalWidth > 0; }",
        timeout=120_000,
        arg=card,
    )
    assert "Green regions raise the score" in detail.query_selector(".heat-note").text_content()
    card.query_selector(".moments button").click()  # the peak's own window, from its frame
    peak = timeline["summary"]["peak"]
    assert detail.query_selector(".window-title").text_content().endswith(f"{peak['score']:.3f}")
    assert detail.query_selector(".window-heat").is_hidden()  # a map is asked for again per window


def check_compare(page: Any, server: Server) -> None:
    """Both History rows picked and compared: one curve each on one chart, a table with each
    video's mean score as the API gives it."""
    assert page.is_disabled("#compare-picked")
    for box in page.query_selector_all("#history .pick"):
        box.check()
    page.click("#compare-picked")
    wait_until(page, "document.querySelectorAll('#compare-table tbody tr').length === 2")
    assert (
        page.is_visible("#compare") and len(page.query_selector_all("#compare-curve polyline.compared")) == 2
    )
    assert len(page.query_selector_all("#compare-curve .xtick")) >= 2
    for row in page.query_selector_all("#compare-table tbody tr"):
        job = httpx.get(f"{server.url}/v1/jobs/{row.get_attribute('data-job')}").json()
        cells = [td.text_content() for td in row.query_selector_all("td")]
        assert cells[0] == job["filename"] and cells[1] == f"{job['result'][0]['score']:.3f}"
        assert cells[4].endswith("%")
    assert "training median" in page.text_content("#compare-median")
    page.query_selector("#compare").screenshot(path=str(ARTIFACTS / "serve_compare.png"))


def check_export_share_and_history(browser: Any, page: Any, server: Server, card: Any, clip: Path) -> None:
    """Downloads equal to the API's export, a job's address restoring its card in a fresh
    browser, one History row per video, and deleting a video from the page."""
    job_id = card.get_attribute("data-job")
    for kind in ("csv", "json"):
        with page.expect_download() as download:
            card.query_selector(f".download-{kind}").click()
        saved = Path(download.value.path()).read_bytes()
        assert saved == httpx.get(f"{server.url}/v1/jobs/{job_id}/export", params={"format": kind}).content, (
            kind
        )
        assert download.value.suggested_filename == f"joined_12s.tiermem.{kind}"
    assert card.query_selector(".share").get_attribute("href") == f"/jobs/{job_id}"
    fresh = browser.new_context().new_page()
    fresh.goto(f"{server.url}/jobs/{job_id}")
    wait_until(fresh, "document.querySelector('.card .score[data-score]') !== null")
    assert fresh.text_content(".card .score") == card.query_selector(".score").text_content()
    assert fresh.text_content(".card .name") == "joined_12s.mp4"
    fresh.context.close()
    # the clip again: still one History row for it, saying it was submitted twice
    page.set_input_files("#files", [str(clip)])
    wait_until(
        page,
        "[...document.querySelectorAll('#history tbody tr')].some(r => r.textContent.includes('submitted 2 times'))",
        timeout=RESULTS_TIMEOUT_MS,
    )
    assert len(page.query_selector_all("#history tbody tr")) == 2
    check_compare(page, server)
    page.once("dialog", lambda dialog: dialog.accept())
    row = next(r for r in page.query_selector_all("#history tbody tr") if clip.name in r.text_content())
    row.query_selector("button").click()
    wait_until(page, "document.querySelectorAll('#history tbody tr').length === 1")
    assert httpx.get(f"{server.url}/v1/jobs").json()["total"] == 1  # both jobs of the clip are gone


@pytest.fixture(scope="module")
def browser():
    exe = chromium()
    if exe is None:
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run installs it)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


def test_page_uploads_and_shows_results(
    browser: Any, fitted, sample_clip_paths: list[Path], tmp_path: Path
) -> None:
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
        page.on(
            "console",
            lambda m: refused_by_policy.append(m.text) if "Content Security Policy" in m.text else None,
        )
        page.goto(server.url)
        for _ in range(12):  # keyboard: the file picker is reachable with Tab
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement && document.activeElement.id") == "files":
                break
        assert page.evaluate("document.activeElement.id") == "files"
        assert page.get_by_label("Timeline").is_visible()  # the options are labelled controls
        page.set_input_files("#files", [str(clip), str(long), str(fake)])
        wait_until(
            page,
            "document.querySelectorAll('.card .score[data-score]').length === 2",
            timeout=RESULTS_TIMEOUT_MS,
        )
        wait_until(
            page, "[...document.querySelectorAll('.card .error')].some(e => !e.hidden && e.textContent)"
        )
        cards = {
            page.evaluate("c => c.querySelector('.name').textContent", c): c
            for c in page.query_selector_all(".card")
        }
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
        timeline = httpx.get(f"{server.url}/v1/jobs/{cards[long.name].get_attribute('data-job')}").json()[
            "result"
        ][0]["timeline"]
        points = cards[long.name].query_selector(".curve polyline").get_attribute("points").split()
        assert len(points) == len(timeline["windows"]) >= 5  # the chart draws every window
        assert cards[long.name].query_selector(".timeline").is_visible()
        assert not cards[clip.name].query_selector(".timeline").is_visible()  # a 3-s clip: one score
        assert cards[clip.name].query_selector(".bars .track") is not None  # signed tier contributions
        wait_until(
            page,
            "[...document.querySelectorAll('.card .result:not([hidden]) :is(.thumb, .moments img)')].every(i => i.complete && i.naturalWidth > 0)",
            timeout=30_000,
        )
        assert len(cards[long.name].query_selector_all(".moments img")) == 2  # peak and trough frames
        check_the_curve(page, cards[long.name], timeline, cards[clip.name])
        wait_until(
            page, "document.querySelectorAll('#history tbody tr').length === 2"
        )  # the refused upload is no job
        wait_until(page, "document.querySelector('#card-body dl') !== null")
        assert "memento10k" in page.text_content("#card-body")
        page.screenshot(path=str(ARTIFACTS / "serve_desktop.png"), full_page=True)

        page.set_viewport_size({"width": 390, "height": 844})
        assert (
            page.evaluate("document.documentElement.scrollWidth") <= 390
        )  # no sideways scrolling on a phone
        page.screenshot(path=str(ARTIFACTS / "serve_phone.png"), full_page=True)
        page.set_viewport_size({"width": 1366, "height": 900})
        check_export_share_and_history(browser, page, server, cards[long.name], clip)
        assert refused_by_policy == []
        page.close()
    finally:
        server.stop()
    assert (ARTIFACTS / "serve_desktop.png").stat().st_size > 10_000


def test_a_single_window_is_one_score_and_a_key_is_kept_for_the_session_only(
    browser: Any, fitted, sample_clip_paths: list[Path], tmp_path: Path
) -> None:
    _, model, _ = fitted
    server = Server(model, tmp_path / "data", tmp_path / "server.log", extra=("--api-key", "s3cret")).start()
    try:
        context = browser.new_context(viewport={"width": 390, "height": 844})
        page = context.new_page()
        page.goto(server.url)
        wait_until(page, "!document.querySelector('#notice').hidden")  # history needs the key
        assert "API key" in page.text_content("#notice") and page.is_visible("#api-key")
        page.fill("#api-key", "s3cret")
        page.dispatch_event("#api-key", "change")
        wait_until(page, "document.querySelector('#notice').hidden")  # the refusal no longer stands
        assert page.evaluate("sessionStorage.getItem('tiermem-api-key')") == "s3cret"
        assert page.evaluate("localStorage.getItem('tiermem-api-key')") is None
        # the time left follows the pace since the first progress seen: 40% in 10 s, 50% to go
        words = page.evaluate("""() => { const d = document.createElement('div');
            d.dataset.firstProgress = JSON.stringify([Date.now() / 1000 - 10, 0.1]); return runningWords(d, 0.5); }""")
        assert words == "scoring 50% · about 13 s left"
        assert page.evaluate("runningWords(document.createElement('div'), 0)").startswith("starting")
        page.select_option("#timeline", "true")
        page.set_input_files("#files", [str(sample_clip_paths[1])])
        wait_until(
            page, "document.querySelector('.card .score[data-score]') !== null", timeout=RESULTS_TIMEOUT_MS
        )
        card = page.query_selector(".card")
        job = httpx.get(
            f"{server.url}/v1/jobs/{card.get_attribute('data-job')}", headers={"X-API-Key": "s3cret"}
        ).json()
        windows = job["result"][0]["timeline"]["windows"]
        assert len(windows) == 1  # a 3-s clip, timeline asked for: one window, shown as one score
        assert card.query_selector(".score").text_content() == f"{windows[0]['score']:.3f}"
        assert card.query_selector(".score-label").text_content().startswith("one window of")
        assert not card.query_selector(".timeline").is_visible()
        page.screenshot(path=str(ARTIFACTS / "serve_single_window_phone.png"), full_page=True)
        context.close()
        fresh = browser.new_context().new_page()  # a new session: nothing remembered
        fresh.goto(server.url)
        assert (
            fresh.evaluate(
                "sessionStorage.getItem('tiermem-api-key') || localStorage.getItem('tiermem-api-key')"
            )
            is None
        )
        fresh.context.close()
    finally:
        server.stop()


def test_the_api_docs_render_with_the_network_blocked(browser: Any, tmp_path: Path) -> None:
    """/docs (swagger-ui) and /redoc from the package's own files: nothing leaves the machine."""
    server = Server("zero-shot", tmp_path / "data", tmp_path / "server.log").start()
    try:
        context = browser.new_context()
        outside: list[str] = []

        def only_this_server(route: Any) -> None:
            if route.request.url.startswith(server.url):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        context.route("**/*", only_this_server)
        page = context.new_page()
        page.goto(f"{server.url}/docs")
        wait_until(page, "document.querySelector('.swagger-ui .info .title') !== null")
        assert "tiermem" in page.text_content(".swagger-ui .info .title")
        wait_until(page, "document.querySelectorAll('.opblock').length >= 8")  # the operations are listed
        page.goto(f"{server.url}/redoc")
        wait_until(
            page,
            "document.querySelector('h1') !== null && document.querySelector('h1').textContent.includes('tiermem')",
        )
        assert outside == []
        context.close()
    finally:
        server.stop()
