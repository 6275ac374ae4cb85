"""fragscan audit: every rule passes and fails where it should; exit codes; JUnit and SARIF structure."""

import json
import xml.etree.ElementTree as ET

import pytest
from typer.testing import CliRunner

import fragscan
from fragscan.base.errors import InputError
from fragscan.cli import app
from fragscan.outputs.auditing import AUDIT_FILES, AuditPolicy, audit, junit_xml, load_policy, sarif
from fragscan.report import write_report

runner = CliRunner()


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    """One real scan of the embedded default, written to disk: (report, path)."""
    config = fragscan.ScanConfig(max_samples=40, thresholds=3, eps=0.1, batch_size=64)
    report = fragscan.scan(config)
    path = tmp_path_factory.mktemp("scan") / "report.json"
    write_report(report, path)
    return report, path


def with_classes(report, classes: dict[str, str]):
    """A copy of ``report`` whose groups carry the given summary classes (others unchanged)."""
    groups = [g.model_copy(update={"summary_class": classes.get(g.name, g.summary_class)}) for g in report.groups]
    return report.model_copy(update={"groups": groups})


def with_score(report, group: str, filter_id: str, score: str, delta: float):
    """A copy of ``report`` with one filtering score shifted by ``delta``."""
    groups = []
    for g in report.groups:
        if g.name == group:
            curve = g.filters[filter_id]
            scores = curve.scores.model_copy(update={score: getattr(curve.scores, score) + delta})
            g = g.model_copy(update={"filters": {**g.filters, filter_id: curve.model_copy(update={"scores": scores})}})
        groups.append(g)
    return report.model_copy(update={"groups": groups})


def only_rule(result):
    assert len(result.rules) == 1
    return result.rules[0]


def test_no_threshold_means_no_rule_and_a_pass(scanned):
    report, _ = scanned
    result = audit(report, AuditPolicy())
    assert result.passed and result.rules == []


@pytest.mark.parametrize(
    ("field", "measured"), [("min_clean_accuracy", "clean"), ("min_adversarial_accuracy", "adversarial")]
)
def test_accuracy_floors_pass_at_the_value_and_fail_above_it(scanned, field, measured):
    report, _ = scanned
    value = getattr(report.baseline, measured)
    assert 0 < value < 0.99
    at = only_rule(audit(report, AuditPolicy(**{field: value})))
    above = only_rule(audit(report, AuditPolicy(**{field: value + 0.01})))
    assert at.passed and at.measured == value and at.id == field.replace("_", "-")
    assert not above.passed and len(above.findings) == 1


def test_fragile_share_counts_summary_classes(scanned):
    report, _ = scanned
    names = [g.name for g in report.groups]
    report = with_classes(report, {name: "robust" for name in names[2:]} | {names[0]: "fragile", names[1]: "fragile"})
    share = 2 / len(names)
    allowed = only_rule(audit(report, AuditPolicy(max_fragile_share=share)))
    exceeded = only_rule(audit(report, AuditPolicy(max_fragile_share=share - 0.01)))
    assert allowed.passed and allowed.measured == pytest.approx(share)
    assert not exceeded.passed
    assert sorted(f.group for f in exceeded.findings) == sorted(names[:2])


def test_must_not_be_fragile_guards_matching_groups_only(scanned):
    report, _ = scanned
    classes = {g.name: "robust" for g in report.groups} | {
        "features.0.weight": "fragile",
        "classifier.3.weight": "antifragile",
    }
    report = with_classes(report, classes)
    guarded_ok = only_rule(audit(report, AuditPolicy(must_not_be_fragile=["classifier.3.*"])))
    violated = only_rule(audit(report, AuditPolicy(must_not_be_fragile=["classifier.3.*", "features.0.*"])))
    assert guarded_ok.passed
    assert not violated.passed
    assert [f.group for f in violated.findings] == ["features.0.weight"]
    assert violated.findings[0].filter == report.settings.summary_filter


def test_must_not_be_fragile_glob_that_matches_nothing_is_an_input_error(scanned):
    report, _ = scanned
    with pytest.raises(InputError, match="'classifer.*' matches no group"):
        audit(report, AuditPolicy(must_not_be_fragile=["classifer.*"]))


