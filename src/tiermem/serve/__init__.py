"""`tiermem serve`: an HTTP API and a web page for scoring videos, with durable jobs.

    tiermem serve --model models/m10k --data /var/lib/tiermem --workers 2

- `settings`: what the service runs with (`ServeSettings`);
- `app`: the FastAPI app (`/v1` API, `/docs`, the page at `/`);
- `jobs`: the SQLite (WAL) job queue and result cache;
- `uploads`: streamed multipart uploads stored by content hash;
- `worker`: the worker processes that load the model once and score jobs;
- `page/`: the web page (plain HTML, CSS and JavaScript, no build step).

Needs the optional extra: ``pip install 'tiermem[serve]'``.
"""

from __future__ import annotations

from typing import Any

from tiermem.errors import TiermemError
from tiermem.serve.settings import ServeSettings


def serve(settings: ServeSettings, port: int = 8000, **uvicorn_options: Any) -> None:
    """Run the service on `settings.host` until interrupted (Ctrl-C or SIGTERM stop the workers too)."""
    try:
        import uvicorn

        from tiermem.serve.app import create_app
    except ImportError as exc:
        raise TiermemError(
            f"tiermem serve needs the serve extra ({exc.name} is missing): pip install 'tiermem[serve]'"
        ) from None
    uvicorn.run(create_app(settings), host=settings.host, port=port, **uvicorn_options)


__all__ = ["ServeSettings", "serve"]
