"""--adaptive (method §5b): seeded prefixes, looks that evaluate only new samples, stopping, and
numbers equal to a non-adaptive scan of each sweep's size."""

import importlib
import json
import pickle
from collections import Counter

import numpy as np
import pytest
import torch
from scipy.stats import norm
from test_resume import interrupt_after
from typer.testing import CliRunner

import fragscan
from fragscan import ScanConfig
from fragscan.base.errors import ConfigError, InputError
from fragscan.cli import app
from fragscan.config import Adaptive
from fragscan.data import evaluation_tensors, sample_order, sample_ranks
from fragscan.pipeline.executors import ExecutorOptions
from fragscan.pipeline.resume import ResumeStore
from fragscan.report import load_report, write_report
from fragscan.scoring.adaptive import SETTLED, _out_of_reach, look, plan
from fragscan.scoring.assess import References
from fragscan.scoring.confidence import Bootstrap, family_level, floor_share, unpack_bits
from fragscan.scoring.evidence import judge
from fragscan.scoring.sequential import level_of, pocock_z
from fragscan.sweep.engine import Curve

executors = importlib.import_module("fragscan.pipeline.executors")
runner = CliRunner()


def adaptive_config(**overrides):
    return ScanConfig(
        **{
            "max_samples": 80,
            "thresholds": 3,
            "eps": 0.1,
            "batch_size": 16,
            "filters": "step-up,pulse",
            "attack_mode": "fixed",
            "adaptive": {"initial_samples": 30, "look_ratio": 2},
            "select": ("features.2.weight", "classifier.1.weight", "classifier.3.weight"),
            **overrides,
        }
    )


def test_the_plan_grows_its_looks_geometrically_and_pays_for_them_with_pocock_constants():
    looks = plan(Adaptive(initial_samples=100, look_ratio=2), drawn=540, groups=5)
    assert looks.schedule == [100, 200, 400, 540] and looks.looks == 4
    assert looks.interval_adjustment == "pocock"
    assert looks.filter_z == pytest.approx(pocock_z([100, 200, 400, 540], 0.05))
    assert looks.summary_z == pytest.approx(pocock_z([100, 200, 400, 540], 0.01))
    assert looks.filter_level == pytest.approx(1 - 2 * norm.sf(looks.filter_z))
    # narrower than Bonferroni over the looks, wider than one look alone
    assert family_level(1) < looks.filter_level < family_level(1, 4)
    assert family_level(5) < looks.summary_level < family_level(5, 4)
    finer = plan(Adaptive(initial_samples=50, look_ratio=1.2), drawn=540, groups=5)
    assert finer.schedule == [50, 60, 72, 86, 103, 124, 149, 179, 215, 258, 310, 372, 446, 540]  # not 535
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
    # score 0.005, tau 0.01: margin 0.005; half-width 0.02 at 100 samples is 0.0063 at 1000, 0.0045 at 2000
    floor = 0.001
    assert _out_of_reach(0.005, (-0.015, 0.025), floor, 0.95, 100, 0.01, maximum=1000)
    assert not _out_of_reach(0.005, (-0.015, 0.025), floor, 0.95, 100, 0.01, maximum=2000)
    assert _out_of_reach(0.01, (0.0, 0.02), floor, 0.95, 100, 0.01, maximum=10**9)  # on the boundary: no count decides
    # an interval at its few-samples floor shrinks as that floor does (about 1/n), not as 1/sqrt(n)
    share = floor_share(50, 0.95)
    assert floor_share(540, 0.95) < 0.01 < share * (50 / 540) ** 0.5
    assert not _out_of_reach(0.0, (-share, share), share, 0.95, 50, 0.01, maximum=540)
    assert _out_of_reach(0.0, (-share, share), share, 0.95, 50, 0.01, maximum=100)


