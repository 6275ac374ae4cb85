"""The ``fragscan`` command: thin typer sub-commands over the library."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from functools import wraps

import typer

from ..errors import FragscanError
from ..ui import stderr_console

app = typer.Typer(
    name="fragscan",
    help="Find the fragile, robust and antifragile parameters of a trained image classifier.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_state = {"debug": False}


@app.callback()
def _options(debug: bool = typer.Option(False, "--debug", help="Show the full traceback of an error.")) -> None:
    _state["debug"] = debug


def fails_cleanly(command: Callable) -> Callable:
    """Turn fragscan errors into one red line and their exit code; anything else into exit 3."""

    @wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except FragscanError as error:
            if _state["debug"]:
                traceback.print_exc()
            stderr_console().print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
            raise typer.Exit(error.exit_code) from None
        except Exception as error:  # a bug or an environment failure: still one line unless --debug
            if _state["debug"]:
                traceback.print_exc()
            stderr_console().print(
                f"[red]internal error:[/red] {type(error).__name__}: {error} (rerun with --debug for the traceback)",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(3) from None

    return run


from . import compare, listing, report, scan, schema  # noqa: E402,F401  (commands register on import)


def main() -> None:
    app(prog_name="fragscan")


if __name__ == "__main__":
    sys.exit(main())
