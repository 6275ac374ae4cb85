"""Reading and writing reports. Every write is atomic: a temporary file, then a rename."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from ..errors import InputError
from .. import __version__
from .model import SCHEMA_VERSION, Report

if TYPE_CHECKING:
    from ..masks import Mask


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


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
    newer = _newer_schema(data)
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
        raise InputError(f"report {str(path)!r} is not a fragscan report: {where}: {first['msg']}") from None


def _newer_schema(data: bytes) -> str | None:
    """The report's ``schema_version`` when it is newer than this fragscan's model, else None."""
    try:
        version = json.loads(data).get("schema_version")
        if tuple(int(part) for part in str(version).split(".")) > tuple(int(p) for p in SCHEMA_VERSION.split(".")):
            return str(version)
    except (ValueError, AttributeError):  # not JSON, not an object, no numeric version: validation says why
        pass
    return None


def ensure_writable_dir(directory: Path, option: str = "--out") -> Path:
    """Create ``directory`` if needed and prove it writable before any long work starts."""
    directory = Path(directory)
    blocking = next((p for p in (directory, *directory.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:  # mkdir would only say "File exists"
        raise InputError(
            f"cannot write to {option} {str(directory)!r}: {str(blocking)!r} is a file, not a directory; "
            "name a directory (it is created if missing)"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as error:
        raise InputError(f"cannot write to {option} {str(directory)!r}: {error.strerror or error}; choose a writable directory") from None
    return directory


def ensure_writable_file(path: Path, option: str) -> Path:
    """:func:`ensure_writable_dir` for the folder of the file ``option`` names, and that the name is
    free for a file: checked before any work, so one bad path of several leaves none written."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"cannot write {option} {str(path)!r}: it is a directory; name a file in it")
    ensure_writable_dir(path.parent, option)
    return path


def check_outputs(outputs: dict[str, Path | None], inputs: Iterable[Path | None] = ()) -> None:
    """Before any work: each output file (by its option) can be written, and none is the same file
    as an input or as another output, which writing it would overwrite."""
    taken = {Path(p).resolve(): f"the input {str(p)!r}" for p in inputs if p is not None}
    for option, path in outputs.items():
        if path is None:
            continue
        ensure_writable_file(path, option)
        if Path(path).resolve() in taken:
            raise InputError(f"{option} {str(path)!r} is the same file as {taken[Path(path).resolve()]}; name another file")
        taken[Path(path).resolve()] = option


def write_html(report: Report, path: Path) -> Path:
    from .html import render_html  # matplotlib and jinja2 load only when a page is rendered

    write_atomic(Path(path), render_html(report).encode())
    return Path(path)


def write_curves_csv(report: Report, path: Path) -> Path:
    from .tables import curves_csv

    write_atomic(Path(path), curves_csv(report).encode())
    return Path(path)


def write_scan_outputs(report: Report, directory: Path, mask: Mask | None = None) -> list[Path]:
    """Everything a scan leaves in its output directory, each written atomically: report.json,
    curves.csv (tidy long curves) and report.html, rendered from the report, and, given ``mask``
    (built from the weight values, which the report does not hold), mask.safetensors; without
    one, an earlier scan's mask.safetensors there is removed."""
    from ..masks import mask_bytes
    from .html import render_html
    from .tables import curves_csv

    directory = ensure_writable_dir(directory)
    # Render everything before writing anything: a rendering failure leaves no partial set.
    outputs = {
        directory / "report.json": report_json(report),
        directory / "curves.csv": curves_csv(report).encode(),
        directory / "report.html": render_html(report).encode(),
    }
    if mask is not None:
        outputs[directory / "mask.safetensors"] = mask_bytes(mask)
    for path, data in outputs.items():
        write_atomic(path, data)
    if mask is None:  # an earlier scan's mask would pass for this report's
        (directory / "mask.safetensors").unlink(missing_ok=True)
    return list(outputs)
