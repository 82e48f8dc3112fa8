"""`tiermem distinct`: how much each video stands out from a context corpus."""

from __future__ import annotations

from typing import Any, Optional

import typer

from tiermem.cli.common import app, console, err_console, in_range, reports_errors, to_json
from tiermem.distinctiveness.registry import list_distinctiveness


@app.command("distinct")
@reports_errors
def distinct_command(
    queries: list[str] = typer.Argument(
        None, help="Videos, directories, or feature tables to score \\[default: the context itself]."
    ),
    context: list[str] = typer.Option(
        ...,
        "--context",
        help="The corpus to stand out from: a feature table (Parquet/CSV with video_id), a feature store directory, or videos/directories (repeatable).",
    ),
    method: str = typer.Option(
        "knn", "--method", help=f"{', '.join(list_distinctiveness())} (dbscan is the paper's)."
    ),
    source: str = typer.Option(
        "mid", "--source", help="Tier whose features are compared (for videos: the tier extracted)."
    ),
    k: int = typer.Option(10, "--k", callback=in_range(1), help="Neighbours (knn)."),
    components: int = typer.Option(
        10, "--components", callback=in_range(1), help="PCA dimensions (knn, kde, dbscan)."
    ),
    store: Optional[str] = typer.Option(
        None, "--store", help="Feature store for videos given as input \\[default: a temporary directory]."
    ),
    out: Optional[str] = typer.Option(None, "--out", help="Also write the table as CSV."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary and every video's values as JSON."),
) -> None:
    """How much each video stands out from a context corpus, and its percentile within it.

    A video that is itself in the context is scored against the other context videos
    (leave-one-out). Without QUERIES every context video is scored that way.

    Example: tiermem distinct --context features/train_mid.parquet features/new_mid.parquet --method knn

    Example: tiermem distinct --context clips/ --source low --method kde
    """
    import tempfile

    from tiermem.atomic import check_output_file
    from tiermem.cli.progress import at_terminal
    from tiermem.distinctiveness.context import distinctiveness_report, load_source_block
    from tiermem.run import Run
    from tiermem.runtime import set_threads

    set_threads()
    if out:
        check_output_file(out)
    params: dict[str, Any] = {}
    if method in ("knn", "kde", "dbscan"):
        params["n_components"] = components
    if method == "knn":
        params["k"] = k
    with (
        tempfile.TemporaryDirectory(prefix="tiermem-distinct-") as tmp,
        at_terminal(Run(), err_console) as run,
    ):
        where = store or tmp
        ctx, failed = load_source_block(context, source, where, run=run)
        qry, failed_q = load_source_block(queries, source, where, run=run) if queries else (ctx, [])
    failed += failed_q
    report = distinctiveness_report(ctx, qry, method=method, source=source, **params)
    if out:
        from tiermem.atomic import write_csv_atomic

        write_csv_atomic(report.table, out, float_format="%.6g")
    if as_json:
        doc = report.to_json()
        doc["failed"] = [{"path": p, "reason": r} for p, r in failed]
        typer.echo(to_json(doc))
    else:
        from rich.table import Table

        summary = report.estimator.summary()
        extra = ""
        if method == "dbscan":
            extra = f", {summary['n_clusters']} clusters, noise {summary['noise_share']:.1%}"
        table = Table(
            title=f"{method} distinctiveness of {source} features within {summary['n_context']} context videos{extra}"
        )
        table.add_column("video", overflow="fold")
        table.add_column("distinctiveness", justify="right")
        table.add_column("percentile", justify="right")
        table.add_column("in context", justify="center")
        names = report.estimator.feature_names if len(report.estimator.feature_names) <= 3 else []
        for name in names:
            table.add_column(name.removeprefix(f"{method}_{source}_"), justify="right")
        for row in report.table.itertuples(index=False):
            r = row._asdict()
            table.add_row(
                str(r["video_id"]),
                f"{r['distinctiveness']:.4g}",
                f"{r['percentile']:.1f}",
                "yes" if r["in_context"] else "",
                *(f"{getattr(row, n):.4g}" for n in names),
            )
        console.print(table)
        if out:
            console.print(f"wrote {out}")
    for path, reason in failed:
        err_console.print(f"[bold red]error:[/] {path}: {reason}", highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(code=1)
