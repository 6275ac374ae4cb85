"""The report's JSON Schema and its fingerprint.

``schema_fingerprints.json`` maps each released ``SCHEMA_VERSION`` to the fingerprint of the
schema it had; a test fails when the model changes without a new version. The fingerprint covers
structure (fields, types, required, defaults), not descriptions or titles, so rewording help text
needs no bump.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from typing import Any

from .model import SCHEMA_VERSION, Report

_DOCUMENTATION = ("description", "title")


def report_schema() -> dict[str, Any]:
    schema = Report.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["x-fragscan-schema-version"] = SCHEMA_VERSION
    return schema


def _structure(node: Any, *, field_names: bool = False) -> Any:
    """The schema without documentation keys (a ``properties`` mapping's keys are field names, kept)."""
    if isinstance(node, dict):
        return {
            key: _structure(value, field_names=key == "properties" and not field_names)
            for key, value in node.items()
            if field_names or key not in (*_DOCUMENTATION, "x-fragscan-schema-version")
        }
    if isinstance(node, list):
        return [_structure(value) for value in node]
    return node


def schema_fingerprint(schema: dict[str, Any] | None = None) -> str:
    structure = _structure(schema or report_schema())
    return hashlib.sha256(json.dumps(structure, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def recorded_fingerprints() -> dict[str, str]:
    return json.loads(resources.files("fragscan.report").joinpath("schema_fingerprints.json").read_text())
