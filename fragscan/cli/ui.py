"""Console output, built per call: progress and messages go to stderr, results to stdout."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console
from rich.measure import Measurement
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

if TYPE_CHECKING:  # the engine imports torch: a command that prints no progress should not wait for it
    from ..sweep.engine import SweepEvent


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


def _bar(console: Console) -> Progress:
    """A bar that names what is in flight, with counts and times, gone once done."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn())
    return Progress(*columns, TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True)


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
    with _bar(console) as bar:
        task = bar.add_task("preparing (attack calibration)", total=None)

        def update(event: SweepEvent) -> None:
            bar.update(task, completed=event.done, total=event.total, description=f"{event.target} · {event.filter}")

        yield update


# In a log, where no bar redraws, a line at most this often within an epoch: a Fashion-MNIST epoch
# on a CPU takes minutes, and silence for that long reads as a hang.
LOG_EVERY_S = 30.0


@contextmanager
def batch_progress(console: Console) -> Iterator[Callable[[int, int, int], None]]:
    """Progress within a training epoch, as ``on_batch(epoch, done, batches)``: a bar on a terminal
    (it vanishes at the epoch's end, where the epoch's line is printed), else a line every
    :data:`LOG_EVERY_S` seconds."""
    if not console.is_terminal:
        last = [time.monotonic()]

        def log(epoch: int, done: int, batches: int) -> None:
            if time.monotonic() - last[0] >= LOG_EVERY_S and done < batches:
                last[0] = time.monotonic()
                console.print(f"epoch {epoch:>3}  {done}/{batches} batches", highlight=False)

        yield log
        return
    with _bar(console) as bar:
        task = bar.add_task("epoch", total=None)

        def update(epoch: int, done: int, batches: int) -> None:
            if done == 1:  # a new epoch: its bar starts over
                bar.reset(task, total=batches, description=f"epoch {epoch} batches")
            bar.update(task, completed=done)

        yield update