def test_an_early_undefined_score_keeps_the_sweep_looking():
    """Issue 23: with a few samples the unfiltered network can be wrong on all of them (score
    undefined); more samples define the score, so that look neither decides nor ends the sweep."""
    assert not _out_of_reach(None, None, 0.1, 0.95, 30, 0.01, maximum=540)
    config = adaptive_config(max_samples=60)
    drawn = 60
    clean0 = torch.ones(drawn, dtype=torch.bool)
    adversarial0 = torch.zeros(drawn, dtype=torch.bool)
    adversarial0[40:] = True  # wrong on the first 40 of the seeded order, right after
    ranks = torch.arange(drawn)
    references = References((clean0, adversarial0), ranks, 200, 0)
    adaptive = plan(Adaptive(initial_samples=30, look_ratio=2), drawn=drawn, groups=1)
    curve = Curve(
        clean=torch.ones(3, 30, dtype=torch.bool), adversarial=torch.zeros(3, 30, dtype=torch.bool),
        positions=[0.0, 0.5, 1.0], changed=[1, 1, 1], removed=[1, 1, 1], numel=10, thresholds=[0.0, 0.5, 1.0],
    )
    first = look(curve, config.summary_filter, references, config.scoring_part, adaptive)
    assert first.classes["adversarial"] == "undefined" and first.stop is None
    never = References((clean0, torch.zeros(drawn, dtype=torch.bool)), ranks, 200, 0)  # wrong on every drawn one
    settled = look(curve, config.summary_filter, never, config.scoring_part, adaptive)
    assert settled.classes["adversarial"] == "undefined" and settled.stop == "futile"  # clean out of reach at 60


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
    assert report.baseline.samples == report.dataset.samples == 80 and schedule == [30, 60, 80]
    for group in report.groups:
        for filter_id, curve in group.filters.items():
            evaluated = sum(n for name, filters, n in calls if name == group.name and filter_id in filters)
            assert evaluated == curve.samples  # each look swept only the samples new to it
            assert [r.samples for r in curve.looks] == [n for n in schedule if n <= curve.samples]
            last = curve.looks[-1]
            assert last.classes == curve.classes and last.intervals == curve.intervals
            if curve.stop == "decided":
                assert {*last.classes.model_dump().values(), last.summary_class} - {None} <= SETTLED
            if curve.stop == "maximum":
                assert curve.samples == 80
        assert group.samples == max(c.samples for c in group.filters.values())
        summary_look = group.filters[config.summary_filter].looks[-1]
        assert group.summary_class == summary_look.summary_class
        assert group.summary_interval == summary_look.summary_interval  # the report's claim is the stopping rule's
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
                    reference.positions,
                    level=level,
                )
                assert tuple(curve.intervals.model_dump().values()) == (
                    widened.clean,
                    widened.adversarial,
                    widened.difference,
                )


def test_a_non_adaptive_scan_reports_its_sample_count_everywhere(small_config):
    report = fragscan.scan(small_config(thresholds=3, filters="pulse", select=("classifier.3.weight",)))
    curve = report.groups[0].filters["pulse"]
    assert curve.samples == report.groups[0].samples == report.baseline.samples == 60
    assert curve.looks is None and curve.stop is None and report.settings.adaptive is None
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
    # another --max-samples would be looks the plan's critical values did not pay for: refused on one line
    with pytest.raises(ConfigError, match=r"differs in: max_samples.*--no-resume") as refused:
        fragscan.scan(config.model_copy(update={"max_samples": 70}), resume_dir=tmp_path)
    assert "\n" not in str(refused.value)


def recording_sweeps(monkeypatch, stop_at: int | None = None) -> list:
    """Record the engine's sweeps as (group, filters, samples evaluated); raise KeyboardInterrupt
    instead of sweep number ``stop_at`` (counted from 0)."""
    calls, real = [], executors.sweep

    def recording(model, groups, filter_ids, thresholds, images, *args, **kwargs):
        if len(calls) == stop_at:
            raise KeyboardInterrupt
        calls.append((groups[0].name, tuple(filter_ids), len(images)))
        return real(model, groups, filter_ids, thresholds, images, *args, **kwargs)

    monkeypatch.setattr(executors, "sweep", recording)
    return calls


def last_look_of_the_longest_group(calls: list) -> tuple[str, int, int]:
    """The group with the most looks, the index of the sweep of its last look, and that look's index."""
    looks = Counter(name for name, _, _ in calls)
    group = max(looks, key=looks.get)
    assert looks[group] >= 2, "no group looked twice"
    return group, max(i for i, call in enumerate(calls) if call[0] == group), looks[group] - 1


def numbers_of(report) -> dict:
    return json.loads(report.model_dump_json(exclude={"run"}))


def test_an_adaptive_scan_interrupted_mid_group_goes_on_at_its_next_look(adaptive_reports, tmp_path, monkeypatch):
    config, reference, calls = adaptive_reports["fixed"]
    group, stop_at, look = last_look_of_the_longest_group(calls)
    with monkeypatch.context() as patch:
        first = recording_sweeps(patch, stop_at)
        with pytest.raises(KeyboardInterrupt):
            fragscan.scan(config, resume_dir=tmp_path)
    assert first == calls[:stop_at]
    assert len(list((tmp_path / "rounds").glob("*.safetensors"))) == 1  # the group's looks before the last
    before = [g.name for g in reference.groups].index(group)
    assert len(list((tmp_path / "targets").glob("*.safetensors"))) == before

    events = []
    second = recording_sweeps(monkeypatch)
    resumed = fragscan.scan(config, resume_dir=tmp_path, progress=events.append)
    # only the looks left are evaluated, from the interrupted one on: no sample of the group twice
    assert second == calls[stop_at:]
    assert sum(n for _, _, n in second) == sum(n for _, _, n in calls) - sum(n for _, _, n in first)
    assert numbers_of(resumed) == numbers_of(reference)
    assert resumed.run.resumed_targets == before and resumed.run.continued_targets == 1
    assert reference.run.continued_targets == 0
    assert not list((tmp_path / "rounds").glob("*.safetensors"))  # the finished target replaced its looks
    # progress counts the looks already taken as done, and ends at the total
    steps = len(config.filters) * config.thresholds
    total = len(reference.groups) * steps * reference.settings.adaptive.looks
    done = [e.done for e in events]
    assert {e.total for e in events} == {total} and done == sorted(done) and done[-1] == total
    first_of_group = next(e.done for e in events if e.target == group)
    assert first_of_group > before * steps * reference.settings.adaptive.looks + look * steps


