"""Listing commands: what can be named on the command line."""

from __future__ import annotations

import typer
from rich.table import Table

from ..attacks import ATTACKS
from ..data import DATASETS
from ..filters import FILTERS
from ..models import MODELS
from ..ui import stdout_console
from . import app, fails_cleanly


def _show(title: str, columns: list[str], rows: list[list[str]]) -> None:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    stdout_console().print(table)


@app.command()
@fails_cleanly
def models(pattern: str = typer.Argument("*", help="Glob over model names, e.g. 'resnet*'.")) -> None:
    """List registered models with their input size and classes."""
    rows = []
    for name in MODELS.list(pattern):
        entry = MODELS.entry(name)
        spec = entry.meta["spec"]
        rows.append([name, "×".join(map(str, spec.input_size)), str(spec.num_classes), entry.source])
    _show("models", ["name", "input", "classes", "source"], rows)


@app.command()
@fails_cleanly
def datasets(pattern: str = typer.Argument("*", help="Glob over dataset names.")) -> None:
    """List dataset adapters."""
    rows = []
    for name in DATASETS.list(pattern):
        entry = DATASETS.entry(name)
        spec = entry.meta["spec"]
        rows.append([name, str(spec.num_classes), "yes" if spec.needs_root else "no", spec.description, entry.source])
    _show("datasets", ["name", "classes", "needs --data-root", "description", "source"], rows)


@app.command()
@fails_cleanly
def filters() -> None:
    """List synaptic filters."""
    rows = [[n, FILTERS.entry(n).meta["label"], FILTERS.entry(n).meta["description"]] for n in FILTERS.list()]
    _show("filters", ["id", "name", "removes"], rows)


@app.command()
@fails_cleanly
def attacks(pattern: str = typer.Argument("*", help="Glob over attack names.")) -> None:
    """List torchattacks attacks usable with --attack."""
    rows = []
    for name in ATTACKS.list(pattern):
        doc = (ATTACKS.get(name).__doc__ or "").strip().splitlines()
        rows.append([name, doc[0].strip() if doc else ""])
    _show("attacks", ["name", "description"], rows)
