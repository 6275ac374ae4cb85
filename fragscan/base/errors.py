"""Typed errors: each carries the CLI exit code and a one-line, actionable message."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable


def first_line(error: BaseException) -> str:
    """The first line of a library's error message (some run to pages), or its type when it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class FragscanError(Exception):
    """Base error. The CLI prints ``str(error)`` on one line and exits with ``exit_code``."""

    exit_code = 3


class UsageError(FragscanError):
    """Bad options, names or input files: the user can fix the call."""

    exit_code = 2


class UnknownNameError(UsageError):
    """``known`` in the order to show it: the names a user registered before a library's thousand."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        known = list(dict.fromkeys(known))
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(known[:12])}"
        super().__init__(f"unknown {kind} {name!r}; {hint} (list them with `fragscan {kind}s`){_failed_plugins()}")


# The plugins that failed to load, described one line each. fragscan.base.plugins installs the function that
# lists them when it is imported: it sits above this module (it imports the registries, which raise these
# errors), and before it is imported no plugin can have failed.
failed_plugins: Callable[[], list[str]] = list


def _failed_plugins() -> str:
    """Plugins that failed to load, which may be what should have registered the name."""
    failed = failed_plugins()
    return f"; plugin {'; plugin '.join(failed)}" if failed else ""


class ConfigError(UsageError):
    """Settings that cannot work together or are out of range."""


class InputError(UsageError):
    """A file or directory the user named is missing, malformed or does not fit."""


class PolicyViolation(FragscanError):
    """An audit found the report outside a threshold the user set: the outcome CI gates on."""

    exit_code = 1