def test_a_damaged_round_file_is_one_line_and_costs_no_sweep(adaptive_reports, tmp_path, monkeypatch):
    config, _, calls = adaptive_reports["fixed"]
    _, stop_at, _ = last_look_of_the_longest_group(calls)
    with monkeypatch.context() as patch:
        recording_sweeps(patch, stop_at)
        with pytest.raises(KeyboardInterrupt):
            fragscan.scan(config, resume_dir=tmp_path)
    # other settings meet the manifest's fingerprint first, as for finished groups
    with pytest.raises(ConfigError, match=r"differs in: tau\).*--no-resume"):
        fragscan.scan(config.model_copy(update={"tau": 0.02}), resume_dir=tmp_path)
    (saved,) = (tmp_path / "rounds").glob("*.safetensors")
    saved.write_bytes(saved.read_bytes()[:-9])
    swept = recording_sweeps(monkeypatch)
    with pytest.raises(InputError, match="is damaged .*use a new --out or --no-resume") as error:
        fragscan.scan(config, resume_dir=tmp_path)
    assert "\n" not in str(error.value) and swept == []


def test_ray_workers_keep_their_looks_where_they_reach_the_resume_directory(adaptive_reports, tmp_path, monkeypatch):
    """The worker's code, run here instead of on Ray (tests/test_ray.py runs the real one): it
    writes looks into the store it reaches and starts from the looks the driver read back."""
    config, reference, calls = adaptive_reports["fixed"]
    _, stop_at, _ = last_look_of_the_longest_group(calls)

    def in_process(pending, job, options):
        job = pickle.loads(pickle.dumps(job))  # nothing shared with the driver but the files
        for target in pending:
            yield target, executors.sweep_in_worker(job, target)

    monkeypatch.setattr(executors, "_ray_results", in_process)
    ray = ExecutorOptions("ray", ray_gpus_per_worker=0)
    with monkeypatch.context() as patch:
        recording_sweeps(patch, stop_at)
        with pytest.raises(KeyboardInterrupt):
            fragscan.scan(config, resume_dir=tmp_path, executor=ray)
    assert len(list((tmp_path / "rounds").glob("*.safetensors"))) == 1
    second = recording_sweeps(monkeypatch)
    resumed = fragscan.scan(config, resume_dir=tmp_path, executor=ray)
    assert second == calls[stop_at:]
    assert numbers_of(resumed) == numbers_of(reference)

    # a worker keeps looks only in the very store the driver opened, and creates nothing
    assert ResumeStore.reach(tmp_path / "elsewhere", {"seed": 0}) is None and not (tmp_path / "elsewhere").exists()
    ResumeStore(tmp_path / "store", {"seed": 0})
    assert ResumeStore.reach(tmp_path / "store", {"seed": 1}) is None
    assert ResumeStore.reach(tmp_path / "store", {"seed": 0}) is not None


def test_a_retried_ray_task_goes_on_from_the_looks_its_dead_worker_kept(adaptive_reports, tmp_path, monkeypatch):
    """Ray retries a task whose worker process died with the same job (its saved looks as the driver
    read them): the retry starts from the looks the dead worker saved, not from the job's."""
    config, reference, calls = adaptive_reports["fixed"]
    _, stop_at, _ = last_look_of_the_longest_group(calls)
    seen, real = [], executors.sweep

    class WorkerDied(Exception):
        pass

    def dies_once(model, groups, filter_ids, thresholds, images, *args, **kwargs):
        if len(seen) == stop_at and stop_at not in died:
            died.add(stop_at)
            raise WorkerDied
        seen.append((groups[0].name, tuple(filter_ids), len(images)))
        return real(model, groups, filter_ids, thresholds, images, *args, **kwargs)

    def retrying(pending, job, options):
        for target in pending:
            try:
                yield target, executors.sweep_in_worker(pickle.loads(pickle.dumps(job)), target)
            except WorkerDied:  # Ray's max_retries: the same job again, on a fresh worker
                yield target, executors.sweep_in_worker(pickle.loads(pickle.dumps(job)), target)

    died: set[int] = set()
    monkeypatch.setattr(executors, "sweep", dies_once)
    monkeypatch.setattr(executors, "_ray_results", retrying)
    report = fragscan.scan(config, resume_dir=tmp_path, executor=ExecutorOptions("ray", ray_gpus_per_worker=0))
    assert died and seen == calls  # every look once: none redone after the death
    assert numbers_of(report) == numbers_of(reference)


