"""Threat profiles (method §6b): the spec is checked before any work, the worst case per budget is the
definition's (checked against torchattacks run directly and against the obvious loop), and a profile's
surface row at ε is the plain scan at ε."""

import csv
import io
import json

import pytest
import torch
import torchattacks
from test_adaptive import last_look_of_the_longest_group, numbers_of, recording_sweeps
from typer.testing import CliRunner

import fragscan
from fragscan.base.errors import ConfigError
from fragscan.cli import app
from fragscan.data import create_dataset, evaluation_tensors, sample_ranks
from fragscan.models import create_model
from fragscan.report import write_report
from fragscan.report.model import DECIDED
from fragscan.report.tables import BUDGET_COLUMNS, CURVE_COLUMNS, curves_csv
from fragscan.scoring.adaptive import SETTLED
from fragscan.scoring.assess import budget_references
from fragscan.scoring.confidence import unpack_bits
from fragscan.scoring.sequential import level_of, pocock_z
from fragscan.scoring.surface import at_budget, flip_budget, surface
from fragscan.sweep.attacks import ADVERSARIES, build_attack, predictions
from fragscan.sweep.engine import Curve, analysis_mode, sweep
from fragscan.sweep.groups import parameter_groups
from fragscan.sweep.naive import naive_sweep
from fragscan.sweep.threats import WorstCase, parse

runner = CliRunner()
GROUP = "features.0.weight"


def _profile(small_config, threat, **overrides):
    """A quick profile scan: one group, the pulse filter, 48 samples."""
    values = dict(eps="auto", filters="pulse", select=(GROUP,), max_samples=48, thresholds=4, threat=threat)
    return fragscan.scan(small_config(**{**values, **overrides}))


def _numbers(report):
    """Everything a plain scan states: baseline, curves, scores, intervals, classes, per-sample bits."""
    plain = {"budget_classes", "budget_intervals", "flip_eps"}
    return (
        report.baseline,
        [g.model_dump(exclude=plain | {"filters"}) for g in report.groups],
        [{f: c.model_dump(exclude={"surface"}) for f, c in g.filters.items()} for g in report.groups],
    )


@pytest.mark.parametrize(
    "spec, words",
    [
        ("", "is empty"),
        ("  ;  ", "is empty"),
        ("FGSM", "names no budget"),
        ("@0.1", "names no attack"),
        ("FGSM@", "empty budget"),
        ("FGSM@0.1;;PGD@0.1", "empty entry"),
        ("FGSM@1.5", "outside [0, 1]"),
        ("FGSM@-0.1", "outside [0, 1]"),
        ("FGSM@nan", "outside [0, 1]"),
        ("FGSM@x", "not a number"),
        ("FGSM@0.1,0.1", "twice"),
        ("FGSM@0.1;PGD@0.2;FGSM@0.1", "twice"),
        ("FGSM@auto;FGSM@auto", "twice"),
    ],
)
def test_a_malformed_spec_is_refused_by_the_settings(spec, words):
    with pytest.raises(ValueError, match="--threat") as caught:
        parse(spec)
    assert words in str(caught.value)


@pytest.mark.parametrize(
    "options, words",
    [
        (["--threat", "FGSM@0.1;FGSMM@0.2"], "unknown attack 'FGSMM'"),
        (["--threat", "FGSM@0.1,1.2"], "outside [0, 1]"),
        (["--threat", ""], "is empty"),
        (["--threat", "PGD@0.1;PGD@0.1"], "twice"),
        (["--threat", "CW@0.1"], "has no ε"),
        (["--threat", "PGD@0.1", "--attack-space", "normalized"], "--attack FGSM"),
        (["--threat", "FGSM@0.1", "--eps", "0.2"], "replaces --attack and --eps"),
        (["--threat", "FGSM@0.1,0.2", "--headline-eps", "0.3"], "not among"),
        (["--headline-eps", "0.1"], "give a --threat"),
    ],
)
def test_a_bad_profile_is_one_line_exit_2_and_nothing_written(tmp_path, options, words):
    out = tmp_path / "out"
    result = runner.invoke(app, ["scan", "--out", str(out), "--max-samples", "20", *options])
    assert result.exit_code == 2, result.output
    assert words in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not out.exists()


