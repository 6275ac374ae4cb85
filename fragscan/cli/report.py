"""``fragscan report``: re-render a saved report.json as HTML (and the curves CSV)."""

from __future__ import annotations

from pathlib import Path

import typer

from ..base.files import check_outputs
from ..report import load_report, write_curves_csv, write_html
from ._app import app, fails_cleanly
from .ui import stderr_console


@app.command()
@fails_cleanly
def report(
    report_json: Path = typer.Argument(..., help="A report.json written by `fragscan scan`."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="HTML file to write; default: report.html beside the JSON."
    ),
    csv: Path | None = typer.Option(None, help="Also write the tidy long curves CSV here."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing."),
) -> None:
    """Render a report.json as one self-contained HTML page (no network, no external files)."""
    loaded = load_report(report_json)
    output = output or report_json.with_name("report.html")
    check_outputs({"--output": output, "--csv": csv}, [report_json])
    written = [write_html(loaded, output)]
    if csv is not None:
        written.append(write_curves_csv(loaded, csv))
    console = stderr_console(quiet)
    for path in written:
        console.print(f"wrote {path}", highlight=False)
