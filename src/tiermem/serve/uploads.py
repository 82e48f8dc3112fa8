"""Uploads: multipart bodies streamed to disk under their content hash, with limits.

The body is parsed as it arrives (python-multipart's streaming parser), each file written to a
temporary part file and hashed on the way. A file over the size limit stops the reading at
once. Stored files are named by their SHA-256, never by the client's file name, so no name can
reach outside the upload folder; part files of a refused or broken upload are removed.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

#: Files one request may carry.
MAX_FILES = 20
#: Characters of a form field's value kept (the options are short numbers and words).
MAX_FIELD_BYTES = 1024
#: Parts (files and fields) one request may carry.
MAX_PARTS = 64


class UploadError(Exception):
    """An upload refused: `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class StoredUpload:
    """One received file: the client's (display) name, its hash and size, where it is stored."""

    filename: str
    sha256: str
    size: int
    path: Path


@dataclass
class _Part:
    name: str = ""
    filename: str | None = None
    size: int = 0
    digest: "hashlib._Hash" = field(default_factory=hashlib.sha256)
    file: IO[bytes] | None = None
    temp: Path | None = None
    value: bytearray = field(default_factory=bytearray)


def display_name(filename: str) -> str:
    """The client's file name reduced to a safe label: its last path part, printable, 200 chars."""
    base = re.split(r"[\\/]", filename)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip() or "video"
    return base[:200]


def stored_path(uploads: Path, sha256: str) -> Path:
    return uploads / sha256[:2] / sha256


async def receive(
    body: AsyncIterator[bytes],
    content_type: str | None,
    content_length: str | None,
    uploads: Path,
    max_bytes: int,
) -> tuple[list[StoredUpload], dict[str, str]]:
    """(files, form fields) of a multipart/form-data body, files stored in `uploads`.

    Raises `UploadError`: 413 for a file over `max_bytes` (reading stops), 400 for a body that
    is not multipart form data or breaks off, 422 for a request without a file.
    """
    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data" or b"boundary" not in params:
        raise UploadError(400, "send the videos as multipart/form-data (curl -F file=@video.mp4)")
    if (
        content_length
        and content_length.isdigit()
        and int(content_length) > max_bytes * MAX_FILES + 1_000_000
    ):
        raise UploadError(
            413,
            f"the upload is {int(content_length) / 2**20:.0f} MiB; at most {max_bytes / 2**20:.3g} MiB "
            f"per video and {MAX_FILES} videos per request",
        )
    tmp_dir = uploads / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    parts: list[_Part] = []
    header: dict[str, bytearray] = {"field": bytearray(), "value": bytearray()}
    headers: dict[str, bytes] = {}  # raw bytes: a file name is UTF-8, which a str header would mangle

    def on_part_begin() -> None:
        headers.clear()
        if len(parts) >= MAX_PARTS:
            raise UploadError(413, f"at most {MAX_PARTS} form parts per request")
        parts.append(_Part())

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header["value"] += data[start:end]

    def on_header_end() -> None:
        headers[header["field"].decode("latin-1").lower()] = bytes(header["value"])
        header["field"], header["value"] = bytearray(), bytearray()

    def on_headers_finished() -> None:
        part = parts[-1]
        _, disp = parse_options_header(headers.get("content-disposition", b""))
        part.name = disp.get(b"name", b"").decode("utf-8", "replace")
        if disp.get(b"filename"):  # an empty file input sends filename="": no file
            if sum(p.filename is not None for p in parts) >= MAX_FILES:
                raise UploadError(413, f"at most {MAX_FILES} videos per request")
            part.filename = display_name(disp[b"filename"].decode("utf-8", "replace"))
            part.temp = tmp_dir / f"{uuid.uuid4().hex}.part"
            part.file = part.temp.open("wb")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        part = parts[-1]
        chunk = data[start:end]
        part.size += len(chunk)
        if part.file is None:
            if part.size > MAX_FIELD_BYTES:
                raise UploadError(400, f"form field {part.name!r} is longer than {MAX_FIELD_BYTES} bytes")
            part.value += chunk
            return
        if part.size > max_bytes:
            raise UploadError(
                413, f"{part.filename}: larger than the {max_bytes / 2**20:.3g} MiB limit (--max-upload-mb)"
            )
        part.digest.update(chunk)
        part.file.write(chunk)

    def on_part_end() -> None:
        part = parts[-1]
        if part.file is not None:
            part.file.close()

    parser = MultipartParser(
        params[b"boundary"],
        {  # type: ignore[arg-type]
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        try:
            async for chunk in body:
                parser.write(chunk)
            parser.finalize()
        except FormParserError as exc:
            raise UploadError(400, f"the multipart body could not be read ({exc})") from None
        except (OSError, ClientDisconnect) as exc:  # the client went away mid-body, or the disk is full
            raise UploadError(400, f"the upload broke off ({exc or type(exc).__name__})") from None
        files = [p for p in parts if p.filename is not None]
        if not files:
            raise UploadError(422, "no video in the request: send at least one file field")
        if any(p.file is not None and not p.file.closed for p in files):
            raise UploadError(400, "the upload broke off before its last file ended")
        stored = []
        for p in files:
            sha = p.digest.hexdigest()
            final = stored_path(uploads, sha)
            final.parent.mkdir(parents=True, exist_ok=True)
            assert p.temp is not None and p.filename is not None
            if final.exists():
                p.temp.unlink()
            else:
                os.replace(p.temp, final)
            stored.append(StoredUpload(p.filename, sha, p.size, final))
        return stored, {p.name: p.value.decode("utf-8", "replace") for p in parts if p.filename is None}
    finally:  # a refused or broken upload leaves no part file behind
        for p in parts:
            if p.file is not None and not p.file.closed:
                p.file.close()
            if p.temp is not None and p.temp.exists():
                p.temp.unlink()


__all__ = ["MAX_FILES", "StoredUpload", "UploadError", "display_name", "receive", "stored_path"]
