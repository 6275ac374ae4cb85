"""Classes the evidence supports (method §5, §6): hand-computed oracles, scipy as the reference for
threshold tests, and everything recomputed from a saved report alone."""

import math

import numpy as np
import pytest
from safetensors import safe_open
from scipy.stats import binomtest, false_discovery_control, norm
from typer.testing import CliRunner

import fragscan
from fragscan.cli import app
from fragscan.outputs.auditing import AuditPolicy, audit
from fragscan.outputs.auditing.writing import junit_xml, sarif
from fragscan.outputs.comparison import compare
from fragscan.outputs.masks import build_mask
from fragscan.report import load_report, write_report
from fragscan.report.html import render_html
from fragscan.scoring.classify import classify, samples_to_decide
from fragscan.scoring.confidence import Bootstrap, family_level, unpack_bits
from fragscan.scoring.evidence import judge, paired_interval, sign_test

TAU = 0.01


@pytest.mark.parametrize(
    ("interval", "expected"),
    [
        ((-0.03, -0.011), "fragile"),  # wholly below −τ
        ((-0.03, -0.01), "inconclusive"),  # touches −τ: not wholly below it
        ((-0.02, -0.005), "inconclusive"),  # straddles −τ
        ((-0.01, 0.01), "robust"),  # exactly ±τ: within
        ((-0.01, 0.004), "robust"),
        ((-0.0101, 0.0), "inconclusive"),  # just past −τ
        ((-0.005, 0.02), "inconclusive"),  # straddles +τ
        ((-0.02, 0.02), "inconclusive"),  # straddles both
        ((0.01, 0.03), "inconclusive"),  # touches +τ: not wholly above it
        ((0.0101, 0.03), "antifragile"),
        ((0.002, 0.011), "inconclusive"),  # excludes 0, point +0.006 below τ: the old `ci` rule said antifragile
    ],
)
def test_evidence_rule_at_each_boundary(interval, expected):
    point = sum(interval) / 2
    assert classify(point, TAU, interval=interval, rule="evidence") == expected


@pytest.mark.parametrize(
    ("score", "expected"),
    [(-0.0101, "fragile"), (-0.01, "robust"), (0.0, "robust"), (0.01, "robust"), (0.0101, "antifragile")],
)
def test_tau_rule_at_each_boundary_ignores_the_interval(score, expected):
    assert classify(score, TAU, interval=(-0.5, -0.4), rule="tau") == expected
    assert classify(score, TAU, rule="tau") == expected


def test_what_no_rule_can_decide():
    assert classify(-0.5, TAU, interval=None, rule="evidence") == "inconclusive"  # no interval (--bootstrap 0)
    assert classify(-0.5, TAU, interval=(-0.6, -0.4), perturbed=False) == "unperturbed"
    assert classify(None, TAU, interval=None) == "undefined"


def test_samples_to_decide_scales_the_half_width_as_one_over_root_n():
    # margin |−0.05| − 0.01 = 0.04; (0.06 / 0.04)² = 2.25 → 2250 of 1000 samples
    assert samples_to_decide(-0.05, 0.06, 1000, TAU) == 2250
    assert samples_to_decide(0.0, 0.02, 500, TAU) == 2000  # robust needs the half-width under 0.01
    assert samples_to_decide(0.01, 0.02, 500, TAU) is None  # on the boundary: no count decides


def test_paired_interval_is_agresti_min():
    # 3 samples improved, 1 got worse, 6 unchanged; add ½ to each cell: b' = 3.5, c' = 1.5, n' = 12
    d = np.array([1, 1, 1, -1, 0, 0, 0, 0, 0, 0])
    b, c, n = 3.5, 1.5, 12
    centre = (b - c) / n
    half = norm.ppf(0.975) * math.sqrt((b + c) - (b - c) ** 2 / n) / n
    low, high = paired_interval(d, 0.95)
    assert low == pytest.approx(centre - half) and high == pytest.approx(centre + half)
    # no discordant sample: the width is set by the sample count alone
    low, high = paired_interval(np.zeros(540, dtype=int), 0.95)
    assert high == pytest.approx(-low) == pytest.approx(norm.ppf(0.975) / 542)


