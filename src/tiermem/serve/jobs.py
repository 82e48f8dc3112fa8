"""Durable jobs: one SQLite database (WAL) that the web process and the worker processes share.

A job moves queued -> running -> done | failed. Workers claim the oldest queued job in one
write transaction, so two workers never take the same job. A result is also kept by the
video's content hash, the scoring options and the model, so an identical upload is answered
from it at once. A server killed mid-job leaves its job "running": the next start puts it
back in the queue (its worker died with the server), so it is scored once, to the end.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
#: A job whose worker died this many times is failed instead of being queued again.
MAX_ATTEMPTS = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    status TEXT NOT NULL,              -- queued, running, done, failed
    video_hash TEXT NOT NULL,          -- sha256 of the upload: its stored file's name
    filename TEXT NOT NULL,            -- the client's name, shown only, never a path
    size INTEGER NOT NULL,
    options TEXT NOT NULL,             -- canonical JSON: timeline, window, stride
    progress REAL NOT NULL DEFAULT 0,
    error TEXT,
    result TEXT,                       -- JSON, as `tiermem predict --json` prints it
    cached INTEGER NOT NULL DEFAULT 0, -- answered from an earlier identical job
    worker INTEGER,                    -- pid of the worker process scoring it
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created);
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,              -- video hash, options and model
    result TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

PUBLIC_FIELDS = ("id", "status", "filename", "size", "progress", "error", "cached", "created", "updated")


def options_key(options: dict[str, Any]) -> str:
    """The canonical JSON of scoring options (sorted keys): equal options, equal text."""
    return json.dumps(options, sort_keys=True, separators=(",", ":"))


class JobStore:
    """The jobs database at `path` (created on first use)."""

    def __init__(self, path: str | Path, model_key: str) -> None:
        self.path = Path(path)
        self.model_key = model_key  # results are reused only for the same model
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=30.0)
        try:
            db.execute("PRAGMA journal_mode=WAL")  # kept by the file: readers never wait for the writer
            db.executescript(_SCHEMA)
        finally:
            db.close()
        with self._db() as db:
            db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            found = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
        if found != str(SCHEMA_VERSION):
            raise RuntimeError(
                f"{self.path}: jobs database schema {found} (this tiermem reads {SCHEMA_VERSION})"
            )

    @contextmanager
    def _db(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        """This thread's connection for one unit of work. A write holds the write lock from its
        start (BEGIN IMMEDIATE: no deadlock between two upgrading readers) and commits on
        success; a read sees one snapshot and never waits for the writer (WAL)."""
        db = getattr(self._local, "db", None)
        if db is None:  # one connection per thread, kept: opening one costs more than a query
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            db.execute(
                "PRAGMA synchronous=NORMAL"
            )  # WAL: a power cut may lose the last commit, never corrupt
            db.row_factory = sqlite3.Row
            self._local.db = db
        db.execute("BEGIN IMMEDIATE" if write else "BEGIN DEFERRED")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            try:
                if db.in_transaction:
                    db.execute("ROLLBACK")
            except sqlite3.Error:  # the connection is unusable: the next unit of work opens another
                db.close()
                self._local.db = None
            raise

    def _result_key(self, video_hash: str, options: str) -> str:
        return f"{video_hash}|{options}|{self.model_key}"

    # -- the web process --------------------------------------------------------------------

    def submit_all(
        self, uploads: list[tuple[str, str, int]], options: dict[str, Any], max_pending: int
    ) -> list[dict[str, Any]] | None:
        """A job per (video hash, file name, size), all or none: None when they would take the
        jobs waiting past `max_pending`. A video scored before with these options is done at once."""
        ids = []
        with self._db() as db:
            waiting = db.execute(
                "SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')"
            ).fetchone()[0]
            if waiting + len(uploads) > max_pending:
                return None
            for video_hash, filename, size in uploads:
                ids.append(self._submit(db, video_hash, filename, size, options))
        return [self.get(i) or {} for i in ids]

    def _submit(
        self, db: sqlite3.Connection, video_hash: str, filename: str, size: int, options: dict[str, Any]
    ) -> str:
        """Insert one job in the open transaction; its id."""
        now, opts = time.time(), options_key(options)
        job_id = uuid.uuid4().hex
        hit = db.execute(
            "SELECT result FROM results WHERE key = ?", (self._result_key(video_hash, opts),)
        ).fetchone()
        status, result = ("done", hit["result"]) if hit else ("queued", None)
        db.execute(
            "INSERT INTO jobs (id, created, updated, status, video_hash, filename, size, options, progress, result, cached)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                job_id,
                now,
                now,
                status,
                video_hash,
                filename,
                size,
                opts,
                1.0 if hit else 0.0,
                result,
                int(bool(hit)),
            ),
        )
        return job_id

    def pending(self) -> int:
        """Jobs queued or running: what a new submission waits behind."""
        with self._db(write=False) as db:
            return int(
                db.execute("SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')").fetchone()[0]
            )

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self._db(write=False) as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            ahead = (
                db.execute(
                    "SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND created < ?", (row["created"],)
                ).fetchone()[0]
                if row is not None and row["status"] == "queued"
                else None
            )
        return _public(row, full=True, ahead=ahead) if row is not None else None

    def has_video(self, video_hash: str) -> bool:
        """Whether any job uses the upload with this hash."""
        with self._db(write=False) as db:
            return (
                db.execute("SELECT 1 FROM jobs WHERE video_hash = ? LIMIT 1", (video_hash,)).fetchone()
                is not None
            )

    def page(self, limit: int, offset: int, per_video: bool = False) -> tuple[int, list[dict[str, Any]]]:
        """(total, jobs newest first): one page of the job history, without results. With
        `per_video`, one row per distinct video (its newest job, with `submissions`: how many
        jobs scored the same bytes)."""
        with self._db(write=False) as db:
            if not per_video:
                total = int(db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0])
                rows = db.execute(
                    "SELECT * FROM jobs ORDER BY created DESC, id LIMIT ? OFFSET ?", (limit, offset)
                ).fetchall()
                return total, [_public(r, full=False) for r in rows]
            total = int(db.execute("SELECT COUNT(DISTINCT video_hash) FROM jobs").fetchone()[0])
            rows = db.execute(
                "SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY video_hash ORDER BY created DESC, id) AS rank, "
                "COUNT(*) OVER (PARTITION BY video_hash) AS submissions FROM jobs) WHERE rank = 1 "
                "ORDER BY created DESC, id LIMIT ? OFFSET ?",
                (limit, offset),
            ).fetchall()
        return total, [{**_public(r, full=False), "submissions": int(r["submissions"])} for r in rows]

    def delete_video(self, video_hash: str) -> int:
        """Remove every job of the video with this hash; how many there were."""
        with self._db() as db:
            return int(db.execute("DELETE FROM jobs WHERE video_hash = ?", (video_hash,)).rowcount)

    def delete(self, job_id: str) -> tuple[bool, str | None]:
        """(whether the job existed, its upload's hash when no other job needs that file)."""
        with self._db() as db:
            row = db.execute("SELECT video_hash FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return False, None
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            others = db.execute(
                "SELECT COUNT(*) FROM jobs WHERE video_hash = ?", (row["video_hash"],)
            ).fetchone()[0]
        return True, (row["video_hash"] if others == 0 else None)

    def recover(self) -> list[int]:
        """At start-up: put back in the queue the jobs a killed server left running; their
        workers' pids, for the caller to make sure none still runs."""
        with self._db() as db:
            pids = [
                r["worker"]
                for r in db.execute("SELECT DISTINCT worker FROM jobs WHERE status = 'running'")
                if r["worker"]
            ]
            db.execute(
                "UPDATE jobs SET status = 'queued', worker = NULL, progress = 0, attempts = MAX(0, attempts - 1), "
                "updated = ? WHERE status = 'running'",
                (time.time(),),
            )
        return pids

    def release(self, pid: int) -> None:
        """The server stops worker `pid` on purpose: its job goes back to the queue, the
        attempt not counted against the video."""
        with self._db() as db:
            db.execute(
                "UPDATE jobs SET status = 'queued', worker = NULL, progress = 0, attempts = MAX(0, attempts - 1), "
                "updated = ? WHERE status = 'running' AND worker = ?",
                (time.time(), pid),
            )

    def worker_died(self, pid: int) -> None:
        """A worker process ended mid-job: queue its job again, or fail it after MAX_ATTEMPTS."""
        with self._db() as db:
            now = time.time()
            db.execute(
                "UPDATE jobs SET status = 'failed', worker = NULL, updated = ?, error = ? "
                "WHERE status = 'running' AND worker = ? AND attempts >= ?",
                (now, f"the worker scoring this video stopped {MAX_ATTEMPTS} times", pid, MAX_ATTEMPTS),
            )
            db.execute(
                "UPDATE jobs SET status = 'queued', worker = NULL, progress = 0, updated = ? "
                "WHERE status = 'running' AND worker = ?",
                (now, pid),
            )

    def set_meta(self, key: str, value: str | None) -> None:
        """Store (or with None, forget) a service fact: the model card, a worker's last exit."""
        with self._db() as db:
            if value is None:
                db.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def get_meta(self, key: str) -> str | None:
        with self._db(write=False) as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row["value"] if row is not None else None

    # -- worker processes -------------------------------------------------------------------

    def claim(self, pid: int) -> dict[str, Any] | None:
        """Take the oldest queued job (not one whose video and options another worker is
        scoring right now: it waits for that result). Answers from the results when it can."""
        with self._db() as db:
            row = db.execute(
                "SELECT j.* FROM jobs j WHERE j.status = 'queued' AND NOT EXISTS (SELECT 1 FROM jobs r WHERE "
                "r.status = 'running' AND r.video_hash = j.video_hash AND r.options = j.options) ORDER BY j.created LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            hit = db.execute(
                "SELECT result FROM results WHERE key = ?",
                (self._result_key(row["video_hash"], row["options"]),),
            ).fetchone()
            if hit is not None:
                db.execute(
                    "UPDATE jobs SET status = 'done', result = ?, cached = 1, progress = 1, updated = ? WHERE id = ?",
                    (hit["result"], time.time(), row["id"]),
                )
                return {"id": row["id"], "done": True}
            db.execute(
                "UPDATE jobs SET status = 'running', worker = ?, attempts = attempts + 1, updated = ? WHERE id = ?",
                (pid, time.time(), row["id"]),
            )
        return {
            "id": row["id"],
            "video_hash": row["video_hash"],
            "filename": row["filename"],
            "options": json.loads(row["options"]),
            "done": False,
        }

    def progress(self, job_id: str, pid: int, share: float) -> None:
        with self._db() as db:
            db.execute(
                "UPDATE jobs SET progress = ?, updated = ? WHERE id = ? AND status = 'running' AND worker = ?",
                (share, time.time(), job_id, pid),
            )

    def finish(self, job_id: str, pid: int, result: Any, error: str | None, keep: bool) -> None:
        """Store a job's outcome, if worker `pid` still holds the job (one that was queued
        again meanwhile belongs to another worker now); `keep`: reuse it for identical uploads."""
        text = json.dumps(result) if result is not None else None
        with self._db() as db:
            row = db.execute(
                "SELECT video_hash, options FROM jobs WHERE id = ? AND status = 'running' AND worker = ?",
                (job_id, pid),
            ).fetchone()
            if row is None:
                return
            db.execute(
                "UPDATE jobs SET status = ?, result = ?, error = ?, progress = 1, worker = NULL, updated = ? "
                "WHERE id = ?",
                ("failed" if error else "done", text, error, time.time(), job_id),
            )
            if keep and text is not None and not error:
                db.execute(
                    "INSERT OR REPLACE INTO results VALUES (?, ?)",
                    (self._result_key(row["video_hash"], row["options"]), text),
                )


def _public(row: sqlite3.Row, full: bool, ahead: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {k: row[k] for k in PUBLIC_FIELDS}
    out["cached"] = bool(out["cached"])
    out["sha256"] = row["video_hash"]
    out["options"] = json.loads(row["options"])
    if full:
        if ahead is not None:
            out["queue_position"] = ahead + 1
        out["result"] = json.loads(row["result"]) if row["result"] else None
        for rec in out["result"] or []:  # a result may come from another upload of the same bytes
            rec["video_id"], rec["path"] = Path(row["filename"]).stem, row["filename"]
    return out


__all__ = ["JobStore", "MAX_ATTEMPTS", "options_key"]
