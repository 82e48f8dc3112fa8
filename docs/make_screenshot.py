"""Make docs/serve.png: the web page of `tiermem serve` (zero-shot) after scoring a sample clip and
the sample videos joined into 20 s, in Debian's chromium driven by Playwright.

    .venv/bin/python docs/make_screenshot.py [--out docs/serve.png]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from tiermem.video.samples import make_long_video, make_sample_clips

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from serving import Server, chromium  # noqa: E402 - the tests' helper: `tiermem serve` as a subprocess


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("serve.png"))
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
                page.wait_for_function("document.querySelectorAll('.card .score[data-score]').length === 2", timeout=300_000)
                page.wait_for_function("[...document.querySelectorAll('.card .result:not([hidden]) img')]"
                                       ".every(i => i.complete && i.naturalWidth > 0)")
                page.wait_for_timeout(500)
                page.screenshot(path=str(args.out), clip={"x": 0, "y": 0, "width": 1100, "height": 1000})
                browser.close()
        finally:
            server.stop()
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