def test_regression_against_an_identical_baseline_is_zero(scanned):
    report, _ = scanned
    rule = only_rule(audit(report, AuditPolicy(max_regression=0.0), baseline=report))
    assert rule.passed and rule.measured == 0.0


def test_regression_names_the_score_that_fell(scanned):
    report, _ = scanned
    better_before = with_score(report, "features.2.weight", "pulse", "adversarial", +0.05)
    strict = only_rule(audit(report, AuditPolicy(max_regression=0.01), baseline=better_before))
    lenient = only_rule(audit(report, AuditPolicy(max_regression=0.06), baseline=better_before))
    assert not strict.passed and lenient.passed
    assert strict.measured == pytest.approx(0.05)
    [finding] = strict.findings
    assert (finding.group, finding.filter, finding.score) == ("features.2.weight", "pulse", "adversarial")
    assert finding.reference - finding.value == pytest.approx(0.05)


def test_regression_needs_a_baseline_and_warns_about_other_settings(scanned):
    report, _ = scanned
    with pytest.raises(InputError, match="max-regression needs a baseline report"):
        audit(report, AuditPolicy(max_regression=0.1))
    other_eps = report.model_copy(update={"settings": report.settings.model_copy(update={"eps_used": 0.2})})
    result = audit(report, AuditPolicy(max_regression=1.0), baseline=other_eps)
    assert result.passed
    assert any("eps_used 0.2 → 0.1" in w for w in result.warnings)
    in_bf16 = report.model_copy(update={"settings": report.settings.model_copy(update={"precision_used": "bf16"})})
    assert any(
        "precision_used bf16 → fp32" in w
        for w in audit(report, AuditPolicy(max_regression=1.0), baseline=in_bf16).warnings
    )


def test_group_rules_refuse_a_global_scan(scanned):
    report, _ = scanned
    global_report = report.model_copy(
        update={"settings": report.settings.model_copy(update={"scope": "global"}), "groups": []}
    )
    with pytest.raises(InputError, match="scope is 'global'"):
        audit(global_report, AuditPolicy(max_fragile_share=0.5))
    assert audit(global_report, AuditPolicy(min_clean_accuracy=0.5)).passed


def test_policy_files_yaml_and_json_agree_and_baseline_is_relative_to_the_file(tmp_path):
    (tmp_path / "sub").mkdir()
    yaml_file = tmp_path / "sub" / "policy.yaml"
    yaml_file.write_text(
        "min_clean_accuracy: 0.9\nmust_not_be_fragile: classifier.*\nmax_regression: 0.02\nbaseline_report: old.json\n"
    )
    json_file = tmp_path / "sub" / "policy.json"
    values = {"min_clean_accuracy": 0.9, "must_not_be_fragile": ["classifier.*"], "max_regression": 0.02}
    json_file.write_text(json.dumps(values | {"baseline_report": "old.json"}))
    from_yaml, from_json = load_policy(yaml_file), load_policy(json_file)
    assert from_yaml == from_json
    assert from_yaml.baseline_report == tmp_path / "sub" / "old.json"
    assert from_yaml.rules() == ["min-clean-accuracy", "must-not-be-fragile", "max-regression"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("min_clean_acuracy: 0.9\n", "unknown key 'min_clean_acuracy'; did you mean min_clean_accuracy?"),
        ("min_clean_accuracy: 1.5\n", "min_clean_accuracy: Input should be less than or equal to 1"),
        ("- 0.9\n", "must be a mapping"),
        ("min_clean_accuracy: [0.9\n", "is not valid YAML"),
        ("min_clean_accuracy: true\n", "min_clean_accuracy: Input should be a valid number"),  # not 1.0
        ("min_clean_accuracy: .nan\n", "min_clean_accuracy: Input should be a finite number"),  # not "should be <= 1"
        ("max_regression: .inf\n", "max_regression: Input should be a finite number"),
        ("min_clean_accuracy: 0.5\nmin_clean_accuracy: 0.9\n", "sets 'min_clean_accuracy' twice; keep one value"),
        ("allow_near_chance: yes please\n", "allow_near_chance: Input should be a valid boolean"),
    ],
)
def test_bad_policy_files_say_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=message.replace("?", r"\?").replace("[", r"\[")):
        load_policy(path)