def test_the_cli_shows_the_samples_used_and_refuses_what_it_cannot_do(tmp_path):
    common = ["scan", "--max-samples", "120", "--thresholds", "3", "--eps", "0.1", "--filters", "pulse",
              "--select", "classifier.3.weight", "--attack-mode", "fixed", "--out", str(tmp_path)]  # fmt: skip
    result = runner.invoke(app, [*common, "--adaptive", "--initial-samples", "30", "--look-ratio", "2"])
    assert result.exit_code == 0, result.output
    assert "adaptive sampling used" in result.output and "looks at 30, 60, 120 samples" in result.output
    html = (tmp_path / "report.html").read_text()
    assert "sample evaluations" in html and "repeated confidence intervals over 3 looks: Pocock" in html
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["settings"]["adaptive"]["schedule"] == [30, 60, 120]
    assert report["groups"][0]["samples"] == report["groups"][0]["filters"]["pulse"]["samples"]
    for extra, message in (
        (["--initial-samples", "30"], "--initial-samples sets how --adaptive looks"),
        (["--look-ratio", "1.5"], "--look-ratio sets how --adaptive looks"),
        (["--adaptive", "--look-ratio", "3"], "--look-ratio must lie in [1.01, 2]"),
        (["--adaptive", "--scope", "global"], "use it with --scope local"),
        (["--adaptive", "--classify", "tau"], "use it with --classify evidence"),
        (["--adaptive", "--initial-samples", "1"], "--initial-samples must be at least 30"),
    ):
        failed = runner.invoke(app, [*common, *extra])
        assert failed.exit_code != 0 and message in failed.output and "Traceback" not in failed.output
        assert len(failed.output.strip().splitlines()) == 1


def test_sample_evaluations_count_cells_times_samples(adaptive_reports):
    _, report, _ = adaptive_reports["fixed"]
    used, full = report.sample_evaluations()
    assert full == 3 * 2 * 3 * 80  # groups x filters x thresholds x drawn
    assert used == sum(3 * c.samples for g in report.groups for c in g.filters.values()) < full
    adaptive = report.settings.adaptive
    assert np.isclose(adaptive.summary_z, pocock_z(adaptive.schedule, 0.05 / 3))


@pytest.mark.parametrize("mode", ["fixed", "regenerate"])
def test_the_scan_states_each_group_claim_once_as_its_saved_report_reproduces_it(adaptive_reports, mode, tmp_path):
    _, report, _ = adaptive_reports[mode]
    assert judge(load_report(write_report(report, tmp_path / "report.json"))) == report


def test_judge_uses_the_recorded_plan_and_judges_a_2_1_report_by_bonferroni_as_before(adaptive_reports, tmp_path):
    _, report, _ = adaptive_reports["fixed"]
    adaptive = report.settings.adaptive
    groups = len(report.groups)
    perturbed = sum(n > 0 for g in report.groups for c in g.filters.values() for n in c.changed)
    assert report.settings.summary_level == adaptive.summary_level
    assert adaptive.summary_level == level_of(pocock_z(adaptive.schedule, 0.05 / groups))
    assert report.settings.threshold_level == pytest.approx(level_of(pocock_z(adaptive.schedule, 0.05 / perturbed)))
    # a schema 2.1 report: its plan split alpha over the looks, and says so
    data = json.loads(report.model_dump_json(by_alias=True))
    data["schema_version"] = "2.1"
    plan_2_1 = data["settings"]["adaptive"]
    for field in ("filter_z", "summary_z", "look_ratio"):
        del plan_2_1[field]
    plan_2_1.update(
        interval_adjustment="bonferroni",
        filter_level=family_level(1, adaptive.looks),
        summary_level=family_level(groups, adaptive.looks),
    )
    path = tmp_path / "report.json"
    path.write_text(json.dumps(data))
    old = load_report(path)
    assert old.settings.adaptive.look_ratio == 2.0 and old.settings.adaptive.summary_z is None
    judged = judge(old)
    assert judged.settings.summary_level == pytest.approx(family_level(groups, adaptive.looks))
    assert judged.settings.threshold_level == pytest.approx(family_level(perturbed, adaptive.looks))
