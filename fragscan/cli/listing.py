"""Listing commands: what can be named on the command line."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from ..base.plugins import load_plugins
from ._app import app, fails_cleanly
from .ui import print_table, stderr_console, stdout_console

# Each command imports its registry when it runs: they import torch, which `fragscan --help` need not wait for.


def _show(title: str, columns: list[str], rows: list[list[str]]) -> None:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))  # descriptions hold brackets, not markup
    print_table(stdout_console(), table)


PLUGIN_OPTION = typer.Option([], "--plugin", help="Load this plugin file first (repeatable).")


def _size(spec) -> str:
    return "×".join(map(str, spec.input_size)) if spec.input_size else "from data"


@app.command()
@fails_cleanly
def models(
    pattern: str = typer.Argument("*", help="Glob over model names, e.g. 'resnet*' or 'tv:*'."),
    all_sources: bool = typer.Option(
        False, "--all", help="With no pattern, also list every timm and torchvision name."
    ),
    plugin: list[Path] = PLUGIN_OPTION,
) -> None:
    """List models: registered ones (built-ins, plugins), then timm names and torchvision names (tv:NAME)."""
    from ..models import MODELS
    from ..models.external import TIMM_PREFIX, TV_PREFIX, external_names

    load_plugins(plugin)
    rows = []
    for name in MODELS.list(pattern):
        entry = MODELS.entry(name)
        spec = entry.meta["spec"]
        classes = str(spec.num_classes) if spec.num_classes else "from data"
        rows.append([name, _size(spec), classes, entry.source + (" (--stem)" if entry.meta.get("stems") else "")])
    # A timm name that a built-in shadows (resnet18) is reached as timm:NAME: list it so.
    external = [TIMM_PREFIX + n if n in MODELS else n for n in external_names(pattern)]
    if pattern != "*" or all_sources:
        rows += [[n, "from data", "from data", "torchvision" if n.startswith(TV_PREFIX) else "timm"] for n in external]
    _show("models", ["name", "input", "classes", "source"], rows)
    if pattern == "*" and not all_sources:
        stderr_console().print(
            f"and {len(external)} timm / torchvision (tv:) names: give a pattern or --all", highlight=False
        )


@app.command()
@fails_cleanly
def datasets(
    pattern: str = typer.Argument("*", help="Glob over dataset names."),
    plugin: list[Path] = PLUGIN_OPTION,
) -> None:
    """List dataset adapters."""
    from ..data import DATASETS

    load_plugins(plugin)
    rows = []
    for name in DATASETS.list(pattern):
        entry = DATASETS.entry(name)
        spec = entry.meta["spec"]
        rows.append([
            name,
            str(spec.num_classes) if spec.num_classes else "from data",
            "yes" if spec.needs_root else "no",
            spec.description,
            entry.source,
        ])
    _show("datasets", ["name", "classes", "needs --data-root", "description", "source"], rows)


@app.command()
@fails_cleanly
def filters(plugin: list[Path] = PLUGIN_OPTION) -> None:
    """List synaptic filters."""
    from ..sweep.filters import FILTERS

    load_plugins(plugin)
    rows = [[n, FILTERS.entry(n).meta["label"], FILTERS.entry(n).meta["description"]] for n in FILTERS.list()]
    _show("filters", ["id", "name", "removes"], rows)


@app.command()
@fails_cleanly
def attacks(
    pattern: str = typer.Argument("*", help="Glob over attack names."), plugin: list[Path] = PLUGIN_OPTION
) -> None:
    """List torchattacks attacks usable with --attack."""
    from ..sweep.attacks import ATTACKS, eps_meaning

    load_plugins(plugin)
    rows = []
    for name in ATTACKS.list(pattern):
        doc = (ATTACKS.get(name).__doc__ or "").strip().splitlines()
        rows.append([name, eps_meaning(name), doc[0].strip() if doc else ""])
    _show("attacks", ["name", "--eps bounds", "description"], rows)