def test_without_a_profile_and_with_a_one_attack_profile_the_numbers_are_todays(small_config):
    plain = fragscan.scan(small_config(eps=0.1))
    assert plain.threat is None and all(c.surface is None for g in plain.groups for c in g.filters.values())
    profiled = fragscan.scan(small_config(eps="auto", threat="FGSM@0.1"))
    assert _numbers(profiled) == _numbers(plain)
    assert profiled.warnings == plain.warnings  # the profile's --eps default 'auto' is not the budget it used
    assert profiled.threat.budgets == [0.1] and profiled.threat.worst[0].adversarial == plain.baseline.adversarial
    pgd = fragscan.scan(small_config(attack="PGD", eps=0.1, attack_mode="fixed"))
    assert _numbers(fragscan.scan(small_config(threat="PGD@0.1", eps="auto", attack_mode="fixed"))) == _numbers(pgd)


def _by_hand(attack_class, eps, images, labels, batch, seed, **options):
    """torchattacks run directly, batch k seeded seed + k as a scan's crafting is."""
    model = create_model("digits-cnn").eval()
    attack = attack_class(model, eps=eps, **options)
    correct = []
    for k, start in enumerate(range(0, len(images), batch)):
        torch.manual_seed(seed + k)
        adversarial = attack(images[start : start + batch], labels[start : start + batch])
        correct.append(predictions(model, adversarial, batch) == labels[start : start + batch])
    return torch.cat(correct)


def test_the_worst_case_baseline_is_every_listed_attack_run_by_torchattacks(small_config):
    report = _profile(small_config, "FGSM@0.05,0.1;PGD@0.1", max_samples=64)
    images, labels, _ = evaluation_tensors(create_dataset("digits"), 64, 0)
    # torchattacks' defaults are for eps 8/255 (PGD: alpha 2/255, 10 steps); a scan keeps the step's share
    fgsm = {eps: _by_hand(torchattacks.FGSM, eps, images, labels, 32, 0) for eps in (0.05, 0.1)}
    pgd = _by_hand(torchattacks.PGD, 0.1, images, labels, 32, 0, alpha=0.1 / 4, steps=10)
    expected = {0.05: fgsm[0.05], 0.1: fgsm[0.1] & pgd}
    threat = report.threat
    assert threat.budgets == [0.05, 0.1] and threat.headline == 0.1
    for worst in threat.worst:
        assert torch.equal(unpack_bits(worst.correct, [64]), expected[worst.eps])
        assert worst.adversarial == expected[worst.eps].double().mean().item()
    alone = {(a.attack, a.eps): a.adversarial for a in threat.attacks}
    assert alone == {("FGSM", 0.05): fgsm[0.05].double().mean().item(),
                     ("FGSM", 0.1): fgsm[0.1].double().mean().item(), ("PGD", 0.1): pgd.double().mean().item()}
    assert not torch.equal(expected[0.1], fgsm[0.1]), "the worst case must not be merely the first attack's"
    assert report.baseline.adversarial == threat.worst[1].adversarial  # the headline budget's
    # each attack's hyper-parameters as built, not the default --attack's (which the profile replaced)
    built = {(a.attack, a.eps): a.parameters for a in threat.attacks}
    assert built[("PGD", 0.1)] == {**built[("PGD", 0.1)], "eps": 0.1, "alpha": 0.1 / 4, "steps": 10}
    assert built[("FGSM", 0.05)]["eps"] == 0.05 and report.settings.attack_parameters is None


@pytest.mark.parametrize("mode", ["regenerate", "fixed"])
def test_early_exit_gives_the_worst_case_of_the_obvious_loop_on_every_filtered_network(mode):
    """Deterministic attacks (FGSM, BIM): running BIM only on the samples FGSM left correct gives,
    bit for bit, the AND of both attacks run on every sample of every filtered network."""
    model = create_model("digits-cnn")
    images, labels, _ = evaluation_tensors(create_dataset("digits"), 40, 0)
    groups = [g for g in parameter_groups(model.net)[0] if g.name == GROUP]
    budgets, batch = (0.05, 0.1), 16

    def maker(name, eps):
        return lambda network: build_attack(name, network, eps, 10)

    with analysis_mode(model):
        build = ADVERSARIES[mode]
        modes = [[build(maker(name, eps)(model), images, labels, batch, 0) for name in ("FGSM", "BIM")]
                 for eps in budgets]
        result = sweep(model, groups, ("pulse",), 4, images, labels, WorstCase(modes), batch_size=batch)
        expected = []
        for eps in budgets:
            each = [naive_sweep(model, groups, ("pulse",), 4, images, labels, maker(name, eps), mode, batch, 0)
                    for name in ("FGSM", "BIM")]
            expected.append(each[0][GROUP]["pulse"][1] & each[1][GROUP]["pulse"][1])
    surface = result.curves[GROUP]["pulse"].adversarial
    assert surface.shape == (4, 40, 2)
    for i, worst in enumerate(expected):
        assert torch.equal(surface[..., i], worst), budgets[i]
    assert (surface[..., 1] != surface[0, :, 1]).any(), "the curve never changes: the comparison would prove nothing"


