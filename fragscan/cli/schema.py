"""``fragscan schema``: print the JSON Schema of report.json."""

from __future__ import annotations

import json

import typer

from ..report.schema import SCHEMA_VERSION, report_schema, schema_fingerprint
from ._app import app, fails_cleanly
from .ui import stdout_console


@app.command()
@fails_cleanly
def schema(
    fingerprint: bool = typer.Option(
        False, "--fingerprint", help="Print the schema version and its structural fingerprint instead."
    ),
) -> None:
    """Print the JSON Schema (draft 2020-12) of the report that `fragscan scan` writes."""
    text = f"{SCHEMA_VERSION} {schema_fingerprint()}" if fingerprint else json.dumps(report_schema(), indent=1)
    stdout_console().out(text, highlight=False)
