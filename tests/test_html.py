"""The HTML report and the curves CSV, checked in a real headless browser (Debian chromium)."""

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pagecheck import browse, external_references, measure, needs_browser
from PIL import Image
from typer.testing import CliRunner

import fragscan
from fragscan.cli import app
from fragscan.outputs.auditing import AuditPolicy, audit
from fragscan.outputs.comparison import compare, render_comparison_html
from fragscan.pipeline.writing import write_scan_outputs
from fragscan.report import load_report
from fragscan.report.html import render_html
from fragscan.report.io import report_json
from fragscan.report.plots import CLASS_COLOURS
from fragscan.report.tables import CURVE_COLUMNS, curves_csv

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    config = fragscan.ScanConfig(max_samples=40, thresholds=3, eps=0.1, batch_size=40, bootstrap=100)
    directory = tmp_path_factory.mktemp("scan")
    write_scan_outputs(fragscan.scan(config), directory)
    return directory


def test_every_scan_writes_json_csv_and_html(scanned):
    assert {p.name for p in scanned.iterdir()} >= {"report.json", "curves.csv", "report.html"}


def test_the_curves_csv_is_tidy_and_matches_the_report(scanned):
    report = load_report(scanned / "report.json")
    rows = list(csv.DictReader(io.StringIO((scanned / "curves.csv").read_text())))
    assert tuple(rows[0]) == CURVE_COLUMNS
    assert len(rows) == len(report.groups) * len(report.settings.filters) * report.settings.thresholds
    for row in rows:
        curve = next(g for g in report.groups if g.name == row["group"]).filters[row["filter"]]
        index = int(row["threshold_index"])
        assert float(row["threshold"]) == curve.thresholds[index]
        assert float(row["position"]) == curve.positions[index]
        assert int(row["removed"]) == curve.removed[index]
        assert int(row["samples"]) == curve.samples == report.baseline.samples
        assert float(row["clean"]) == curve.clean[index]
        assert float(row["adversarial"]) == curve.adversarial[index]


def test_the_page_shows_every_group_score_interval_and_class(scanned):
    report = load_report(scanned / "report.json")
    html = (scanned / "report.html").read_text()
    assert html.count("<svg") == len(report.groups) + 2  # one curve figure per group, heatmap, class map
    for group in report.groups:
        assert group.name in html
        curve = group.filters["pulse"]
        assert f"{curve.scores.adversarial:+.4f}" in html
        low, high = curve.intervals.adversarial
        assert f"[{low:+.4f}, {high:+.4f}]" in html
    assert f"{report.baseline.clean:.3f}" in html and report.model.name in html
    assert external_references(html) == []


def test_the_page_is_rendered_from_the_json_alone_and_reproducibly(scanned):
    report = load_report(scanned / "report.json")
    assert render_html(report) == render_html(load_report(scanned / "report.json"))