@pytest.mark.parametrize("mode", ["regenerate", "fixed"])
def test_the_surface_row_at_a_budget_is_the_plain_scan_at_that_budget(small_config, mode):
    profile = _profile(small_config, "FGSM@0.05,0.1,0.2", attack_mode=mode, filters="step-up,pulse")
    for eps in profile.threat.budgets:
        plain = fragscan.scan(small_config(eps=eps, filters="step-up,pulse", select=(GROUP,), max_samples=48,
                                           thresholds=4, attack_mode=mode))
        row = profile.threat.budgets.index(eps)
        for filter_id, curve in profile.groups[0].filters.items():
            expected = plain.groups[0].filters[filter_id]
            assert curve.surface.adversarial[row] == expected.adversarial, (eps, filter_id)
            assert curve.surface.scores.adversarial[row] == expected.scores.adversarial
            bits = unpack_bits(curve.surface.correct, [3, 4, 48])[row]
            assert torch.equal(bits, unpack_bits(expected.correct.adversarial, [4, 48]))
        assert profile.threat.worst[row].adversarial == plain.baseline.adversarial
    headline = fragscan.scan(small_config(eps=0.2, filters="step-up,pulse", select=(GROUP,), max_samples=48,
                                          thresholds=4, attack_mode=mode))
    assert _numbers(profile) == _numbers(headline)


def test_a_report_restated_at_a_budget_is_the_scan_headlined_there(small_config):
    report = _profile(small_config, "FGSM@0.05,0.1", filters="step-up,pulse")
    at_small = _profile(small_config, "FGSM@0.05,0.1", filters="step-up,pulse", headline_eps=0.05)
    assert at_small.threat.headline == 0.05 and at_small.settings.eps_used == 0.05
    restated = at_budget(report, 0.05)
    assert _numbers(restated) == _numbers(at_small)
    assert at_budget(report, 0.1) == report
    with pytest.raises(ConfigError, match="not among the report's budgets"):
        at_budget(report, 0.07)


def test_classes_per_budget_are_simultaneous_and_the_flip_budget_is_where_the_decided_class_changes(small_config):
    report = _profile(small_config, "FGSM@0.02,0.1,0.3")
    threat = report.threat
    assert threat.filter_level == pytest.approx(1 - 0.05 / 3)
    assert threat.summary_level == pytest.approx(1 - 0.05 / 3)  # one group x three budgets
    group = report.groups[0]
    assert len(group.budget_classes) == 3 and len(group.budget_intervals) == 3
    surface = group.filters["pulse"].surface
    assert len(surface.adversarial) == 3 and len(surface.classes.adversarial) == 3
    # a larger budget breaks more: the unfiltered worst case falls as ε grows
    assert [w.adversarial for w in threat.worst] == sorted((w.adversarial for w in threat.worst), reverse=True)
    assert group.flip_eps == flip_budget(threat.budgets, group.budget_classes)


@pytest.mark.parametrize(
    "classes, flip",
    [
        (["robust", "robust", "fragile"], 0.3),
        (["robust", "inconclusive", "fragile"], 0.3),
        (["inconclusive", "robust", "robust"], None),
        (["fragile", "inconclusive", "fragile"], None),
        (["antifragile", "robust", "fragile"], 0.1),
        (["unperturbed"] * 3, None),
    ],
)
def test_the_flip_budget_passes_over_undecided_budgets(classes, flip):
    assert flip_budget([0.02, 0.1, 0.3], classes) == flip


