"""Decode, probe, stream and scan (the timeline path) every video in a folder with the installed
PyAV; run by `tests/test_pyav_latest.py` under another interpreter. PyAV 19 refuses to read a
stream of a closed container, which PyAV 18 allowed: this catches any use after close."""

import sys
from pathlib import Path

import av

from tiermem.extraction.windows import WindowPlan, scan
from tiermem.tiers import get_tier
from tiermem.video.decode import decode, probe
from tiermem.video.stream import VideoStream


def main(folder: Path) -> None:
    print("PyAV", av.__version__)
    assert int(av.__version__.split(".")[0]) >= 19, "run this with PyAV 19 or later"
    videos = sorted(folder.glob("*.mp4"))
    for path in videos:
        clip = decode(path, frames=9, size=64)
        meta = probe(path)
        frames = sum(1 for _ in VideoStream(path).frames())
        print(path.name, clip.frames.shape, round(meta.duration, 2), frames)
    # The timeline path: the low tier over windows, one pass (as `tiermem predict --timeline` scans).
    low = get_tier("low", pca_components=3, pca_frames_per_clip=5)
    low.fit([decode(p, frames=9, size=64) for p in videos])
    for path in videos[:3]:
        feats = scan(
            path, {"low": low}, WindowPlan(length=1.0, stride=0.5, frames=9), size=64, mode="stretch"
        )
        print("timeline", path.name, feats.values["low"].shape)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
