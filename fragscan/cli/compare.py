"""``fragscan compare``: groups whose class is invariant across reports, and score deltas."""

from __future__ import annotations

from pathlib import Path

import typer
from rich import box
from rich.table import Table

from ..base.errors import ConfigError
from ..base.files import check_outputs, write_atomic
from ..report import load_report
from ..report.numbers import signed
from ._app import app, fails_cleanly
from .summary import CLASS_STYLE
from .ui import print_table, stderr_console, stdout_console


@app.command()
@fails_cleanly
def compare(
    reports: list[Path] = typer.Argument(
        ..., help="Two or more report.json files (epochs, datasets or architectures)."
    ),
    by: str = typer.Option(
        "auto", help="Match groups by 'name' (same architecture) or 'role'; auto picks by model name."
    ),
    filter_id: str | None = typer.Option(
        None, "--filter", help="Filter whose scores are compared; default: R1's summary filter."
    ),
    score: str | None = typer.Option(None, help="clean, adversarial or difference; default: R1's summary score."),
    depth_bins: int = typer.Option(5, help="Relative-depth bins when matching by role."),
    html: Path | None = typer.Option(None, help="Also write the comparison as a self-contained HTML page."),
    json_path: Path | None = typer.Option(None, "--json", help="Also write the comparison as JSON."),
    only_invariant: bool = typer.Option(False, "--invariant", help="List only groups whose class never changes."),
    eps: float | None = typer.Option(
        None, help="Compare every report at this budget: threat profiles (--threat) are restated there."
    ),
) -> None:
    """Which groups keep their class across reports, and how their scores move."""
    # evidence (via compare) reaches torch, which takes seconds to import: not before --help
    from ..outputs.comparison import compare as compare_reports
    from ..outputs.comparison import render_comparison_html
    from ..scoring.surface import stated_at

    if by not in ("auto", "name", "role"):
        raise ConfigError(f"--by must be auto, name or role, got {by!r}")
    if score not in (None, "clean", "adversarial", "difference"):
        raise ConfigError(f"--score must be clean, adversarial or difference, got {score!r}")
    check_outputs({"--html": html, "--json": json_path}, reports)
    loaded = [stated_at(load_report(path), eps, str(path)) for path in reports]
    comparison = compare_reports(loaded, reports, by=by, filter_id=filter_id, score=score, depth_bins=depth_bins)
    table = Table(
        title=f"by {comparison.by}: {comparison.score} score of {comparison.filter}; Δ vs R1",
        title_justify="left",
        box=box.SIMPLE,
    )
    table.add_column(comparison.by, no_wrap=True)
    for index in range(len(loaded)):
        table.add_column(f"R{index + 1}")
        if index:
            table.add_column(f"Δ R{index + 1}", justify="right")
    table.add_column("invariant")
    for item in comparison.invariant if only_invariant else comparison.items:
        cells = []
        for index, cls in enumerate(item.classes):
            style = CLASS_STYLE.get(cls, "dim")
            cells.append(f"[{style}]{cls}[/{style}] {signed(item.scores[index])}")
            if index:
                cells.append(signed(item.deltas[index]))
        table.add_row(item.key, *cells, "yes" if item.invariant else "no")
    console = stdout_console()
    for index, entry in enumerate(comparison.reports):
        console.print(
            f"R{index + 1}: {entry.path} ({entry.model} on {entry.dataset}/{entry.split}, {entry.groups} groups, "
            f"{entry.samples} samples, {entry.thresholds} thresholds, --classify {entry.classify} τ = {entry.tau})",
            highlight=False,
        )
    for warning in comparison.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True)
    print_table(console, table)
    console.print(
        f"{len(comparison.invariant)} of {len(comparison.items)} keep their class in every report", highlight=False
    )
    for path, render in ((html, "html"), (json_path, "json")):
        if path is None:
            continue
        if render == "html":
            write_atomic(path, render_comparison_html(comparison).encode())
        else:
            write_atomic(path, comparison.model_dump_json(indent=1).encode())
        stderr_console().print(f"wrote {path}", highlight=False)
