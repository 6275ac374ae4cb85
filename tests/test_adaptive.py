"""--adaptive (method §5b): seeded prefixes, looks that evaluate only new samples, stopping, and
numbers equal to a non-adaptive scan of each sweep's size."""

import importlib
import json

import numpy as np
import pytest
import torch
from test_resume import interrupt_after
from typer.testing import CliRunner

import fragscan
from fragscan import ScanConfig
from fragscan.adaptive import SETTLED, _out_of_reach, plan
from fragscan.cli import app
from fragscan.confidence import Bootstrap, family_level, unpack_bits
from fragscan.config import Adaptive
from fragscan.data import evaluation_tensors, sample_order, sample_ranks
from fragscan.errors import ConfigError

executors = importlib.import_module("fragscan.executors")
runner = CliRunner()


def adaptive_config(**overrides):
    return ScanConfig(**{
        "max_samples": 80, "thresholds": 3, "eps": 0.1, "batch_size": 16, "filters": "step-up,pulse",
        "attack_mode": "fixed", "adaptive": {"initial_samples": 20},
        "select": ("features.2.weight", "classifier.1.weight", "classifier.3.weight"), **overrides,
    })


def test_the_plan_doubles_up_to_the_drawn_samples_and_splits_alpha_over_its_looks():
    looks = plan(Adaptive(initial_samples=100), drawn=540, groups=5)
    assert looks.schedule == [100, 200, 400, 540] and looks.looks == 4
    assert looks.filter_level == pytest.approx(1 - 0.05 / 4) and looks.summary_level == pytest.approx(1 - 0.05 / 20)
    single = plan(Adaptive(initial_samples=1000), drawn=540, groups=5)
    assert single.schedule == [540] and single.filter_level == pytest.approx(0.95)


@pytest.mark.parametrize("n", [1, 7, 50, 99])
def test_a_prefix_of_the_order_is_what_a_scan_of_that_size_draws(n):
    dataset = [(torch.zeros(1, 2, 2), i % 3) for i in range(100)]
    _, _, drawn = evaluation_tensors(dataset, 60, seed=4)
    _, _, smaller = evaluation_tensors(dataset, n, seed=4)
    ranks = sample_ranks(100, drawn, seed=4)
    if n <= 60:
        assert [drawn[i] for i in (ranks < n).nonzero().squeeze(1).tolist()] == smaller
    everything = sample_ranks(100, list(range(100)), seed=4)  # --all-samples keeps the same order
    assert sorted(torch.nonzero(everything < n).squeeze(1).tolist()) == smaller
    assert sorted(sample_order(100, 4)[:n].tolist()) == smaller


def test_out_of_reach_projects_the_half_width_as_one_over_root_n():
    # score 0.005, tau 0.01: margin 0.005; half-width 0.02 at 100 samples needs 100 * 4**2 = 1600
    assert _out_of_reach(0.005, (-0.015, 0.025), 100, 0.01, maximum=1000)
    assert not _out_of_reach(0.005, (-0.015, 0.025), 100, 0.01, maximum=2000)
    assert _out_of_reach(0.01, (0.0, 0.02), 100, 0.01, maximum=10**9)  # on the boundary: no count decides
    assert _out_of_reach(None, None, 100, 0.01, maximum=10**9)


@pytest.fixture(scope="module")
def adaptive_reports():
    """Adaptive scans in both attack modes, and the sweeps' calls to the engine."""
    reports, calls = {}, []
    real = executors.sweep

    def recording(model, groups, filter_ids, thresholds, images, *args, **kwargs):
        calls.append((groups[0].name, filter_ids, len(images)))
        return real(model, groups, filter_ids, thresholds, images, *args, **kwargs)

    executors.sweep = recording
    try:
        for mode, eps in (("fixed", 0.05), ("regenerate", 0.05)):  # each with a sweep that grows
            calls.clear()
            config = adaptive_config(attack_mode=mode, eps=eps)
            reports[mode] = (config, fragscan.scan(config), list(calls))
    finally:
        executors.sweep = real
    return reports


@pytest.mark.parametrize("mode", ["fixed", "regenerate"])
def test_no_sample_is_evaluated_twice_and_each_sweep_stops_for_a_reason(adaptive_reports, mode):
    config, report, calls = adaptive_reports[mode]
    schedule = report.settings.adaptive.schedule
    assert report.baseline.samples == report.dataset.samples == 80 and schedule == [20, 40, 80]
    for group in report.groups:
        for filter_id, curve in group.filters.items():
            evaluated = sum(n for name, filters, n in calls if name == group.name and filter_id in filters)
            assert evaluated == curve.samples  # each look swept only the samples new to it
            assert [r.samples for r in curve.rounds] == [n for n in schedule if n <= curve.samples]
            last = curve.rounds[-1]
            assert last.classes == curve.classes and last.intervals == curve.intervals
            if curve.stop == "decided":
                assert {*last.classes.model_dump().values(), last.summary_class} - {None} <= SETTLED
            if curve.stop == "maximum":
                assert curve.samples == 80
        assert group.samples == max(c.samples for c in group.filters.values())
        summary_round = group.filters[config.summary_filter].rounds[-1]
        assert group.summary_class == summary_round.summary_class
        assert group.summary_interval == summary_round.summary_interval  # the report's claim is the stopping rule's
    assert len({c.samples for g in report.groups for c in g.filters.values()}) > 1, "every sweep stopped alike"