def test_sign_test_is_scipys_exact_binomial_on_the_discordant_samples():
    d = np.array([1, 1, 1, 1, 1, 1, -1, 0, 0, 2, -2])
    assert sign_test(d) == binomtest(7, 9, 0.5).pvalue
    assert sign_test(np.zeros(5)) == 1.0


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    out = tmp_path_factory.mktemp("scan")
    config = fragscan.ScanConfig(max_samples=120, thresholds=5, eps=0.1, batch_size=32, bootstrap=200)
    written = fragscan.scan_to(config, out)
    return written.report, out


def test_threshold_p_and_q_values_match_scipy_and_intervals_the_bonferroni_level(scanned):
    report, _ = scanned
    samples = report.baseline.samples
    adversarial0 = unpack_bits(report.baseline.correct.adversarial, [samples]).numpy()
    perturbed = [(g, f, i) for g in report.groups for f, c in g.filters.items() for i, n in enumerate(c.changed) if n]
    assert report.settings.threshold_level == 1 - 0.05 / len(perturbed)
    z = norm.ppf(1 - 0.025 / len(perturbed))
    p_adversarial = []
    for group, filter_id, i in perturbed:
        curve = group.filters[filter_id]
        shape = [len(curve.thresholds), samples]
        adversarial = unpack_bits(curve.correct.adversarial, shape).numpy()[i]
        improved, worsened = int((adversarial & ~adversarial0).sum()), int((~adversarial & adversarial0).sum())
        expected = 1.0 if improved + worsened == 0 else binomtest(improved, improved + worsened).pvalue
        assert curve.threshold_p_values.adversarial[i] == pytest.approx(expected, abs=0)
        p_adversarial.append(expected)
        b, c, n = improved + 0.5, worsened + 0.5, samples + 2
        half = z * math.sqrt((b + c) - (b - c) ** 2 / n) / n
        low, high = curve.threshold_intervals.adversarial[i]
        assert (low, high) == (pytest.approx((b - c) / n - half), pytest.approx((b - c) / n + half))
        delta = curve.adversarial[i] - report.baseline.adversarial
        expected_class = classify(delta, report.settings.tau, interval=(low, high), rule="evidence")
        assert curve.threshold_classes.adversarial[i] == expected_class
    q = [group.filters[f].threshold_q_values.adversarial[i] for group, f, i in perturbed]
    assert q == pytest.approx(false_discovery_control(p_adversarial, method="bh").tolist())


def test_unperturbed_thresholds_carry_no_claim(scanned):
    report, _ = scanned
    for group in report.groups:
        for curve in group.filters.values():
            for i, changed in enumerate(curve.changed):
                if not changed:
                    assert curve.threshold_classes.clean[i] == "unperturbed"
                    assert curve.threshold_p_values.clean[i] is None and curve.threshold_intervals.clean[i] is None


def test_summary_classes_use_intervals_simultaneous_over_the_groups(scanned):
    report, _ = scanned
    settings = report.settings
    level = 1 - 0.05 / len(report.groups)
    assert settings.summary_level == level == family_level(len(report.groups)) and settings.filter_level == 0.95
    # 200 resamples: a 95 % tail holds 5, fewer than 25, so both are normal intervals (the score ± z SE)
    assert (settings.interval_min_tail, settings.filter_method, settings.summary_method) == (25, "normal", "normal")
    samples = report.baseline.samples
    bootstrap = Bootstrap(
        *(unpack_bits(getattr(report.baseline.correct, k), [samples]) for k in ("clean", "adversarial")),
        settings.bootstrap, settings.seed,
    )
    for group in report.groups:
        curve = group.filters["pulse"]
        shape = [len(curve.thresholds), samples]
        bits = [unpack_bits(getattr(curve.correct, k), shape) for k in ("clean", "adversarial")]
        expected = bootstrap.intervals(*bits, curve.positions, level=level).adversarial
        assert group.summary_interval == pytest.approx(expected)
        low, high = group.summary_interval
        score = curve.scores.adversarial  # the interval is centred on the score the report gives
        assert score - low == pytest.approx(high - score, rel=1e-9)
        assert (high - low) / (curve.intervals.adversarial[1] - curve.intervals.adversarial[0]) == pytest.approx(
            norm.ppf(1 - 0.05 / len(report.groups) / 2) / norm.ppf(0.975)
        )
        assert low <= curve.intervals.adversarial[0] and curve.intervals.adversarial[1] <= high  # wider than 95 %
        assert group.summary_class == classify(curve.scores.adversarial, settings.tau, interval=(low, high))
        assert group.half_width == pytest.approx((high - low) / 2)


