"""``fragscan plugins``: every plugin found by the three routes, what it registered, or why it failed."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ..base.plugins import ENTRY_POINT_GROUP, PROJECT_DIR, load_plugins
from ._app import app, fails_cleanly
from .ui import print_table, stderr_console, stdout_console


@app.command()
@fails_cleanly
def plugins(
    plugin: list[Path] = typer.Option([], "--plugin", help="Also load this plugin file (repeatable)."),
) -> None:
    """List plugins: the 'fragscan.plugins' entry points, ./plugins/*.py and --plugin files."""
    table = Table(
        title=f"plugins (entry points '{ENTRY_POINT_GROUP}', ./{PROJECT_DIR}/*.py, --plugin)", title_justify="left"
    )
    for column in ("name", "route", "location", "status"):
        table.add_column(column)
    found_plugins = load_plugins(plugin)
    if not found_plugins:
        stderr_console().print(
            f"no plugins: no '{ENTRY_POINT_GROUP}' entry points installed, no ./{PROJECT_DIR}/*.py here, "
            "no --plugin FILE",
            highlight=False,
            soft_wrap=True,
        )
        return
    for found in found_plugins:
        status = (
            f"[red]failed: {found.error}[/red]"
            if found.error
            else f"registered {', '.join(found.registered) or 'nothing'}"
        )
        table.add_row(found.name, found.route, found.location, status)
    print_table(stdout_console(), table)
