"""The ``fragscan`` command: thin typer sub-commands over the library."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from functools import wraps

import typer
from rich.text import Text

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


def _print_error(label: str, message: str) -> None:
    # Text, not markup: messages quote user input and file contents, which may contain [brackets].
    stderr_console().print(Text.assemble((label, "red"), " ", message), highlight=False, soft_wrap=True)


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
            _print_error("error:", str(error))
            raise typer.Exit(error.exit_code) from None
        except Exception as error:  # a bug or an environment failure: still one line unless --debug
            if _state["debug"]:
                traceback.print_exc()
            _print_error("internal error:", f"{type(error).__name__}: {error} (rerun with --debug for the traceback)")
            raise typer.Exit(3) from None

    return run


from . import audit, compare, listing, mask, plugins, report, retrain, scan, schema, train  # noqa: E402,F401  (commands register on import)


def main() -> None:
    app(prog_name="fragscan")


if __name__ == "__main__":
    sys.exit(main())