def test_report_command_rerenders_from_json(scanned, tmp_path):
    out = tmp_path / "page.html"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fragscan",
            "report",
            str(scanned / "report.json"),
            "-o",
            str(out),
            "--csv",
            str(tmp_path / "c.csv"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    assert out.read_text() == (scanned / "report.html").read_text()
    assert (tmp_path / "c.csv").read_text() == (scanned / "curves.csv").read_text()


def test_report_command_rejects_a_non_report_in_one_line(tmp_path):
    bogus = tmp_path / "x.json"
    bogus.write_text('{"hello": 1}')
    result = subprocess.run(
        [sys.executable, "-m", "fragscan", "report", str(bogus)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 2
    assert "is not a fragscan report" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "report.html").exists()


@needs_browser
def test_the_page_loads_in_chromium_without_errors_or_requests_and_is_not_blank(scanned, tmp_path):
    seen = browse(scanned / "report.html", tmp_path)
    assert seen["console"] == []
    assert seen["requests"] == []
    assert 'data-ready="true"' in seen["dom"]  # the inline script ran to its end
    image = Image.open(seen["screenshot"]).convert("L")
    low, high = image.getextrema()
    assert high - low > 100
    colours = len(np.unique(np.asarray(image)))
    assert colours > 20, "the screenshot is (nearly) blank"


# ResNet-50's longest tensor names, and numbers as wide as its largest tensors'.
_RESNET50_NAMES = ["conv1.weight"] + [
    f"layer{stage}.{block}.{part}"
    for stage, blocks in ((1, 3), (2, 4), (3, 6), (4, 3))
    for block in range(blocks)
    for part in ("conv1.weight", "conv2.weight", "conv3.weight", *(("downsample.0.weight",) if block == 0 else ()))
] + ["fc.weight"]


@pytest.fixture(scope="module")
def resnet50_sized(scanned, tmp_path_factory):
    """A 54-group page (ResNet-50's groups × 3 filters), built from the scanned report's groups."""
    return _resnet50_page(json.loads((scanned / "report.json").read_text()), tmp_path_factory.mktemp("resnet50"))


def _resnet50_page(data: dict, directory: Path) -> Path:
    """``directory`` holding the page of the report ``data`` with its groups repeated under ResNet-50's names."""
    groups = data["groups"]
    data["groups"] = [
        {**groups[i % len(groups)], "name": name, "numel": 2359296 + i, "shape": [512, 512, 3, 3]}
        for i, name in enumerate(_RESNET50_NAMES)
    ]
    (directory / "report.html").write_text(render_html(fragscan.Report.model_validate(data)))
    return directory


# Reads the groups table's layout: overflow, row heights, folding (a group's button and the
# all-groups one), the header while the table scrolls under it, the curve panels' folding.
_LAYOUT = """
const table = document.querySelector("table.groups");
const shown = () => Array.from(table.querySelectorAll("tbody tr")).filter((row) => !row.hidden);
const heights = () => shown().map((row) => row.getBoundingClientRect().height);
const page = document.documentElement;
const seen = {groups: table.tBodies.length, rows: shown().length, heights: heights(),
  pageWidth: page.scrollWidth, windowWidth: page.clientWidth, tableRight: table.getBoundingClientRect().right};
const button = table.tBodies[1].querySelector("button.fold");
if (button) {
  button.click();
  seen.unfolded = shown().length; seen.unfoldedHeights = heights(); seen.unfoldedWidth = page.scrollWidth;
  button.click(); seen.refolded = shown().length;
  document.querySelector("button[data-fold-all]").click(); seen.all = shown().length; seen.allWidth = page.scrollWidth;
  document.querySelector("button[data-fold-all]").click(); seen.allRefolded = shown().length;
}
window.scrollTo(0, window.scrollY + table.getBoundingClientRect().top + table.offsetHeight / 2);
seen.headerTop = table.tHead.rows[0].cells[0].getBoundingClientRect().top;
seen.tableTop = table.getBoundingClientRect().top;
const panels = Array.from(document.querySelectorAll("details.panel"));
seen.panels = panels.length; seen.openPanels = panels.filter((p) => p.open).length;
table.tBodies[2].querySelector("a").click();
seen.openedByLink = panels.filter((p) => p.open).map((p) => p.id);
return seen;
"""


@needs_browser
@pytest.mark.parametrize("which", ["default", "resnet50"])
def test_the_groups_table_holds_at_1400_px(which, scanned, resnet50_sized, tmp_path):
    """Issue 23.11: no sideways page scroll at 1400 px, even rows of two text lines, each group's other
    filters folded under its row, the header in view while the table scrolls, curve panels that fold."""
    directory = scanned if which == "default" else resnet50_sized
    seen = measure(directory / "report.html", tmp_path, _LAYOUT, width=1400)
    assert seen["pageWidth"] <= seen["windowWidth"] and seen["tableRight"] <= seen["windowWidth"], seen
    assert seen["rows"] == seen["groups"] == (5 if which == "default" else 54)
    assert max(seen["heights"]) - min(seen["heights"]) < 1 and max(seen["heights"]) < 42, seen["heights"]
    assert seen["unfolded"] == seen["groups"] + 2 and seen["refolded"] == seen["groups"]
    assert seen["all"] == 3 * seen["groups"] and seen["allRefolded"] == seen["groups"]
    assert max(seen["unfoldedHeights"]) - min(seen["unfoldedHeights"]) < 1
    assert max(seen["unfoldedWidth"], seen["allWidth"]) <= seen["windowWidth"]
    assert seen["tableTop"] < 0 and abs(seen["headerTop"]) < 1, "the header scrolled away with the table"
    assert seen["panels"] == seen["groups"]
    assert seen["openPanels"] == (seen["groups"] if which == "default" else 0)
    assert "curves-3" in seen["openedByLink"]


@needs_browser
def test_the_browser_check_catches_console_errors_and_requests(tmp_path):
    """The negative control: the same checks flag a page that logs an error and fetches an image."""
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><body><img src="http://example.invalid/x.png">'
        '<script>console.error("deliberate");</script></body></html>'
    )
    seen = browse(page, tmp_path)
    assert any("deliberate" in line for line in seen["console"])
    assert seen["requests"] == ["http://example.invalid/x.png"]
    assert external_references(page.read_text()) == ["http://example.invalid/x.png"]


def test_a_global_scope_scan_renders_its_curves_and_csv_rows():
    config = fragscan.ScanConfig(max_samples=40, thresholds=3, eps=0.1, batch_size=40, bootstrap=50, scope="global")
    report = fragscan.scan(config)
    html = render_html(report)
    assert "Global scope" in html and html.count("<svg") == 1
    assert f"{report.global_['pulse'].scores.adversarial:+.4f}" in html
    rows = list(csv.DictReader(io.StringIO(curves_csv(report))))
    assert len(rows) == 3 * 3 and {r["group"] for r in rows} == {"(global)"} and rows[0]["numel"] == ""


@pytest.mark.parametrize("huge", [1e308, -1e308, 1.7e308])
def test_a_report_with_a_huge_finite_score_renders_with_short_numbers(scanned, tmp_path, huge):
    """JSON allows any finite float; a damaged report's 1e308 once overflowed the colour bar (issue 23.7)."""
    data = json.loads((scanned / "report.json").read_text())
    data["groups"][0]["filters"]["pulse"]["scores"]["adversarial"] = huge
    data["groups"][1]["filters"]["pulse"]["scores"]["difference"] = -huge
    damaged = tmp_path / "report.json"
    damaged.write_text(json.dumps(data))
    result = CliRunner().invoke(app, ["report", str(damaged), "-o", str(tmp_path / "page.html")])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "page.html").read_text()
    assert f"{huge:+.3e}" in html and "0" * 20 not in html


