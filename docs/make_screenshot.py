"""Make the screenshots of `tiermem serve` in docs/: the page (zero-shot, ResMem's real scores)
after scoring a sample clip and the sample videos joined into 20 s, in Debian's chromium driven
by Playwright:

- serve.png: the joined video's card (score and what it means, the curve with its legend);
- serve_window.png: one window opened from the curve, with where in its frame the score comes from;
- serve_compare.png: both videos compared.

    .venv/bin/python docs/make_screenshot.py [--out-dir docs]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from tiermem.video.samples import make_long_video, make_sample_clips

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from serving import Server, chromium  # noqa: E402 - the tests' helper: `tiermem serve` as a subprocess


def wait_until(page, expression: str, arg=None, timeout_s: float = 300.0) -> None:
    """Poll an expression in the page (its Content-Security-Policy forbids wait_for_function's eval)."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression, arg):
        if time.monotonic() > deadline:
            raise SystemExit(f"the page did not get there in {timeout_s:.0f} s: {expression}")
        time.sleep(0.2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out-dir", type=Path, default=Path(__file__).parent)
    args = ap.parse_args()
    exe = chromium()
    if exe is None:
        raise SystemExit("chromium is not installed: apt-get install chromium")
    with tempfile.TemporaryDirectory(prefix="tiermem-screenshot-") as tmp:
        work = Path(tmp)
        clip = make_sample_clips(work / "clips")[1]
        long = make_long_video(work / "advert_20s.mp4", seconds=20, size=(640, 360))
        server = Server("zero-shot", work / "data", work / "server.log").start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1100, "height": 1000})
                page.goto(server.url)
                page.set_input_files("#files", [str(clip), str(long)])
                wait_until(page, "document.querySelectorAll('.card .score[data-score]').length === 2")
                wait_until(
                    page,
                    "[...document.querySelectorAll('.card .result:not([hidden]) :is(.thumb, .moments img)')]"
                    ".every(i => i.complete && i.naturalWidth > 0)",
                )
                card = next(
                    c
                    for c in page.query_selector_all(".card")
                    if "advert" in c.query_selector(".name").text_content()
                )
                curve = card.query_selector(".curve")
                curve.scroll_into_view_if_needed()
                box = curve.bounding_box()
                page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] / 2)  # open a window
                page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] / 2)
                wait_until(
                    page,
                    "c => { const i = c.querySelector('.tip img'); return i.complete && i.naturalWidth > 0; }",
                    card,
                )
                shot(card, args.out_dir / "serve.png")
                page.mouse.move(0, 0)
                detail = card.query_selector(".window-detail")
                detail.query_selector(".show-heat").click()
                wait_until(
                    page,
                    "c => { const i = c.querySelector('.window-heat'); return !i.hidden && i.complete && i.naturalWidth > 0; }",
                    card,
                )
                shot(detail, args.out_dir / "serve_window.png")
                for pick in page.query_selector_all("#history .pick"):
                    pick.check()
                page.click("#compare-picked")
                wait_until(page, "document.querySelectorAll('#compare-table tbody tr').length === 2")
                shot(page.query_selector("#compare"), args.out_dir / "serve_compare.png")
                browser.close()
        finally:
            server.stop()


def shot(element, path: Path) -> None:
    element.screenshot(path=str(path))
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
