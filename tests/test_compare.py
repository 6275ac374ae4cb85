import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pagecheck import browse, external_references, needs_browser

import fragscan
from fragscan.base.errors import InputError
from fragscan.outputs.comparison import compare, render_comparison_html, roles
from fragscan.report import write_report

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def report():
    # the point rule: no intervals needed, and this file is about matching groups, not deciding classes
    config = fragscan.ScanConfig(max_samples=40, thresholds=3, eps=0.1, filters="pulse", bootstrap=0, classify="tau")
    return fragscan.scan(config)


def _with_score(report, group_index: int, value: float, cls: str):
    """A copy of ``report`` whose group ``group_index`` has pulse S_adv ``value`` of class ``cls``."""
    copy = report.model_copy(deep=True)
    curve = copy.groups[group_index].filters["pulse"]
    curve.scores.adversarial = value
    curve.classes.adversarial = cls
    copy.groups[group_index].summary_class = cls
    return copy


def test_same_architecture_matches_by_name_with_deltas_and_invariance(report):
    changed_class = (
        "antifragile" if report.groups[0].filters["pulse"].classes.adversarial != "antifragile" else "fragile"
    )
    other = _with_score(report, 0, 0.5, changed_class)
    comparison = compare([report, other], ["a.json", "b.json"])
    assert comparison.by == "name" and comparison.filter == "pulse" and comparison.score == "adversarial"
    assert [item.key for item in comparison.items] == [g.name for g in report.groups]
    first = comparison.items[0]
    assert first.invariant is False
    assert first.deltas[1] == pytest.approx(0.5 - report.groups[0].filters["pulse"].scores.adversarial)
    for item, group in zip(comparison.items[1:], report.groups[1:]):
        assert item.deltas == [0.0, 0.0]
        assert item.invariant == (group.summary_class in ("fragile", "robust", "antifragile"))


def test_different_architectures_match_by_role(report):
    other = report.model_copy(deep=True)
    other.model.name = "another-net"
    other.groups = other.groups[:2] + other.groups[3:]  # one conv fewer: names no longer line up by depth
    comparison = compare([report, other], ["a.json", "b.json"], depth_bins=2)
    assert comparison.by == "role"
    keys = {item.key: item for item in comparison.items}
    assert keys["first conv"].members == [["features.0.weight"], ["features.0.weight"]]
    assert keys["last linear"].members == [["classifier.3.weight"], ["classifier.3.weight"]]
    assert keys["depth 0.00–0.50"].members[0] == ["features.0.weight", "features.2.weight", "features.6.weight"]
    assert keys["depth 0.00–0.50"].members[1] == ["features.0.weight", "features.2.weight"]
    assert "shortcut convs" not in keys  # this CNN has no downsample branch


def test_roles_find_resnet_shortcuts(report):
    group = report.groups[0]
    names = [
        "conv1.weight",
        "layer1.0.conv1.weight",
        "layer2.0.downsample.0.weight",
        "layer2.0.conv1.weight",
        "fc.weight",
    ]
    groups = [
        group.model_copy(update={"name": n, "module_type": "Linear" if n == "fc.weight" else "Conv2d"}) for n in names
    ]
    found = roles(groups, 5)
    assert found["first conv"] == ["conv1.weight"]
    assert found["shortcut convs"] == ["layer2.0.downsample.0.weight"]
    assert found["last linear"] == ["fc.weight"]
    assert [found[f"depth {i / 5:.2f}–{(i + 1) / 5:.2f}"] for i in range(5)] == [[n] for n in names]


def test_one_report_is_not_a_comparison(report):
    with pytest.raises(InputError, match="at least two reports"):
        compare([report], ["a.json"])


def test_compare_command_writes_table_json_and_html(report, tmp_path):
    write_report(report, tmp_path / "a.json")
    write_report(_with_score(report, 1, -0.9, "fragile"), tmp_path / "b.json")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fragscan",
            "compare",
            str(tmp_path / "a.json"),
            str(tmp_path / "b.json"),
            "--html",
            str(tmp_path / "c.html"),
            "--json",
            str(tmp_path / "c.json"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stderr
    assert "features.2.weight" in result.stdout and "keep their class in every report" in result.stdout
    saved = json.loads((tmp_path / "c.json").read_text())
    assert saved["items"][1]["scores"][1] == -0.9
    html = (tmp_path / "c.html").read_text()
    assert "features.2.weight" in html and html.count("<svg") == 1
    assert external_references(html) == []


@needs_browser
def test_the_comparison_page_loads_cleanly_in_chromium(report, tmp_path):
    from fragscan.outputs.comparison import render_comparison_html

    page = tmp_path / "c.html"
    page.write_text(render_comparison_html(compare([report, _with_score(report, 1, -0.9, "fragile")], ["a", "b"])))
    seen = browse(page, tmp_path)
    assert seen["console"] == [] and seen["requests"] == []
    assert 'data-ready="true"' in seen["dom"]


def test_compare_says_which_settings_differ_and_shows_them(report):
    """Issue 23.14: 9 vs 25 thresholds, 200 vs 540 samples or another rule change a Δ by themselves."""
    settings = report.settings.model_copy(update={"thresholds": 25, "classify": "evidence", "tau": 0.02})
    other = report.model_copy(
        update={"settings": settings, "baseline": report.baseline.model_copy(update={"samples": 540})}
    )
    comparison = compare([report, other, report], ["a.json", "b.json", "c.json"])
    (warning,) = comparison.warnings
    assert warning.startswith("R2 was scanned with other settings than R1, so its Δ may come from them")
    assert "thresholds 3 → 25" in warning and "classify tau → evidence" in warning and "tau 0.01 → 0.02" in warning
    assert "samples 40 → 540" in warning
    html = render_comparison_html(comparison)
    assert "warning: R2 was scanned with other settings" in html
    assert '<td class="num">540</td><td class="num">25</td><td><code>evidence</code>, τ = 0.02</td>' in html
    assert compare([report, report], ["a.json", "a.json"]).warnings == []


def test_roles_come_from_the_whole_network_not_the_selection(report):
    """Issue 23.15: with --select the first conv was the first *selected* conv."""
    config = fragscan.ScanConfig(
        max_samples=40, thresholds=3, eps=0.1, filters="pulse", bootstrap=0, classify="tau", select=("classifier.*",)
    )
    selected = fragscan.scan(config)
    assert [g.name for g in selected.network] == [g.name for g in report.groups]
    other = report.model_copy(update={"model": report.model.model_copy(update={"name": "another-net"})})
    items = {item.key: item for item in compare([other, selected], ["a.json", "b.json"], depth_bins=5).items}
    assert items["first conv"].members == [["features.0.weight"], []] and items["first conv"].classes[1] == "absent"
    assert items["last linear"].members == [["classifier.3.weight"], ["classifier.3.weight"]]
    assert items["depth 0.60–0.80"].members == [["classifier.1.weight"], ["classifier.1.weight"]]
    assert report.network is None  # no --select: the groups are the network
    older = selected.model_copy(update={"network": None})  # a schema 2.1 report did not record it
    with pytest.raises(InputError, match=r"scanned with --select classifier\.\* and does not record the whole network"):
        compare([other, older], ["a.json", "b.json"])
