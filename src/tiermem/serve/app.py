"""The HTTP API (`/v1`) and the web page (`/`), as one FastAPI app.

Handlers only read and write the jobs database and the upload folder; scoring runs in the
worker processes. Every refusal is a JSON body ``{"detail": "<one line>"}`` with its status:
400 malformed body, 401 missing or wrong API key, 404 unknown job, 413 upload too large,
422 not a video or bad options, 429 queue full, 503 model still loading.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import HTTPException
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool

from tiermem import __version__
from tiermem.predictions import rows_of_records
from tiermem.serve.door import Door
from tiermem.serve.heatmaps import Heatmaps
from tiermem.serve.jobs import JobStore
from tiermem.serve.settings import ServeSettings
from tiermem.serve.uploads import UploadError, receive, stored_path
from tiermem.serve.worker import WorkerPool

PAGE = files("tiermem.serve") / "page"

#: The multipart form `POST /v1/jobs` reads (parsed as a stream, so described here for /docs).
UPLOAD_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "one or more videos (repeat the field)",
                        },
                        "timeline": {
                            "type": "string",
                            "enum": ["auto", "true", "false"],
                            "default": "auto",
                            "description": "score every window (auto: videos longer than 1.5 windows)",
                        },
                        "window": {
                            "type": "number",
                            "description": "window length, seconds (default: the model's clip length)",
                        },
                        "stride": {
                            "type": "number",
                            "description": "seconds between window starts (default: about 1)",
                        },
                    },
                }
            }
        },
    }
}


def _options(form: dict[str, str]) -> dict[str, Any]:
    """Scoring options from the form fields; 422 for a value that is not one."""
    timeline = form.get("timeline", "auto").strip().lower() or "auto"
    if timeline not in ("auto", "true", "false"):
        raise HTTPException(422, f"timeline must be auto, true or false, got {timeline!r}")
    out: dict[str, Any] = {"timeline": None if timeline == "auto" else timeline == "true"}
    for name in ("window", "stride"):
        text = form.get(name, "").strip()
        try:
            value = float(text) if text else None
        except ValueError:
            raise HTTPException(422, f"{name} must be a number of seconds, got {text!r}") from None
        if value is not None and not (math.isfinite(value) and value > 0):
            raise HTTPException(422, f"{name} must be a positive number of seconds, got {text}")
        out[name] = value
    return out


#: What each refusal means, as the API documents it: every one is JSON {"detail": "<one line>"}.
REFUSALS = {
    400: "not multipart form data, or a Host this server does not answer for",
    401: "a missing or wrong API key (when the server has one)",
    403: "a page of another site changing state without the key",
    404: "no such job or video",
    409: "the job is not finished",
    413: "a video over --max-upload-mb, or too many in one request",
    422: "not a video (with the decoder's reason), or a bad option",
    429: "the queue is full (see Retry-After)",
    503: "the model is still loading (see Retry-After)",
}


def refusals(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses of the refusals `codes`: a one-line JSON detail each."""
    detail = {"type": "object", "properties": {"detail": {}}, "required": ["detail"]}
    return {
        code: {"description": REFUSALS[code], "content": {"application/json": {"schema": detail}}}
        for code in codes
    }


