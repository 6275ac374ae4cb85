import json

from typer.testing import CliRunner

import fragscan
from fragscan.cli import app
from fragscan.report import load_report, write_report
from fragscan.report.model import SCHEMA_VERSION, Report
from fragscan.report.schema import recorded_fingerprints, report_schema, schema_fingerprint

runner = CliRunner()


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def test_the_report_model_changes_only_with_a_version_bump():
    recorded = recorded_fingerprints()
    assert SCHEMA_VERSION in recorded, (
        f"schema {SCHEMA_VERSION} has no fingerprint: add `fragscan schema --fingerprint` to "
        "fragscan/report/schema_fingerprints.json"
    )
    assert schema_fingerprint() == recorded[SCHEMA_VERSION], (
        f"the report model changed but SCHEMA_VERSION is still {SCHEMA_VERSION}: bump it in "
        "fragscan/report/model.py (minor for added fields) and record `fragscan schema --fingerprint` "
        "in fragscan/report/schema_fingerprints.json"
    )
    assert max(recorded, key=_version) == SCHEMA_VERSION, "SCHEMA_VERSION must be the newest recorded version"
    assert len(set(recorded.values())) == len(recorded), "two versions cannot share one schema"


def test_the_fingerprint_sees_structure_but_not_documentation():
    schema = report_schema()
    reworded = json.loads(json.dumps(schema))
    reworded["$defs"]["UnfilteredReport"]["properties"]["clean"]["description"] = "reworded"
    assert schema_fingerprint(reworded) == schema_fingerprint(schema)
    removed = json.loads(json.dumps(schema))
    del removed["$defs"]["DatasetInfo"]["properties"]["description"]  # a field that is named "description"
    assert schema_fingerprint(removed) != schema_fingerprint(schema)
    retyped = json.loads(json.dumps(schema))
    retyped["$defs"]["UnfilteredReport"]["properties"]["samples"]["type"] = "string"
    assert schema_fingerprint(retyped) != schema_fingerprint(schema)


def test_schema_command_prints_the_schema_and_the_fingerprint():
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    printed = json.loads(result.stdout)
    assert printed == report_schema()
    assert printed["x-fragscan-schema-version"] == SCHEMA_VERSION
    assert set(printed["required"]) >= {"model", "dataset", "settings", "baseline", "groups", "run"}
    assert runner.invoke(app, ["schema", "--fingerprint"]).stdout.split() == [SCHEMA_VERSION, schema_fingerprint()]


def test_a_written_report_carries_the_current_version(small_config, tmp_path):
    assert Report.model_fields["schema_version"].default == SCHEMA_VERSION
    path = write_report(fragscan.scan(small_config(max_samples=20, thresholds=3)), tmp_path / "report.json")
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION
    assert load_report(path).schema_version == SCHEMA_VERSION


def test_the_new_commands_explain_themselves():
    for command in ("report", "compare", "schema"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0 and len(result.output) > 100, command