def test_the_report_round_trips_and_a_mask_can_be_derived_at_any_budget(small_config, tmp_path):
    out = tmp_path / "scan"
    result = runner.invoke(app, ["scan", "--out", str(out), "--max-samples", "40", "--thresholds", "4",
                                 "--threat", "FGSM@0.05,0.1"])
    assert result.exit_code == 0, result.output
    assert "under the worst case of FGSM at ε=0.1" in result.output
    assert "threat profile FGSM@0.05,0.1: worst-case accuracy ε=0.05" in result.output
    stored = json.loads((out / "report.json").read_text())
    assert stored["schema_version"] == "2.2" and stored["threat"]["budgets"] == [0.05, 0.1]
    assert len(stored["groups"][0]["filters"]["pulse"]["surface"]["adversarial"]) == 2
    report = fragscan.load_report(out / "report.json")
    assert report.threat.headline == 0.1
    written = (out / "curves.csv").read_text()
    assert written == curves_csv(report) and written.startswith(",".join(BUDGET_COLUMNS) + "\n")
    assert len(written.splitlines()) == 1 + len(report.groups) * 3 * 2 * 4  # groups x filters x budgets x thresholds
    result = runner.invoke(app, ["report", str(out / "report.json"), "-o", str(tmp_path / "page.html"),
                                 "--csv", str(tmp_path / "again.csv"), "-q"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "again.csv").read_text() == written
    masks = {}
    for eps in ("0.05", "0.1"):
        path = tmp_path / f"mask-{eps}.safetensors"
        result = runner.invoke(app, ["mask", str(out / "report.json"), "--eps", eps, "--out", str(path), "-q"])
        assert result.exit_code == 0, result.output
        masks[eps] = path.read_bytes()
    assert masks["0.1"] == (out / "mask.safetensors").read_bytes()
    result = runner.invoke(app, ["mask", str(out / "report.json"), "--eps", "0.07", "--out", str(tmp_path / "m")])
    assert result.exit_code == 2 and "not among" in result.output and not (tmp_path / "m").exists()


def test_the_page_shows_the_profile_its_class_map_and_every_group_surface(small_config):
    from fragscan.report.html import render_html

    report = fragscan.scan(small_config(eps="auto", threat="FGSM@0.02,0.1;PGD@0.1", thresholds=4, max_samples=40))
    page = render_html(report)
    assert 'id="threat"' in page and "FGSM@0.02,0.1;PGD@0.1" in page
    assert page.count('id="surface-') == len(report.groups) == 5
    # score heatmap, class map; curves and S_adv per budget; the class map by budget and the surfaces' overview
    assert page.count("<svg") == 2 + len(report.groups) * 2 + 2
    assert "flip ε" in page and "worst case of" in page
    plain = render_html(fragscan.scan(small_config(thresholds=4, max_samples=40)))
    assert 'id="threat"' not in plain and "flip ε" not in plain


def test_audit_and_compare_state_a_profile_at_a_budget_it_names(small_config, tmp_path):
    from fragscan.outputs.auditing import AuditPolicy, audit
    from fragscan.outputs.comparison import compare

    report = _profile(small_config, "FGSM@0.02,0.2", filters="step-up,pulse")
    small, large = (w.adversarial for w in report.threat.worst)
    assert small > large
    floor = (small + large) / 2
    at_headline = audit(report, AuditPolicy(min_adversarial_accuracy=floor))
    at_small = audit(report, AuditPolicy(min_adversarial_accuracy=floor, eps=0.02))
    assert not at_headline.passed and at_small.passed
    assert "worst case of FGSM, ε=0.02" in at_small.rules[-1].message
    with pytest.raises(ConfigError, match="not among the report's budgets"):
        audit(report, AuditPolicy(eps=0.05))
    plain = fragscan.scan(small_config(filters="step-up,pulse", select=(GROUP,), max_samples=48, thresholds=4))
    with pytest.raises(ConfigError, match="scanned at one budget"):
        audit(plain, AuditPolicy(eps=0.02))
    assert audit(plain, AuditPolicy(eps=0.1)).passed
    # two profiles of one network compared at a budget: the restated reports, not the headlines
    path = tmp_path / "report.json"
    write_report(report, path)
    result = runner.invoke(app, ["compare", str(path), str(path), "--eps", "0.02", "--json", str(tmp_path / "c.json")])
    assert result.exit_code == 0, result.output
    compared = json.loads((tmp_path / "c.json").read_text())
    restated = at_budget(report, 0.02)
    expected = compare([restated, restated], ["a", "b"])
    assert compared["items"] == json.loads(expected.model_dump_json())["items"]
    assert compared["items"][0]["classes"][0] == restated.groups[0].summary_class


def test_a_scan_policy_naming_a_budget_the_scan_will_not_measure_fails_before_the_scan(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("eps: 0.05\n")
    for options in (["--eps", "0.1"], ["--threat", "FGSM@0.02,0.1"]):
        out = tmp_path / "out"
        result = runner.invoke(app, ["scan", "--out", str(out), "--policy", str(policy), *options])
        assert result.exit_code == 2 and "0.05" in result.output and not out.exists(), result.output


def test_a_profile_scan_resumes_from_its_finished_groups_with_the_same_numbers(small_config, tmp_path):
    from fragscan.pipeline.writing import scan_to

    config = small_config(eps="auto", threat="FGSM@0.05,0.1;PGD@0.1", filters="pulse", max_samples=40, thresholds=4)
    first = fragscan.scan(config, resume_dir=tmp_path / "store")
    again = fragscan.scan(config, resume_dir=tmp_path / "store")
    assert again.run.resumed_targets == len(again.groups) == 5
    assert _numbers(again) == _numbers(first) and again.threat == first.threat
    assert [g.filters["pulse"].surface for g in again.groups] == [g.filters["pulse"].surface for g in first.groups]
    other = small_config(eps="auto", threat="FGSM@0.05,0.2;PGD@0.1", filters="pulse", max_samples=40, thresholds=4)
    with pytest.raises(ConfigError):
        fragscan.scan(other, resume_dir=tmp_path / "store")
    assert scan_to(config, tmp_path / "out").report.threat == first.threat


def test_a_budget_that_defeats_every_sample_is_warned_and_its_classes_are_undefined(small_config):
    report = _profile(small_config, "FGSM@0.05;PGD@0.5", headline_eps=0.05)
    assert report.threat.worst[1].adversarial == 0
    assert "the threat profile defeats every sample at ε=0.5: adversarial scores there are undefined" in report.warnings
    assert report.groups[0].budget_classes[1] == "undefined" and report.groups[0].summary_class != "undefined"


def test_the_curves_csv_has_every_budget_and_its_headline_rows_are_the_one_budget_rows(small_config):
    report = _profile(small_config, "FGSM@0.05,0.1,0.2", filters="step-up,pulse", headline_eps=0.1)
    budgets, text = report.threat.budgets, curves_csv(report)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == BUDGET_COLUMNS and BUDGET_COLUMNS[2] == "eps"
    assert len(rows) == len(report.groups) * 2 * len(budgets) * 4
    assert [float(r["eps"]) for r in rows[:12]] == [e for e in budgets for _ in range(4)]  # budget x threshold
    # the headline's rows, less their eps, are the CSV of the body alone: what a one-budget report writes
    lines = [line.split(",") for line in text.splitlines()]
    headline = [",".join(line[:2] + line[3:]) for line in lines[1:] if float(line[2]) == report.threat.headline]
    assert headline == curves_csv(report.model_copy(update={"threat": None})).splitlines()[1:]
    for eps in budgets:
        stated = at_budget(report, eps)
        for group in stated.groups:
            for filter_id, curve in group.filters.items():
                at_eps = [r for r in rows if r["group"] == group.name and r["filter"] == filter_id
                          and float(r["eps"]) == eps]
                assert [float(r["adversarial"]) for r in at_eps] == curve.adversarial, (eps, filter_id)
                assert [float(r["clean"]) for r in at_eps] == curve.clean
                assert [int(r["threshold_index"]) for r in at_eps] == list(range(4))
    pulse = report.groups[0].filters["pulse"].surface.adversarial
    assert pulse[0] != pulse[1] != pulse[2], "the budgets' rows are alike: the comparison would prove nothing"


def test_a_scan_without_a_profile_writes_the_one_budget_csv(small_config):
    report = fragscan.scan(small_config(filters="pulse", select=(GROUP,), max_samples=48, thresholds=4))
    text = curves_csv(report)
    assert text.splitlines()[0] == ",".join(CURVE_COLUMNS) and "eps" not in CURVE_COLUMNS
    assert len(text.splitlines()) == 1 + 4


ADAPTIVE_PROFILE = dict(
    threat="FGSM@0.05,0.15", max_samples=160, thresholds=3, batch_size=32, filters="step-up,pulse",
    attack_mode="fixed", select=("features.2.weight", "classifier.1.weight", "classifier.3.weight"),
)


@pytest.fixture(scope="module")
def adaptive_profile():
    """An adaptive profile scan of the embedded default with the engine's sweeps it made, and the
    same profile scanned at every drawn sample."""
    from fragscan import ScanConfig

    config = ScanConfig(**ADAPTIVE_PROFILE, adaptive={"initial_samples": 40, "look_ratio": 2})
    with pytest.MonkeyPatch.context() as patch:
        calls = recording_sweeps(patch)
        report = fragscan.scan(config)
    return config, report, list(calls), fragscan.scan(ScanConfig(**ADAPTIVE_PROFILE))


def test_an_adaptive_profile_contradicts_no_class_the_full_scan_decides(adaptive_profile):
    _, adaptive, _, full = adaptive_profile
    both = 0
    for mine, theirs in zip(adaptive.groups, full.groups, strict=True):
        pairs = [(mine.summary_class, theirs.summary_class), *zip(mine.budget_classes, theirs.budget_classes)]
        for f in mine.filters:
            a, b = mine.filters[f], theirs.filters[f]
            pairs += list(zip(a.classes.model_dump().values(), b.classes.model_dump().values()))
            for kind in ("adversarial", "difference"):
                pairs += list(zip(getattr(a.surface.classes, kind), getattr(b.surface.classes, kind)))
        decided = [(x, y) for x, y in pairs if x in DECIDED and y in DECIDED]
        assert all(x == y for x, y in decided), (mine.name, pairs)
        both += len(decided)
    assert both >= 5, "too few classes decided by both to compare"
    assert sum(c.samples for g in adaptive.groups for c in g.filters.values()) < sum(
        c.samples for g in full.groups for c in g.filters.values()
    ), "no sweep stopped early"


def test_an_adaptive_profile_surface_is_its_samples_at_repeated_interval_levels_and_stops_on_every_budget(
    adaptive_profile,
):
    config, report, calls, _ = adaptive_profile
    plan, budgets = report.settings.adaptive, report.threat.budgets
    assert report.threat.filter_level == pytest.approx(level_of(pocock_z(plan.schedule, 0.05 / len(budgets))))
    groups_budgets = len(report.groups) * len(budgets)
    assert report.threat.summary_level == pytest.approx(level_of(pocock_z(plan.schedule, 0.05 / groups_budgets)))
    clean0 = unpack_bits(report.baseline.correct.clean, [report.baseline.samples])
    worst0 = torch.stack([unpack_bits(w.correct, [report.baseline.samples]) for w in report.threat.worst], -1)
    ranks = sample_ranks(report.dataset.size, evaluation_tensors(
        create_dataset(config.dataset), config.max_samples, config.seed)[2], config.seed)
    references = budget_references(clean0, worst0, ranks, config.scoring_part)
    headline = budgets.index(report.threat.headline)
    for group in report.groups:
        for f, curve in group.filters.items():
            evaluated = sum(n for name, filters, n in calls if name == group.name and f in filters)
            assert evaluated == curve.samples  # every budget's bits came from the samples the sweep evaluated
            bits = unpack_bits(curve.surface.correct, [len(budgets), len(curve.thresholds), curve.samples])
            assert curve.surface.adversarial == bits.double().mean(-1).tolist()
            assert curve.surface.adversarial[headline] == curve.adversarial
            engine_curve = Curve(
                thresholds=curve.thresholds, positions=curve.positions, removed=curve.removed, changed=curve.changed,
                numel=curve.surface.numel, clean=unpack_bits(curve.correct.clean, bits.shape[1:]),
                adversarial=bits.movedim(0, -1),
            )
            restated = surface(engine_curve, references, config, report.threat.filter_level)
            assert restated.classes == curve.surface.classes and restated.intervals == curve.surface.intervals
            if curve.stop == "decided":  # the rule waited for every budget's classes, not the headline's alone
                for kind in ("adversarial", "difference"):
                    assert set(getattr(curve.surface.classes, kind)) <= SETTLED, (group.name, f)


def test_an_interrupted_adaptive_profile_resumes_to_the_uninterrupted_report(adaptive_profile, tmp_path, monkeypatch):
    config, reference, calls, _ = adaptive_profile
    group, stop_at, _ = last_look_of_the_longest_group(calls)
    with monkeypatch.context() as patch:
        recording_sweeps(patch, stop_at)
        with pytest.raises(KeyboardInterrupt):
            fragscan.scan(config, resume_dir=tmp_path)
    assert len(list((tmp_path / "rounds").glob("*.safetensors"))) == 1  # the group's looks before the last
    second = recording_sweeps(monkeypatch)
    resumed = fragscan.scan(config, resume_dir=tmp_path)
    assert second == calls[stop_at:]  # only the looks left were evaluated
    assert resumed.run.continued_targets == 1
    assert numbers_of(resumed) == numbers_of(reference)