def test_the_saved_report_alone_reproduces_every_claim_under_either_rule(scanned, tmp_path):
    report, _ = scanned
    loaded = load_report(write_report(report, tmp_path / "report.json"))
    assert judge(loaded) == report
    as_tau = judge(loaded.model_copy(update={"settings": loaded.settings.model_copy(update={"classify": "tau"})}))
    for group in as_tau.groups:
        curve = group.filters["pulse"]
        assert group.summary_class == classify(curve.scores.adversarial, as_tau.settings.tau, rule="tau")
        deltas = [a - as_tau.baseline.adversarial for a in curve.adversarial]
        expected = [
            classify(d, as_tau.settings.tau, perturbed=n > 0, rule="tau") for d, n in zip(deltas, curve.changed)
        ]
        assert curve.threshold_classes.adversarial == expected
        assert group.samples_to_decide is None  # only an inconclusive class asks for more samples


def _with_classes(report, classes, samples_to_decide=()):
    """``report`` with these summary classes (and samples to decide, None past the list's end)."""
    assert len(classes) == len(report.groups)
    needed = list(samples_to_decide) + [None] * (len(classes) - len(samples_to_decide))
    groups = [
        g.model_copy(update={"summary_class": c, "samples_to_decide": n})
        for g, c, n in zip(report.groups, classes, needed)
    ]
    return report.model_copy(update={"groups": groups})


def test_resolution_note_says_how_many_samples_would_decide(scanned):
    report, _ = scanned
    decided = _with_classes(report, ["robust"] * 5)
    assert decided.resolution_note() is None
    three = _with_classes(report, ["inconclusive", "robust", "inconclusive", "inconclusive", "fragile"],
                          [3100, None, 3950, 1200, None])
    split = f"the test split's {report.dataset.size:,} samples"
    assert three.resolution_note() == (
        f"3 groups inconclusive at 120 samples; all 3 would need far more than {split} (of order 10⁴)"
    )
    partly = _with_classes(report, ["inconclusive", "inconclusive", "robust", "robust", "robust"], [130, None])
    assert partly.resolution_note() == (
        f"2 groups inconclusive at 120 samples; 1 of them could be decided within {split} (of order 10²): "
        f"{report.groups[0].name}; 1 of them sits on a class boundary, so no sample count would decide it"
    )
    # Issue 23.12: a seven-digit projection is an order of magnitude, and the groups the split could decide are named.
    mixed = _with_classes(report, ["inconclusive"] * 5, [8_700_000, 300, 8_700_000, 8_700_000, 8_700_000])
    assert mixed.resolution_note() == (
        f"5 groups inconclusive at 120 samples; 1 of them could be decided within {split} (of order 10²): "
        f"{report.groups[1].name}; 4 would need far more than that (of order 10⁷)"
    )


def test_band_mask_follows_threshold_classes_and_the_inconclusive_policy(scanned):
    report, _ = scanned
    net = fragscan.outputs.masks.reported_network(report)
    frozen = build_mask(report, net)
    trained = build_mask(report, net, inconclusive="train")
    assert frozen.metadata["rule"] == "evidence" and frozen.metadata["inconclusive"] == "freeze"
    assert trained.metadata["inconclusive"] == "train" and frozen.metadata["split"] == report.dataset.split == "test"
    parameters = dict(net.named_parameters())
    undecided = 0
    for group in report.groups:
        curve = group.filters["pulse"]
        band = fragscan.outputs.masks.element_classes(parameters[group.name], curve.thresholds, [])
        classes = np.array(curve.threshold_classes.adversarial)[band.numpy()]
        assert np.array_equal(frozen.tensors[group.name].numpy(), np.isin(classes, ["robust", "antifragile"]))
        assert np.array_equal(
            trained.tensors[group.name].numpy(), np.isin(classes, ["robust", "antifragile", "inconclusive"])
        )
        undecided += int((classes == "inconclusive").sum())
    assert undecided > 0  # the two policies differed somewhere
    with pytest.raises(fragscan.FragscanError, match="--inconclusive must be 'freeze' or 'train'"):
        build_mask(report, net, inconclusive="maybe")