@pytest.mark.parametrize("mode", ["fixed", "regenerate"])
def test_a_sweep_equals_a_non_adaptive_scan_of_its_size(adaptive_reports, mode):
    config, report, _ = adaptive_reports[mode]
    level = report.settings.adaptive.filter_level
    for samples in sorted({c.samples for g in report.groups for c in g.filters.values()}):
        fixed_size = fragscan.scan(config.model_copy(update={"adaptive": None, "max_samples": samples}))
        assert fixed_size.baseline.samples == samples
        baseline = fixed_size.baseline.correct
        unfiltered = (unpack_bits(bits, [samples]) for bits in (baseline.clean, baseline.adversarial))
        bootstrap = Bootstrap(*unfiltered, config.bootstrap, config.seed)
        for group, plain in zip(report.groups, fixed_size.groups):
            for filter_id, curve in group.filters.items():
                if curve.samples != samples:
                    continue
                reference = plain.filters[filter_id]
                assert reference.samples == samples
                assert (curve.clean, curve.adversarial) == (reference.clean, reference.adversarial)
                assert curve.scores == reference.scores
                assert curve.correct == reference.correct
                # threshold evidence pairs the sweep with the unfiltered network on its own prefix
                assert curve.threshold_p_values == reference.threshold_p_values
                shape = [len(curve.thresholds), samples]
                widened = bootstrap.intervals(
                    *(unpack_bits(b, shape) for b in (reference.correct.clean, reference.correct.adversarial)),
                    reference.positions, level=level,
                )
                assert tuple(curve.intervals.model_dump().values()) == (
                    widened.clean, widened.adversarial, widened.difference
                )


def test_a_non_adaptive_scan_reports_its_sample_count_everywhere(small_config):
    report = fragscan.scan(small_config(thresholds=3, filters="pulse", select=("classifier.3.weight",)))
    curve = report.groups[0].filters["pulse"]
    assert curve.samples == report.groups[0].samples == report.baseline.samples == 60
    assert curve.rounds is None and curve.stop is None and report.settings.adaptive is None
    assert report.sampling_note() is None


def test_a_resumed_adaptive_scan_gives_the_same_report(adaptive_reports, tmp_path, monkeypatch):
    config, reference, _ = adaptive_reports["fixed"]
    with monkeypatch.context() as patch:
        interrupt_after(patch, 1)
        with pytest.raises(KeyboardInterrupt):
            fragscan.scan(config, resume_dir=tmp_path)
    resumed = fragscan.scan(config, resume_dir=tmp_path)
    assert resumed.run.resumed_targets == 1
    numbers = [json.loads(r.model_dump_json(exclude={"run"})) for r in (resumed, reference)]
    assert numbers[0] == numbers[1]
    # tau steers where an adaptive sweep stops: its checkpoints are not rescored under another
    with pytest.raises(ConfigError, match="tau"):
        fragscan.scan(config.model_copy(update={"tau": 0.02}), resume_dir=tmp_path)


def test_the_cli_shows_the_samples_used_and_refuses_what_it_cannot_do(tmp_path):
    common = ["scan", "--max-samples", "40", "--thresholds", "3", "--eps", "0.1", "--filters", "pulse",
              "--select", "classifier.3.weight", "--attack-mode", "fixed", "--out", str(tmp_path)]
    result = runner.invoke(app, [*common, "--adaptive", "--initial-samples", "10"])
    assert result.exit_code == 0, result.output
    assert "adaptive sampling used" in result.output and "looks at 10, 20, 40 samples" in result.output
    html = (tmp_path / "report.html").read_text()
    assert "sample evaluations" in html and "Bonferroni over 3 looks" in html
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["settings"]["adaptive"]["schedule"] == [10, 20, 40]
    assert report["groups"][0]["samples"] == report["groups"][0]["filters"]["pulse"]["samples"]
    for extra, message in (
        (["--initial-samples", "10"], "--initial-samples sets where --adaptive starts"),
        (["--adaptive", "--scope", "global"], "use it with --scope local"),
        (["--adaptive", "--classify", "tau"], "use it with --classify evidence"),
        (["--adaptive", "--initial-samples", "0"], "--initial-samples must be at least 1"),
    ):
        failed = runner.invoke(app, [*common, *extra])
        assert failed.exit_code != 0 and message in failed.output and "Traceback" not in failed.output
        assert len(failed.output.strip().splitlines()) == 1


def test_sample_evaluations_count_cells_times_samples(adaptive_reports):
    _, report, _ = adaptive_reports["fixed"]
    used, full = report.sample_evaluations()
    assert full == 3 * 2 * 3 * 80  # groups x filters x thresholds x drawn
    assert used == sum(3 * c.samples for g in report.groups for c in g.filters.values()) < full
    assert np.isclose(family_level(3, looks=3), report.settings.adaptive.summary_level)