def _contrast(foreground: str, background: str) -> float:
    def luminance(colour):
        channels = [int(colour.lstrip("#").ljust(6, colour.lstrip("#")[-1])[i : i + 2], 16) / 255 for i in (0, 2, 4)]
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _badges(html: str) -> dict[str, tuple[str, str]]:
    found = re.findall(r"\.class-([a-z]+) \{ background: (#[0-9a-f]{6}); color: (#[0-9a-f]{3,6}); \}", html)
    return {name: (background, text) for name, background, text in found}


def test_every_class_badge_is_readable(scanned, tmp_path):
    """Issue 23.22: white on inconclusive's light grey was unreadable; WCAG AA asks 4.5:1 for text."""
    html = (scanned / "report.html").read_text()
    badges = _badges(html)
    assert set(badges) == set(CLASS_COLOURS)
    for name, (background, text) in badges.items():
        assert _contrast(text, background) >= 4.5, name
    report = load_report(scanned / "report.json")
    compared = _badges(render_comparison_html(compare([report, report], ["a", "b"])))
    assert {"mixed", "absent"} <= set(compared)
    assert all(_contrast(text, background) >= 4.5 for background, text in compared.values())


def test_the_heatmap_shows_undefined_in_the_class_maps_colour_and_says_so(scanned):
    """Issue 23.22: the heatmap's grey meant undefined where the class map's grey means inconclusive."""
    report = load_report(scanned / "report.json")
    curve = report.groups[0].filters["pulse"]
    undefined = curve.model_copy(update={"scores": curve.scores.model_copy(update={"adversarial": None})})
    group = report.groups[0].model_copy(update={"filters": {**report.groups[0].filters, "pulse": undefined}})
    html = render_html(report.model_copy(update={"groups": [group, *report.groups[1:]]}))
    heatmap = html[html.index('<section id="heatmap">') : html.index('<section id="classes">')]
    assert "Grey: undefined" not in heatmap and "Purple, as in the class map: undefined" in heatmap
    assert f"fill: {CLASS_COLOURS['undefined']}" in heatmap


def test_inconclusive_groups_come_with_what_would_decide_them(scanned):
    """Issue 23.22: more samples, --adaptive, a larger τ, each with what it costs; nothing when all are decided."""
    report = load_report(scanned / "report.json")
    undecided = [
        g.model_copy(update={"summary_class": "inconclusive", "samples_to_decide": 400}) for g in report.groups
    ]
    html = render_html(report.model_copy(update={"groups": undecided}))
    advice = html[html.index('id="next-steps"') :]
    advice = advice[: advice.index("</div>")]
    size = report.dataset.size
    assert f"<code>--max-samples {size}</code>" in advice
    assert f"about {report.run.duration_s * size / 40:.0f} s" in advice
    assert "<code>--adaptive</code>" in advice and f"<code>--tau {2 * report.settings.tau:g}</code>" in advice
    decided = [g.model_copy(update={"summary_class": "robust", "samples_to_decide": None}) for g in report.groups]
    assert 'id="next-steps"' not in render_html(report.model_copy(update={"groups": decided}))