def test_fragscan_mask_rederives_the_scans_mask_from_the_report_alone(scanned, tmp_path):
    _, out = scanned
    result = CliRunner().invoke(app, ["mask", str(out / "report.json"), "--out", str(tmp_path / "again.safetensors")])
    assert result.exit_code == 0, result.output
    assert "rule evidence, inconclusive freeze" in result.output
    assert (tmp_path / "again.safetensors").read_bytes() == (out / "mask.safetensors").read_bytes()
    with safe_open(str(out / "mask.safetensors"), framework="pt") as handle:
        assert handle.metadata()["split"] == "test"


def test_audit_fails_must_not_be_fragile_only_on_a_decided_fragile_group(scanned):
    report, _ = scanned
    name = report.groups[0].name
    undecided = _with_classes(report, ["inconclusive", "robust", "robust", "robust", "robust"], [900])
    outcome = audit(undecided, AuditPolicy(must_not_be_fragile=(name,))).rules[0]
    assert outcome.passed
    assert outcome.message == "0 of 1 guarded groups fragile; 1 inconclusive (not shown fragile, not shown safe)"
    fragile = _with_classes(report, ["fragile", "robust", "robust", "robust", "robust"])
    assert not audit(fragile, AuditPolicy(must_not_be_fragile=(name,))).passed


def test_max_inconclusive_share_and_its_ci_outputs(scanned):
    report, _ = scanned
    two = _with_classes(report, ["inconclusive", "inconclusive", "robust", "robust", "fragile"], [900, 1500])
    assert audit(two, AuditPolicy(max_inconclusive_share=0.4)).passed
    result = audit(two, AuditPolicy(max_inconclusive_share=0.2))
    (rule,) = result.rules
    assert not result.passed and rule.id == "max-inconclusive-share" and rule.measured == 0.4
    assert rule.findings[0].message.startswith(f"{report.groups[0].name} is inconclusive (±")
    assert rule.findings[0].message.endswith("of order 10³ samples would decide it)")
    assert b'<testcase classname="fragscan.audit" name="max-inconclusive-share"' in junit_xml(result)
    assert [r["ruleId"] for r in sarif(result)["runs"][0]["results"]] == ["max-inconclusive-share"] * 2


def test_compare_calls_only_the_same_decided_class_invariant(scanned):
    report, _ = scanned
    fragile = _with_classes(report, ["fragile", "inconclusive", "robust", "robust", "robust"])
    also = _with_classes(report, ["fragile", "inconclusive", "robust", "antifragile", "inconclusive"])
    items = {item.key: item for item in compare([fragile, also], ["a", "b"]).items}
    names = [g.name for g in report.groups]
    assert items[names[0]].invariant and items[names[2]].invariant
    assert not items[names[1]].invariant  # inconclusive in both: nothing shown
    assert not items[names[3]].invariant and not items[names[4]].invariant


def test_html_shows_inconclusive_in_the_class_map_and_the_resolution(scanned):
    report, _ = scanned
    classes = ["inconclusive", "inconclusive", "robust", "robust", "fragile"]
    page = render_html(_with_classes(report, classes, [900, 1500]))
    assert "2 groups inconclusive at 120 samples; both would need far more than the test split" in page
    assert ".class-inconclusive {" in page and "inconclusive: " in page  # the colour and the legend entry
    assert "simultaneous over the 5 groups" in page


def test_the_terminal_summary_shows_half_widths_and_the_resolution(scanned):
    from rich.console import Console

    from fragscan.cli.summary import print_summary

    report, _ = scanned
    console = Console(record=True, width=200)
    print_summary(_with_classes(report, ["inconclusive", "robust", "robust", "robust", "robust"], [777]), console)
    text = console.export_text()
    assert "1 group inconclusive at 120 samples; it would need far more than the test split's" in text
    assert f"{report.groups[1].half_width:.4f}" in text
