"""Console output, built per call: progress and messages go to stderr, results to stdout."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console
from rich.measure import Measurement
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

if TYPE_CHECKING:  # the engine imports torch: a command that prints no progress should not wait for it
    from .engine import SweepEvent


def stderr_console(quiet: bool = False) -> Console:
    return Console(stderr=True, quiet=quiet)


def stdout_console() -> Console:
    return Console()


def print_table(console: Console, table: Table) -> None:
    """``table`` on a terminal fitted to the screen, as rich does; in a log or a pipe, which has no
    screen edge, at its natural width, instead of cut to rich's default 80 columns ("fra…")."""
    if console.is_terminal:
        console.print(table)
        return
    screen = console.width
    console.width = max(screen, Measurement.get(console, console.options.update_width(_UNBOUNDED), table).maximum)
    try:
        console.print(table)
    finally:
        console.width = screen


_UNBOUNDED = 100_000


@contextmanager
def sweep_progress(console: Console) -> Iterator[Callable[[SweepEvent], None]]:
    """A progress bar over the whole sweep, naming the group and filter in flight; in a log or a
    pipe, where a bar cannot redraw, one line as each group starts."""
    if not console.is_terminal:
        started: set[str] = set()

        def log(event: SweepEvent) -> None:
            if event.target not in started:
                started.add(event.target)
                console.print(f"{event.done}/{event.total} cells done, at {event.target}", highlight=False)

        yield log
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("preparing (attack calibration)", total=None)

        def update(event: SweepEvent) -> None:
            bar.update(task, completed=event.done, total=event.total, description=f"{event.target} · {event.filter}")

        yield update
