"""An AuditResult as files CI systems read: JSON, JUnit XML (one test case per rule), SARIF 2.1.0."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import quote

from ..._version import __version__
from ...base.files import ensure_writable_dir, write_atomic
from .rules import AuditResult, RuleOutcome

AUDIT_FILES = {"json": "audit.json", "junit": "audit.junit.xml", "sarif": "audit.sarif"}
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
_INFORMATION_URI = "https://doi.org/10.1016/j.artint.2023.104060"


def junit_xml(result: AuditResult) -> bytes:
    """One <testcase> per rule the policy set; a violated rule carries a <failure>."""
    subject = f"{result.report.model} on {result.report.dataset}/{result.report.split}"
    counts = {"tests": str(len(result.rules)), "failures": str(len(result.failed)), "errors": "0", "skipped": "0"}
    suites = ET.Element("testsuites", name="fragscan audit", **counts)
    suite = ET.SubElement(
        suites, "testsuite", name=f"fragscan audit: {subject}", timestamp=result.report.started_at, **counts
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("report", result.report.path),
        ("report_sha256", result.report.sha256),
        ("fragscan", __version__),
    ):
        ET.SubElement(properties, "property", name=name, value=str(value))
    for rule in result.rules:
        case = ET.SubElement(suite, "testcase", classname="fragscan.audit", name=rule.id, time="0")
        if not rule.passed:
            failure = ET.SubElement(case, "failure", message=rule.message, type="PolicyViolation")
            failure.text = "\n".join(f.message for f in rule.findings) or rule.message
        ET.SubElement(case, "system-out").text = f"{rule.description}; threshold {_threshold(rule)}: {rule.message}"
    for warning in result.warnings:
        ET.SubElement(suite, "system-err").text = warning
    ET.indent(suites)
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True) + b"\n"


def sarif(result: AuditResult) -> dict:
    """SARIF 2.1.0: every rule the policy set is a reportingDescriptor, every finding a result."""
    rules = [
        {
            "id": rule.id,
            "name": "".join(part.title() for part in rule.id.split("-")),
            "shortDescription": {"text": rule.description},
            "fullDescription": {"text": f"{rule.description}; threshold {_threshold(rule)}"},
            "defaultConfiguration": {"level": "error"},
            "properties": {"threshold": rule.threshold},
        }
        for rule in result.rules
    ]
    results = [
        {
            "ruleId": rule.id,
            "ruleIndex": index,
            "level": "error",
            "message": {"text": finding.message},
            "locations": [_location(result.report.path, finding.group)],
            "properties": finding.model_dump(exclude={"message"}, exclude_none=True),
        }
        for index, rule in enumerate(result.rules)
        for finding in rule.findings
    ]
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "fragscan",
                        "version": __version__,
                        "informationUri": _INFORMATION_URI,
                        "rules": rules,
                    }
                },
                "invocations": [
                    {
                        "executionSuccessful": True,
                        "toolExecutionNotifications": [
                            {"level": "warning", "message": {"text": w}} for w in result.warnings
                        ],
                    }
                ],
                "results": results,
            }
        ],
    }


def _threshold(rule: RuleOutcome) -> str:
    return ", ".join(rule.threshold) if isinstance(rule.threshold, list) else f"{rule.threshold:g}"


def _location(report_path: str | None, group: str | None) -> dict:
    """The audited report.json as the artifact (relative, as code-scanning wants), the group as a logical place."""
    location: dict = {
        "physicalLocation": {
            "artifactLocation": {"uri": _uri(report_path or "report.json")},
            "region": {"startLine": 1},
        }
    }
    if group is not None:
        location["logicalLocations"] = [{"name": group, "kind": "member"}]
    return location


def _uri(path: str) -> str:
    """Relative to the working directory when the report lies below it (CI runs at the repo root);
    percent-encoded either way, as SARIF's uri is an RFC 3986 reference (a space is not allowed)."""
    resolved = Path(path).resolve()
    try:
        return quote(resolved.relative_to(Path.cwd().resolve()).as_posix())
    except ValueError:
        return resolved.as_uri()


def write_audit_outputs(result: AuditResult, directory: Path) -> list[Path]:
    """audit.json, audit.junit.xml and audit.sarif in ``directory``, each written atomically."""
    directory = ensure_writable_dir(directory)
    contents = {
        "json": result.model_dump_json(indent=1).encode(),
        "junit": junit_xml(result),
        "sarif": json.dumps(sarif(result), indent=1, ensure_ascii=False, allow_nan=False).encode(),
    }
    written = []
    for kind, name in AUDIT_FILES.items():
        write_atomic(directory / name, contents[kind])
        written.append(directory / name)
    return written
