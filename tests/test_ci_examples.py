"""The CI examples are real: valid YAML, options that exist, the files the audit writes, the HTML report kept."""

import re
from pathlib import Path

import pytest
import typer
import yaml

from fragscan.cli import app
from fragscan.outputs.auditing import AUDIT_FILES, load_policy

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "ci"
OUT = "fragscan-out"


def commands(text: str) -> list[tuple[str, list[str]]]:
    """Every `fragscan <command> ...` line: (command, its --options)."""
    lines = re.finditer(r"fragscan (scan|audit)\b.*", text)
    return [(line.group(1), re.findall(r"(?<!\S)(--[a-z][a-z-]*)", line.group(0))) for line in lines]


def known_options(command: str) -> set[str]:
    click_command = typer.main.get_command(app).commands[command]
    return {opt for parameter in click_command.params for opt in parameter.opts}


def scripts(name: str, document: dict) -> str:
    """The job's shell lines, with $SCAN_OPTIONS expanded so its options are checked too."""
    if name == "github-actions.yml":
        text, variables = "\n".join(s.get("run", "") for s in document["jobs"]["audit"]["steps"]), document["env"]
    else:
        job = document["fragscan-audit"]
        text, variables = "\n".join(job["script"]), job["variables"]
    return text.replace("$SCAN_OPTIONS", variables["SCAN_OPTIONS"])


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_ci_example_runs_scan_and_audit_with_real_options(name):
    document = yaml.safe_load((EXAMPLES / name).read_text())
    found = commands(scripts(name, document))
    assert {command for command, _ in found} == {"scan", "audit"}
    for command, options in found:
        unknown = set(options) - known_options(command)
        assert not unknown, f"{name}: fragscan {command} has no {unknown}"


def test_github_example_keeps_the_html_report_and_uploads_sarif():
    steps = yaml.safe_load((EXAMPLES / "github-actions.yml").read_text())["jobs"]["audit"]["steps"]
    kept = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert kept["if"] == "always()"
    paths = kept["with"]["path"].split()
    assert {f"{OUT}/report.html", f"{OUT}/report.json"} | {f"{OUT}/{f}" for f in AUDIT_FILES.values()} <= set(paths)
    sarif = next(s for s in steps if s.get("uses", "").startswith("github/codeql-action/upload-sarif"))
    assert sarif["with"]["sarif_file"] == f"{OUT}/{AUDIT_FILES['sarif']}"


def test_gitlab_example_keeps_the_html_report_and_the_junit_report():
    artifacts = yaml.safe_load((EXAMPLES / "gitlab-ci.yml").read_text())["fragscan-audit"]["artifacts"]
    assert artifacts["when"] == "always"
    assert {f"{OUT}/report.html", f"{OUT}/report.json"} <= set(artifacts["paths"])
    assert artifacts["reports"]["junit"] == f"{OUT}/{AUDIT_FILES['junit']}"


def test_example_policy_is_valid_and_sets_rules():
    policy = load_policy(EXAMPLES / "policy.yaml")
    assert policy.rules() == [
        "min-clean-accuracy",
        "min-adversarial-accuracy",
        "max-fragile-share",
        "must-not-be-fragile",
    ]
