"""Reading and writing reports. Every write is atomic: a temporary file, then a rename."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import ValidationError

from .._version import __version__
from ..base.errors import InputError
from ..base.files import write_atomic
from .model import SCHEMA_VERSION, Report


def report_json(report: Report) -> bytes:
    return report.model_dump_json(indent=1).encode()


def report_digest(report: Report) -> str:
    return hashlib.sha256(report_json(report)).hexdigest()


def write_report(report: Report, path: Path) -> Path:
    write_atomic(Path(path), report_json(report))
    return Path(path)


def load_report(path: str | Path) -> Report:
    path = Path(path)
    if path.is_dir():
        inside = path / "report.json"
        hint = f"pass {str(inside)!r}" if inside.is_file() else "pass the report.json a scan wrote"
        raise InputError(f"report {str(path)!r} is a directory; {hint}")
    if not path.is_file():
        raise InputError(f"report {str(path)!r} not found; pass the report.json a scan wrote")
    data = path.read_bytes()
    try:
        parsed = json.loads(data)
    except RecursionError:  # a report nests a few levels deep; thousands would overflow every reader's stack
        raise InputError(
            f"report {str(path)!r} nests deeper than any report; it is not a fragscan report: pass the report.json "
            "a scan wrote"
        ) from None
    except ValueError:  # not JSON: validation says where
        parsed = None
    newer = _newer_schema(parsed)
    if newer is not None:  # its fields may be unknown here, or mean something else (a new major)
        raise InputError(
            f"report {str(path)!r} has schema {newer}, newer than this fragscan {__version__} reads "
            f"({SCHEMA_VERSION}); use the fragscan that wrote it"
        )
    try:
        return Report.model_validate_json(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "top level"
        message = first["msg"].removeprefix("Value error, ")  # pydantic's prefix to our validators' own words
        raise InputError(f"report {str(path)!r} is not a fragscan report: {where}: {message}") from None


def _newer_schema(parsed) -> str | None:
    """The ``schema_version`` of a report's parsed JSON when it is newer than this fragscan's model, else None."""
    try:
        version = parsed.get("schema_version")
        if tuple(int(part) for part in str(version).split(".")) > tuple(int(p) for p in SCHEMA_VERSION.split(".")):
            return str(version)
    except (ValueError, AttributeError):  # not JSON, not an object, no numeric version: validation says why
        pass
    return None


def write_html(report: Report, path: Path) -> Path:
    from .html import render_html  # matplotlib and jinja2 load only when a page is rendered

    write_atomic(Path(path), render_html(report).encode())
    return Path(path)


def write_curves_csv(report: Report, path: Path) -> Path:
    from .tables import curves_csv

    write_atomic(Path(path), curves_csv(report).encode())
    return Path(path)