def test_the_page_shows_the_attacks_hyperparameters(scanned):
    report = load_report(scanned / "report.json")
    assert report.settings.attack_parameters == {"eps": 0.1}
    pgd = report.settings.model_copy(
        update={"attack": "PGD", "attack_parameters": {"eps": 0.1, "alpha": 0.025, "steps": 10, "random_start": True}}
    )
    html = render_html(report.model_copy(update={"settings": pgd}))
    assert (
        "Attack <code>PGD</code> as built: alpha <code>0.025</code>, eps <code>0.1</code>, "
        "random_start <code>True</code>, steps <code>10</code>." in html
    )


def test_a_schema_2_1_report_still_loads_renders_and_audits(scanned, tmp_path):
    data = json.loads((scanned / "report.json").read_text())
    del data["settings"]["attack_parameters"]
    data["schema_version"] = "2.1"
    old = tmp_path / "report.json"
    old.write_text(json.dumps(data))
    report = load_report(old)
    assert report.schema_version == "2.1" and report.settings.attack_parameters is None
    assert "as built" not in render_html(report)
    assert audit(report, AuditPolicy(min_clean_accuracy=0.5)).passed


def test_the_render_benchmark_runs():
    """Issue 23.23: benchmarks/report_render.py had fallen behind scan's scoring (TypeError: _filter_curve())."""
    result = subprocess.run(
        [sys.executable, "benchmarks/report_render.py", "--groups", "2", "--samples", "40", "--bootstrap", "10"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    assert "2 groups × 3 filters × 25 thresholds, 40 samples" in result.stdout and "html:" in result.stdout


@pytest.fixture(scope="module")
def resnet50_profile(tmp_path_factory):
    """A 54-group × 5-budget profile page (ResNet-50's groups × 3 filters), built from a real profile
    scan's groups as the 54-group page is."""
    config = fragscan.ScanConfig(
        max_samples=40, thresholds=3, batch_size=40, bootstrap=100, threat="FGSM@0.02,0.05,0.1,0.15,0.2"
    )
    return _resnet50_page(json.loads(report_json(fragscan.scan(config))), tmp_path_factory.mktemp("resnet50-profile"))


# Reads the threat section's layout: overflow, its figures' widths, the per-group panels' folding, the
# height the surfaces' overview gives each group.
_THREAT_LAYOUT = """
const section = document.getElementById("threat");
const page = document.documentElement;
const panels = Array.from(section.querySelectorAll("details.panel"));
const figures = Array.from(section.querySelectorAll("svg")).map((svg) => svg.getBoundingClientRect());
const seen = {pageWidth: page.scrollWidth, windowWidth: page.clientWidth, panels: panels.length,
  openPanels: panels.filter((p) => p.open).length, figures: figures.length,
  figuresRight: Math.max(...figures.map((r) => r.right)),
  rows: section.querySelectorAll("table.sortable tbody tr").length, overviewHeight: figures[1].height};
section.querySelectorAll("table.sortable tbody tr")[2].querySelector("a").click();
seen.openedByLink = panels.filter((p) => p.open).map((p) => p.id);
return seen;
"""


@needs_browser
def test_a_54_group_5_budget_profile_page_holds_at_1400_px_without_errors_or_requests(resnet50_profile, tmp_path):
    """Issue 20: the page stays readable at 50+ groups and 5 budgets."""
    page = resnet50_profile / "report.html"
    seen = measure(page, tmp_path, _THREAT_LAYOUT, width=1400)
    assert seen["pageWidth"] <= seen["windowWidth"] and seen["figuresRight"] <= seen["windowWidth"], seen
    assert seen["rows"] == seen["panels"] == 54
    assert seen["openPanels"] == 0 and seen["openedByLink"] == ["surface-3"]  # folded, a group's link opens its own
    assert seen["figures"] == 2 + 54  # the class map by budget, the surfaces' overview, a score chart per group
    assert seen["overviewHeight"] / 54 >= 10, "the overview's rows are too thin to read"
    (tmp_path / "browse").mkdir()
    browsed = browse(page, tmp_path / "browse")
    assert browsed["console"] == [] and browsed["requests"] == []
    assert 'data-ready="true"' in browsed["dom"]
