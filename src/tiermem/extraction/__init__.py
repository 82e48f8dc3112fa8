"""Feature extraction over many videos: decode each once, feed every requested tier, cache the rows.

    >>> from tiermem.extraction import extract
    >>> report = extract([videos], tiers=["low"], out=f"{out}/features", frames=9, size=128)
    >>> len(report.done), report.failed
    (6, [])
    >>> len(extract([videos], tiers=["low"], out=f"{out}/features", frames=9, size=128).skipped)  # cached
    6

What happens, in order:

1. *Inputs*: `extract` resolves its inputs once (`tiermem.inputs.find_videos`): directories
   are searched recursively for video files (``VIDEO_EXTENSIONS``), files given by name are
   taken as they are; entries that cannot be read (broken links, folders that cannot be
   listed) are kept so that they are reported. `extract_videos` takes files already resolved
   so and searches nothing. The video id is the file stem: files that share one are each
   recorded as failed, naming the others.
2. *Cache check*: each file's bytes are hashed; a video whose row in ``<out>/<tier>.parquet``
   has the same content hash and the same extraction key (tier config + fitted state + decode
   options) is skipped for that tier.
3. *Fitting*: a tier that learns something (the low tier's HOG PCA) uses, in this order, the
   state passed as ``state`` (e.g. fitted on a training split), the state saved in ``out`` if
   it was fitted on frames of the same size and resize mode, or else fits on an evenly spaced
   sample of at most ``fit_max_videos`` of the input videos (`tiermem.extraction.fitting`).
   The sample is extracted first, in the same pass as everything else: each video is decoded
   once, the tier leaves its fitted step out and hands over the rows it learns from, and once
   the sample is in, the tier is fitted, its state saved to ``out`` (a resumed run uses the
   same fit, so cache hits) and the sampled videos completed. Only where that cannot hold in
   memory (or frames follow the frame rate) is the sample decoded apart, at ``fit_frames``
   frames a video (more for fewer than 5 videos, so that one video can be fitted on).
   A damaged table or state file in ``out`` is renamed ``<name>.corrupt-<time>`` and rebuilt.
4. *Extraction*: batches of ``run.batch`` videos (fewer when their decoded frames would pass
   ``frame_memory``) go to ``run.workers`` processes (or run in this process when there is one);
   each video is decoded once and the one `Clip` is given to every tier that still needs it,
   through ``tier.transform_batch`` so network tiers batch inference.
   Rows come back to this process, which alone writes the store and flushes it every
   ``flush_every`` videos or ``flush_seconds`` seconds, so a killed run resumes where it stopped.

A file that fails (not a video, corrupt, a tier's `TiermemError`, its worker process killed)
is recorded with its reason and the run goes on (on Ray, `ray_pool`: a worker or node that
dies costs a retry of its tasks elsewhere, at most three times per task); weights that cannot load stop the run once,
and anything else is a bug and stops the run (after flushing what is done).
"""

from tiermem.extraction.report import ExtractReport
from tiermem.extraction.run import extract, extract_videos, extraction_key
from tiermem.run import ENGINES, Engine, Run

__all__ = [
    "ENGINES",
    "Engine",
    "ExtractReport",
    "Run",
    "extract",
    "extract_videos",
    "extraction_key",
]
