"""The typer app and the error handling every command shares, apart from the package face so the command
modules can import them (a command importing ``fragscan.cli`` itself would close a circle: the face imports
every command to register it)."""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path

import typer
from rich.text import Text
from typer.core import TyperGroup

from ..base.errors import FragscanError
from .ui import stderr_console

# click's UsageError, the base of typer.BadParameter: recent typer vendors click (typer._click),
# older typer uses click itself; the public subclass leads to the right class in both.
_ClickUsageError: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


class _OneLineUsageErrors(TyperGroup):
    """The ``fragscan`` group, turning click's own usage errors (a value it cannot parse as the
    option's type, an unknown option or command, a missing argument) into one red line and exit 2,
    like fragscan's errors, instead of click's usage box. The group's options and every
    sub-command's (parsed inside ``invoke``) pass through here, whatever runs the app."""

    def make_context(self, info_name, args, parent=None, **extra):
        with _usage_errors_on_one_line():
            return super().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx):
        with _usage_errors_on_one_line():
            return super().invoke(ctx)


@contextmanager
def _usage_errors_on_one_line() -> Iterator[None]:
    try:
        yield
    except _ClickUsageError as error:
        if type(error).__name__ == "NoArgsIsHelpError":  # a bare `fragscan`: click shows the help (exit 2)
            raise
        message = " ".join(error.format_message().split()).rstrip(".")
        if error.ctx is not None:
            message += f" (see '{error.ctx.command_path} --help')"
        _print_error("error:", message)
        raise typer.Exit(error.exit_code) from None


app = typer.Typer(
    name="fragscan",
    cls=_OneLineUsageErrors,
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


@contextmanager
def _no_empty_out_left(out) -> Iterator[None]:
    """A command that fails leaves no ``--out`` folder behind that it created and wrote nothing into
    (commands create it early, to prove it writable before long work)."""
    created = isinstance(out, Path) and not out.exists()
    try:
        yield
    except BaseException:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise


def fails_cleanly(command: Callable) -> Callable:
    """Turn fragscan errors into one red line and their exit code; anything else, ``sys.exit`` from
    code the command runs included, into exit 3."""

    @wraps(command)
    def run(*args, **kwargs):
        with _no_empty_out_left(kwargs.get("out")):
            try:
                return command(*args, **kwargs)
            except (typer.Exit, typer.Abort):
                raise
            except KeyboardInterrupt:  # every file is written atomically: what exists is whole
                _print_error(
                    "interrupted:", "stopped by Ctrl-C; files already written are complete, the rest were not written"
                )
                raise typer.Exit(130) from None
            except SystemExit as error:  # code we run (a plugin's) ended the process early: exit 0 would pass
                # a CI gate with nothing checked, so it is a failure, whatever code it asked for
                if _state["debug"]:
                    traceback.print_exc()
                _print_error(
                    "internal error:",
                    f"sys.exit({error.code!r}) was called before the command finished (by a plugin's code? see "
                    "`fragscan plugins`); it did not finish",
                )
                raise typer.Exit(3) from None
            except FragscanError as error:
                if _state["debug"]:
                    traceback.print_exc()
                _print_error("error:", str(error))
                raise typer.Exit(error.exit_code) from None
            except Exception as error:  # a bug or an environment failure: still one line unless --debug
                if _state["debug"]:
                    traceback.print_exc()
                first_line = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
                _print_error(
                    "internal error:", f"{type(error).__name__}: {first_line} (rerun with --debug for the traceback)"
                )
                raise typer.Exit(3) from None

    return run