def create_app(settings: ServeSettings) -> FastAPI:
    """The app for `settings`; its lifespan starts and stops the worker processes."""
    settings.check_model()
    settings.uploads.mkdir(parents=True, exist_ok=True)
    store = JobStore(settings.database, settings.model_key())
    pool = WorkerPool(settings, store)
    heatmaps = Heatmaps(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        pool.start()
        try:
            yield
        finally:
            pool.stop()

    # The API pages (swagger-ui, ReDoc) from files installed with the package: no CDN.
    app = FastAPIOffline(
        title="tiermem",
        version=__version__,
        lifespan=lifespan,
        responses=refusals(400, 401, 403),  # any request: a Host not served, no key, a foreign page
        description="Video memorability: submit videos, poll for scores, explanations and timelines.",
    )
    app.state.settings, app.state.store, app.state.pool = settings, store, pool
    door = Door(settings.host, settings.allowed_hosts, settings.cors_origins, settings.api_key)
    app.middleware("http")(door)
    if settings.cors_origins:  # off unless asked for
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["X-API-Key", "Authorization", "Content-Type"],
        )

    def authorised(request: Request) -> None:
        if settings.api_key is not None and not door.has_key(request):
            raise HTTPException(
                401,
                "missing or wrong API key: send it in the X-API-Key header",
                headers={"WWW-Authenticate": "Bearer"},
            )

    def job_or_404(job_id: str) -> dict[str, Any]:
        job = store.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        return job

    @app.get("/healthz", tags=["service"])
    def healthz(request: Request) -> dict[str, Any]:
        """Liveness: the workers running, the jobs waiting, whether the model is loaded (with a
        key set, callers without it hear only that the service answers)."""
        if settings.api_key is not None and not door.has_key(request):
            return {"status": "ok"}
        alive = pool.alive()
        return {
            "status": "ok" if alive == settings.workers else "degraded",
            "workers": alive,
            "last_worker_exit": pool.last_exit,
            "pending": store.pending(),
            "model_loaded": store.get_meta("card") is not None,
            "max_upload_mb": settings.max_upload_mb,
            "version": __version__,
        }

    @app.get("/v1/model", tags=["model"], dependencies=[Depends(authorised)], responses=refusals(503))
    def model() -> Response:
        """The model card: training data, validation figures with 95% CIs, tiers, window, licences."""
        card = store.get_meta("card")
        if card is None:
            return JSONResponse(
                {"detail": "the model is still loading; try again in a few seconds"},
                503,
                headers={"Retry-After": "5"},
            )
        return Response(card, media_type="application/json")

    @app.post(
        "/v1/jobs",
        status_code=202,
        tags=["jobs"],
        openapi_extra=UPLOAD_FORM,
        dependencies=[Depends(authorised)],
        responses=refusals(413, 422, 429),
    )
    async def submit(request: Request) -> dict[str, Any]:
        """Upload one or more videos (field `file`, repeated) to score; answers with a job per video."""
        if await run_in_threadpool(store.pending) >= settings.max_queue:
            raise HTTPException(
                429,
                f"the queue is full ({settings.max_queue} jobs waiting); try again later",
                headers={"Retry-After": "30"},
            )
        try:
            uploads, form = await receive(
                request.stream(),
                request.headers.get("content-type"),
                request.headers.get("content-length"),
                settings.uploads,
                settings.max_upload_bytes,
            )
        except UploadError as exc:
            headers = {"Connection": "close"} if exc.status == 413 else None
            raise HTTPException(exc.status, str(exc), headers=headers) from None
        try:
            options = _options(form)
            await run_in_threadpool(_check_videos, uploads)
            jobs = await run_in_threadpool(
                store.submit_all,
                [(u.sha256, u.filename, u.size) for u in uploads],
                options,
                settings.max_queue,
            )
            if jobs is None:
                raise HTTPException(
                    429,
                    f"the queue is full ({settings.max_queue} jobs waiting); try again later",
                    headers={"Retry-After": "30"},
                )
        except BaseException:  # refused: files no job uses are not kept
            await run_in_threadpool(_forget, store, uploads)
            raise
        return {"jobs": jobs}

    @app.get("/v1/jobs", tags=["jobs"], dependencies=[Depends(authorised)])
    def list_jobs(
        limit: int = Query(20, ge=1, le=200),
        offset: int = Query(0, ge=0),
        per_video: bool = Query(
            False, description="one row per distinct video: its newest job, with `submissions`"
        ),
    ) -> dict[str, Any]:
        """Recent jobs, newest first, without their results."""
        total, jobs = store.page(limit, offset, per_video)
        return {"total": total, "limit": limit, "offset": offset, "jobs": jobs}

    @app.get("/v1/jobs/{job_id}", tags=["jobs"], dependencies=[Depends(authorised)], responses=refusals(404))
    def get_job(job_id: str) -> dict[str, Any]:
        """Status (queued, running with progress, done, failed with its reason) and, when done,
        the JSON of `tiermem predict --json`, timeline included."""
        return job_or_404(job_id)

    @app.delete(
        "/v1/jobs/{job_id}",
        status_code=204,
        tags=["jobs"],
        dependencies=[Depends(authorised)],
        responses=refusals(404),
    )
    def delete_job(job_id: str) -> Response:
        """Remove the job, and its upload when no other job uses the same video."""
        found, orphan = store.delete(job_id)
        if not found:
            raise HTTPException(404, f"no job {job_id}")
        if orphan:
            stored_path(settings.uploads, orphan).unlink(missing_ok=True)
        return Response(status_code=204)

    @app.get(
        "/v1/jobs/{job_id}/export",
        tags=["jobs"],
        dependencies=[Depends(authorised)],
        responses={200: {"content": {"text/csv": {}, "application/json": {}}}, **refusals(404, 409, 422)},
    )
    def export(job_id: str, format: str = Query("json", pattern="^(json|csv)$")) -> Response:
        """A finished job as a file to keep or send: `json`, the job as GET /v1/jobs/{id} gives it,
        or `csv`, the rows of `tiermem predict --csv` (one per window of a timeline)."""
        job = job_or_404(job_id)
        if job["status"] != "done":
            raise HTTPException(409, f"job {job_id} is {job['status']}: only a finished job can be exported")
        name = f"{Path(job['filename']).stem}.tiermem.{format}"
        disposition = {"Content-Disposition": f'attachment; filename="{_ascii(name)}"'}
        if format == "json":
            return Response(json.dumps(job, indent=1), media_type="application/json", headers=disposition)
        return Response(
            rows_of_records(job["result"]).to_csv(index=False), media_type="text/csv", headers=disposition
        )

    @app.delete(
        "/v1/videos/{sha256}",
        status_code=204,
        tags=["jobs"],
        dependencies=[Depends(authorised)],
        responses=refusals(404),
    )
    def delete_video(sha256: str) -> Response:
        """Remove every job of one video (by its content hash, as jobs give it) and its upload."""
        if not re.fullmatch("[0-9a-f]{64}", sha256) or not store.delete_video(sha256):
            raise HTTPException(404, f"no job of video {sha256}")
        stored_path(settings.uploads, sha256).unlink(missing_ok=True)
        return Response(status_code=204)

    @app.get(
        "/v1/jobs/{job_id}/heatmap",
        tags=["jobs"],
        dependencies=[Depends(authorised)],
        responses={200: {"content": {"application/json": {}, "image/png": {}}}, **refusals(404, 422)},
    )
    def heatmap(
        job_id: str,
        t: float = Query(..., ge=0.0, description="seconds from the start: the window around it is mapped"),
        grid: int = Query(5, ge=2, le=8),
        format: str = Query("json", pattern="^(json|png)$"),
    ) -> Response:
        """Where in the frame the score of the window around `t` comes from: each cell of a
        `grid` x `grid` lattice greyed out in every frame of the window and the window scored
        again (`effect`: that score minus the window's; negative where the region raises the
        score). `png`: the window's frame with the map laid over it (green raises, red lowers).
        Computed on request in the server process (seconds; about 20 s for zero-shot on a CPU)."""
        from tiermem.errors import TiermemError

        job = job_or_404(job_id)
        try:
            made = heatmaps.get(stored_path(settings.uploads, job["sha256"]), job["sha256"], t, grid)
        except TiermemError as exc:
            raise HTTPException(422, str(exc).replace(str(settings.uploads), "uploads")) from None
        if format == "png":
            return Response(
                made.png(), media_type="image/png", headers={"Cache-Control": "private, max-age=3600"}
            )
        return JSONResponse({**made.records(), "video": job["filename"]})

    @app.get(
        "/v1/jobs/{job_id}/frame",
        tags=["jobs"],
        dependencies=[Depends(authorised)],
        responses={200: {"content": {"image/jpeg": {}}}, **refusals(404, 422)},
    )
    def frame(
        job_id: str, t: float = Query(0.0, ge=0.0), width: int = Query(320, ge=16, le=1280)
    ) -> Response:
        """The frame on screen at `t` seconds of the job's video, as a JPEG (thumbnails)."""
        import cv2

        from tiermem.errors import VideoDecodeError
        from tiermem.video.stream import frame_at

        job = job_or_404(job_id)
        try:
            rgb = frame_at(stored_path(settings.uploads, job["sha256"]), t, size=width)
        except (VideoDecodeError, ValueError) as exc:
            raise HTTPException(422, str(exc).replace(str(settings.uploads), "uploads")) from None
        ok, jpeg = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 80])
        return Response(
            jpeg.tobytes(), media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"}
        )

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(str(PAGE / "index.html"), media_type="text/html")

    @app.get("/jobs/{job_id}", include_in_schema=False)
    def shared_job(job_id: str) -> FileResponse:
        """A job's own address: the page, which opens the job's card."""
        return FileResponse(str(PAGE / "index.html"), media_type="text/html")

    app.mount("/static", StaticFiles(directory=str(PAGE)), name="static")
    return app


def _ascii(name: str) -> str:
    """A file name safe inside a Content-Disposition header: ASCII, no quotes or separators."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in name)


def _forget(store: JobStore, uploads: list[Any]) -> None:
    for up in uploads:
        if not store.has_video(up.sha256):
            up.path.unlink(missing_ok=True)


def _check_videos(uploads: list[Any]) -> None:
    """422 naming the first upload that is not a video the decoder can read."""
    from tiermem.errors import VideoDecodeError
    from tiermem.video.decode import probe

    for up in uploads:
        try:
            meta = probe(up.path)
        except VideoDecodeError as exc:
            raise HTTPException(422, f"{up.filename}: {exc.cause}") from None
        if not meta.frame_count:
            raise HTTPException(422, f"{up.filename}: the video has no frames")


__all__ = ["create_app"]