def _audit_cli(*arguments):
    return runner.invoke(app, ["audit", *map(str, arguments)])


def test_cli_exit_0_on_pass_and_writes_three_files(scanned, tmp_path):
    report, path = scanned
    result = _audit_cli(path, "--min-clean-accuracy", report.baseline.clean, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert "PASSED: 1 of 1 rules pass" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(AUDIT_FILES.values())
    assert json.loads((tmp_path / "audit.json").read_text())["passed"] is True


def test_cli_exit_1_on_violation_still_writes_the_files(scanned, tmp_path):
    report, path = scanned
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"min_clean_accuracy: {report.baseline.clean}\nmin_adversarial_accuracy: 1.0\n")
    result = _audit_cli(path, "--policy", policy, "--out", tmp_path / "out")
    assert result.exit_code == 1, result.output
    assert "policy violated: 1 of 2 rules failed (min-adversarial-accuracy)" in result.output
    saved = json.loads((tmp_path / "out" / "audit.json").read_text())
    assert [r["passed"] for r in saved["rules"]] == [True, False]


def test_cli_options_override_the_policy_file(scanned, tmp_path):
    _, path = scanned
    policy = tmp_path / "policy.yaml"
    policy.write_text("min_adversarial_accuracy: 1.0\n")
    result = _audit_cli(path, "--policy", policy, "--min-adversarial-accuracy", "0", "--out", tmp_path)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["missing.json"], "report 'missing.json' not found"),
        (["{report}", "--policy", "missing.yaml"], "policy file 'missing.yaml' not found"),
        (["{report}", "--max-fragile-share", "2"], "--max-fragile-share: Input should be less than or equal to 1"),
        (["{report}", "--max-regression", "0.1"], "max-regression needs a baseline report"),
        (["{report}", "--max-regression", "0.1", "--baseline", "old.json"], "report 'old.json' not found"),
        (["{report}", "--must-not-be-fragile", "nothing*"], "'nothing*' matches no group"),
    ],
)
def test_cli_exit_2_on_bad_input_is_one_line_and_writes_nothing(scanned, tmp_path, arguments, message):
    _, path = scanned
    out = tmp_path / "out"
    result = _audit_cli(*[str(path) if a == "{report}" else a for a in arguments], "--out", out)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (out / "audit.json").exists()


