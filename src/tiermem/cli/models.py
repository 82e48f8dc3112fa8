"""`tiermem models` (the named models and their cards) and `tiermem predict-text` (descriptions)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from tiermem.cli.common import app, console, reports_errors, to_json


@app.command("models")
@reports_errors
def models_command(
    as_json: bool = typer.Option(False, "--json", help="Print every model's full card as JSON."),
) -> None:
    """The models `--model NAME` accepts besides artifact directories, with their cards."""
    from rich.table import Table

    from tiermem.card import model_card
    from tiermem.models import list_models, load

    cards = [model_card(load(name), name=name) for name in list_models()]
    if as_json:
        typer.echo(to_json(cards))
        return
    table = Table(title="named models")
    for col in ("name", "kind", "trained on", "validation Spearman [95% CI]", "what the score is"):
        table.add_column(col)
    for card in cards:
        val = card.get("validation") or {}
        shown = (
            f"{val['spearman']:.3f} [{val['spearman_95ci'][0]:.3f}, {val['spearman_95ci'][1]:.3f}]"
            if val
            else "-"
        )
        trained = card.get("trained_on") or {}
        table.add_row(
            card["name"],
            card["kind"],
            str(trained.get("dataset", "-")).split(":")[0],
            shown,
            card["statement"].split(":")[0],
        )
    console.print(table)


@app.command("predict-text")
@reports_errors
def predict_text_command(
    texts: Optional[list[str]] = typer.Argument(
        None, help="Descriptions to score (a script line, a brief, a title, a caption)."
    ),
    model: str = typer.Option(
        "memento10k-captions", "--model", help="A text model: memento10k-captions or videomem-titles."
    ),
    file: Optional[Path] = typer.Option(None, "--file", help="A text file of descriptions, one per line."),
    out: Optional[str] = typer.Option(None, "--out", help="Write text, score, percentile to this CSV."),
    as_json: bool = typer.Option(False, "--json", help="Print the scores as JSON."),
) -> None:
    """How memorable the video a description describes is expected to be (the text's score).

    Example: tiermem predict-text "a man juggles fire on a beach" "a grey office corridor"
    """
    from rich.table import Table

    from tiermem.atomic import check_output_file, write_csv_atomic
    from tiermem.errors import TiermemError
    from tiermem.models import load

    if out:
        check_output_file(out)
    given = list(texts or [])
    if file is not None:
        try:
            given += [line.strip() for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise TiermemError(f"{file}: cannot read descriptions ({type(exc).__name__}: {exc})") from None
    if not given:
        raise TiermemError("no description to score: give texts as arguments or --file")
    loaded = load(model)
    if not hasattr(loaded, "predict_text"):
        raise TiermemError(f"{model}: not a text model (text models: memento10k-captions, videomem-titles)")
    table = loaded.predict_text(given)
    if table["score"].isna().all():
        raise TiermemError(
            f"nothing to score: {table['note'].iloc[0]}"
            if len(table) == 1
            else "nothing to score: every description has fewer than 2 words"
        )
    if out:
        write_csv_atomic(table, out)
    if as_json:
        typer.echo(to_json(table.to_dict(orient="records")))
        return
    view = Table(title=loaded.description)
    for col in ("description", "score", "percentile"):
        view.add_column(col, justify="left" if col == "description" else "right")
    noted = bool(table["note"].str.len().any())
    if noted:
        view.add_column("note")
    for row in table.itertuples(index=False):
        shown = (f"{row.score:.3f}", f"{row.percentile:.0f}") if row.score == row.score else ("-", "-")
        text = row.text if len(row.text) <= 200 else row.text[:200] + "…"
        view.add_row(text, *shown, *([row.note] if noted else []))
    console.print(view)
    if out:
        console.print(f"wrote {len(table)} rows to {out}")
