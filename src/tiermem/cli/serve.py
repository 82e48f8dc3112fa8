"""`tiermem serve`: the HTTP API and web page (`tiermem.serve`)."""

from __future__ import annotations

from typing import Optional

import typer

from tiermem.cli.common import app, console, in_range, reports_errors


@app.command("serve")
@reports_errors
def serve_command(
    model: str = typer.Option(
        "zero-shot", "--model", help="A model directory written by `tiermem fit`, or zero-shot."
    ),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to listen on (localhost unless told otherwise)."
    ),
    port: int = typer.Option(8000, "--port", callback=in_range(1, 65535), help="TCP port."),
    data: str = typer.Option("tiermem-data", "--data", help="Folder of the jobs database and the uploads."),
    workers: int = typer.Option(
        1, "--workers", callback=in_range(1), help="Worker processes scoring videos (each loads the model)."
    ),
    api_key: Optional[str] = typer.Option(
        None, "--api-key", envvar="TIERMEM_API_KEY", help="Require this key (X-API-Key header) on /v1."
    ),
    max_upload_mb: float = typer.Option(
        512.0, "--max-upload-mb", callback=in_range(0, low_open=True), help="Largest video accepted, MiB."
    ),
    max_queue: int = typer.Option(
        100, "--max-queue", callback=in_range(1), help="Jobs waiting at most; more get 429."
    ),
    device: str = typer.Option(
        "auto", "--device", help="Where the workers' networks run: auto (CUDA when there), cpu or cuda."
    ),
    allowed_host: Optional[list[str]] = typer.Option(
        None,
        "--allowed-host",
        help="A Host name clients use besides localhost and --host (repeat; *.example.com for subdomains); others get 400.",
    ),
    cors_origin: Optional[list[str]] = typer.Option(
        None,
        "--cors-origin",
        help="A web page origin allowed to call the API from a browser (repeat; e.g. https://dash.example.com). CORS is off without it.",
    ),
) -> None:
    """Serve the HTTP API (/v1, docs at /docs) and the web page (/) until Ctrl-C.

    Jobs and results live in DATA/jobs.sqlite3; an identical video is answered from there, and
    jobs of a killed server finish after a restart.

    Example: tiermem serve --model models/m10k --data /var/lib/tiermem --workers 2
    """
    from tiermem.serve import ServeSettings, serve

    settings = ServeSettings(
        model=model,
        data=data,
        workers=workers,
        api_key=api_key,
        max_upload_mb=max_upload_mb,
        max_queue=max_queue,
        device=device,
        host=host,
        allowed_hosts=tuple(allowed_host or ()),
        cors_origins=tuple(cors_origin or ()),
    )
    settings.check_model()
    settings.check_place(port)
    console.print(
        f"tiermem serve: http://{host}:{port}/ (API docs at /docs), model {settings.model_name}, "
        f"{workers} worker(s), data in {data}"
    )
    serve(settings, port=port)