def test_cli_exit_3_on_a_runtime_failure(scanned, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("fragscan.cli.audit.run_audit", broken)
    result = _audit_cli(scanned[1], "--min-clean-accuracy", "0.5", "--out", tmp_path)
    assert result.exit_code == 3
    assert "disk on fire" in result.output


def test_scan_with_a_policy_audits_its_own_report(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("min_clean_accuracy: 0.5\nmin_adversarial_accuracy: 1.0\n")
    out = tmp_path / "out"
    arguments = ["scan", "--max-samples", "20", "--thresholds", "3", "--eps", "0.1", "--quiet", "--out", str(out)]
    result = runner.invoke(app, [*arguments, "--policy", str(policy)])
    assert result.exit_code == 1, result.output
    assert (out / "report.json").exists()
    saved = json.loads((out / "audit.json").read_text())
    assert saved["report"]["path"] == str(out / "report.json")
    assert [r["id"] for r in saved["rules"] if not r["passed"]] == ["min-adversarial-accuracy"]


def test_scan_with_a_bad_policy_fails_before_scanning(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("max_regression: 0.1\n")
    out = tmp_path / "out"
    result = runner.invoke(app, ["scan", "--max-samples", "20", "--out", str(out), "--policy", str(policy)])
    assert result.exit_code == 2
    assert "max-regression needs a baseline report" in result.output
    assert not (out / "report.json").exists()


def failing_result(report):
    """Two rules set, one violated by two groups."""
    classes = {g.name: "robust" for g in report.groups} | {
        "features.0.weight": "fragile",
        "features.2.weight": "fragile",
    }
    report = with_classes(report, classes)
    policy = AuditPolicy(min_clean_accuracy=0.0, must_not_be_fragile=["features.*", "classifier.3.*"])
    return audit(report, policy, report_path="runs/x/report.json")


def test_junit_has_one_testcase_per_rule_and_a_failure_per_violated_rule(scanned):
    result = failing_result(scanned[0])
    root = ET.fromstring(junit_xml(result))
    assert root.tag == "testsuites"
    [suite] = root.findall("testsuite")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["min-clean-accuracy", "must-not-be-fragile"]
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    assert cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert failure is not None and failure.get("type") == "PolicyViolation"
    assert "features.0.weight" in failure.text and "features.2.weight" in failure.text


_SARIF_LEVELS = {"none", "note", "warning", "error"}


def test_sarif_has_the_fields_the_2_1_0_schema_requires(scanned):
    result = failing_result(scanned[0])
    document = json.loads(json.dumps(sarif(result)))  # must survive a JSON round trip
    assert document["version"] == "2.1.0"
    assert document["$schema"].endswith("sarif-schema-2.1.0.json")
    [run] = document["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "fragscan"
    rule_ids = [rule["id"] for rule in driver["rules"]]
    assert rule_ids == ["min-clean-accuracy", "must-not-be-fragile"]
    assert all(rule["shortDescription"]["text"] for rule in driver["rules"])
    assert len(run["results"]) == 2  # one per fragile guarded group
    for entry in run["results"]:
        assert entry["ruleId"] in rule_ids
        assert rule_ids[entry["ruleIndex"]] == entry["ruleId"]
        assert entry["level"] in _SARIF_LEVELS
        assert entry["message"]["text"]
        [location] = entry["locations"]
        assert location["physicalLocation"]["artifactLocation"]["uri"] == "runs/x/report.json"
        assert location["physicalLocation"]["region"]["startLine"] >= 1
    groups = {e["locations"][0]["logicalLocations"][0]["name"] for e in run["results"]}
    assert groups == {"features.0.weight", "features.2.weight"}


def test_passing_audit_has_no_sarif_results_and_no_junit_failures(scanned):
    result = audit(scanned[0], AuditPolicy(min_clean_accuracy=0.0))
    assert sarif(result)["runs"][0]["results"] == []
    assert ET.fromstring(junit_xml(result)).find(".//failure") is None


def test_summary_fits_one_screen_when_everything_fails(scanned, tmp_path):
    report, path = scanned
    baseline = tmp_path / "old.json"
    write_report(with_score(report, "features.0.weight", "pulse", "clean", 1.0), baseline)
    result = _audit_cli(
        path, "--min-clean-accuracy", "1", "--min-adversarial-accuracy", "1", "--max-fragile-share", "0",
        "--must-not-be-fragile", "*", "--max-regression", "0", "--baseline", baseline, "--out", tmp_path,
    )  # fmt: skip
    assert result.exit_code == 1
    assert "FAILED" in result.output
    assert len(result.output.splitlines()) <= 40


def test_audit_explains_itself_and_its_exit_codes():
    result = runner.invoke(app, ["audit", "--help"])
    assert result.exit_code == 0
    assert "exit 0 pass, 1 violated, 2 bad input, 3 failure" in " ".join(result.output.split())
    assert "--policy" in runner.invoke(app, ["scan", "--help"]).output


def test_a_pass_over_an_inconclusive_guarded_group_says_so_in_the_terminal(scanned, tmp_path):
    """Issue 23.20: `must-not-be-fragile … pass` while the guarded group was inconclusive; only audit.json told."""
    report, _ = scanned
    guarded = report.groups[-1].name
    undecided = with_classes(report, {guarded: "inconclusive"})
    path = tmp_path / "report.json"
    write_report(undecided, path)
    result = _audit_cli(path, "--must-not-be-fragile", guarded, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "pass, 1 undecided" in output
    assert f"? must-not-be-fragile: passes, but could not judge 1 of its groups {guarded} is inconclusive" in output
    assert "PASSED: 1 of 1 rules pass (1 without judging every group: see ? above)" in output
    (rule,) = json.loads((tmp_path / "audit.json").read_text())["rules"]
    assert rule["undecided"][0]["group"] == guarded
    decided = with_classes(report, {guarded: "robust"})
    write_report(decided, path)
    result = _audit_cli(path, "--must-not-be-fragile", guarded, "--out", tmp_path)
    assert "undecided" not in result.output and "PASSED: 1 of 1 rules pass\n" in result.output
