"""The ``fragscan`` command: thin typer sub-commands over the library."""

from __future__ import annotations

import sys

# The commands register on import.
from . import audit, compare, listing, mask, plugins, report, retrain, scan, schema, train  # noqa: F401
from ._app import app, fails_cleanly  # noqa: F401 (the public face of the command line)


def main() -> None:
    app(prog_name="fragscan")


if __name__ == "__main__":
    sys.exit(main())
