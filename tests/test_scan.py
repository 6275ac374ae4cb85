import json
from dataclasses import FrozenInstanceError, fields

import pytest
import torch

import fragscan
from fragscan.data import create_dataset, evaluation_tensors
from fragscan.models import create_model
from fragscan.report.html import render_html
from fragscan.report.model import DECIDED
from fragscan.scoring.evidence import judge
from fragscan.sweep.attacks import build_attack, predictions
from fragscan.sweep.engine import analysis_mode
from fragscan.sweep.filters import StepUp
from fragscan.sweep.groups import parameter_groups


def _numbers(report):
    data = json.loads(report.model_dump_json())
    data.pop("run")
    return data


def test_each_stage_reads_a_part_of_the_settings_projected_from_the_flat_ones():
    config = fragscan.ScanConfig(eps=0.1, filters="pulse", seed=3, tau=0.02, select=("features.*",), device="cpu")
    parts = [config.data_part, config.sweep_part, config.attack_part, config.scoring_part, config.runtime_part]
    for part in parts:
        assert {f.name: getattr(part, f.name) for f in fields(part)} == config.model_dump(include={
            f.name for f in fields(part)
        })
    assert config.attack_part.seed == config.scoring_part.seed == config.data_part.seed == 3
    # what no stage reads: the pipeline resolves these itself (one scan per checkpoint, plugins loaded
    # first, --batch-size auto measured, the adaptive plan made once for every sweep)
    unread = set(fragscan.ScanConfig.model_fields) - {f.name for part in parts for f in fields(part)}
    assert unread == {"checkpoints", "plugins", "batch_size", "adaptive"}
    with pytest.raises(FrozenInstanceError):
        config.scoring_part.tau = 0.5


def test_report_has_the_documented_fields(small_config):
    report = fragscan.scan(small_config())
    data = json.loads(report.model_dump_json())
    for key in ("schema_version", "fragscan_version", "model", "dataset", "settings", "baseline", "groups"):
        assert key in data
    assert set(data["baseline"]) >= {"clean", "adversarial"}
    assert {"eps_used", "seed", "device_used", "versions"} <= set(data["settings"])
    group = data["groups"][0]
    assert set(group) >= {"name", "numel", "shape", "filters", "class"}
    cell = group["filters"]["pulse"]
    assert set(cell) >= {"thresholds", "removed", "clean", "adversarial", "scores", "classes"}
    assert set(cell["scores"]) == set(cell["classes"]) == {"clean", "adversarial", "difference"}
    assert [g["name"] for g in data["groups"]] == [
        "features.0.weight", "features.2.weight", "features.6.weight", "classifier.1.weight", "classifier.3.weight"
    ]
    assert fragscan.Report.model_validate_json(report.model_dump_json()) == report


def test_the_same_seed_gives_the_same_numbers(small_config):
    config = small_config(eps="auto", attack="PGD", max_samples=50)  # PGD has a random start
    assert _numbers(fragscan.scan(config)) == _numbers(fragscan.scan(config))


def test_a_scan_leaves_the_weights_and_buffers_bit_identical(small_config):
    model = create_model("digits-cnn")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fragscan.scan(small_config(norm_mode="train"), model=model)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert all(p.requires_grad for p in model.parameters())
    assert not model.training


def _first_cell_by_hand(mode: str, eps: float):
    """Accuracy at step-up threshold 2 of features.0.weight, computed without the engine."""
    model = create_model("digits-cnn")
    images, labels, _ = evaluation_tensors(create_dataset("digits"), 60, 0)
    weight = model.net.features[0].weight
    f = StepUp.over(weight.detach(), 5)
    alpha = f.thresholds().tolist()[2]
    with analysis_mode(model):
        torch.manual_seed(0)
        fixed = build_attack("FGSM", model, eps, 10)(images[:32], labels[:32])
        torch.manual_seed(1)
        fixed = torch.cat([fixed, build_attack("FGSM", model, eps, 10)(images[32:], labels[32:])])
        with torch.no_grad():
            weight.masked_fill_(f.removed(weight, alpha), 0)
        if mode == "regenerate":
            attack = build_attack("FGSM", model, eps, 10)
            adversarial = torch.cat([attack(images[:32], labels[:32]), attack(images[32:], labels[32:])])
        else:
            adversarial = fixed
        return (predictions(model, adversarial, 32) == labels).double().mean().item()


@pytest.mark.parametrize("mode", ["regenerate", "fixed"])
def test_each_attack_mode_matches_its_definition_computed_by_hand(small_config, mode):
    report = fragscan.scan(small_config(attack_mode=mode, filters="step-up", summary_filter="step-up"))
    cell = report.groups[0].filters["step-up"].adversarial[2]
    assert cell == _first_cell_by_hand(mode, 0.1)


def test_regenerate_and_fixed_differ_on_filtered_networks(small_config):
    regenerate = fragscan.scan(small_config(attack_mode="regenerate"))
    fixed = fragscan.scan(small_config(attack_mode="fixed"))
    assert regenerate.baseline == fixed.baseline
    curves = lambda r: [c.adversarial for g in r.groups for c in g.filters.values()]  # noqa: E731
    assert curves(regenerate) != curves(fixed)


def test_eps_auto_brings_adversarial_accuracy_near_half_of_clean(small_config):
    report = fragscan.scan(small_config(eps="auto", max_samples=200))
    assert 0 < report.settings.eps_used < 1
    ratio = report.baseline.adversarial / report.baseline.clean
    assert 0.35 < ratio <= 0.5 + 1e-9


def test_removed_counts_are_recorded_and_reach_the_whole_group(small_config):
    report = fragscan.scan(small_config())
    for group in report.groups:
        step_up = group.filters["step-up"]
        assert step_up.removed[-1] == group.numel
        assert step_up.removed == sorted(step_up.removed)
        assert step_up.clean[-1] < report.baseline.clean
        pulse = group.filters["pulse"]
        assert all(0 < r < group.numel for r in pulse.removed)


def test_default_scan_shows_structure():
    # At its 540 samples under the evidence rule the embedded default shows decided filter classes of
    # more than one kind and decided pulse bands (what its mask trains); a group class its interval
    # cannot decide (pulse S_adv within a few hundredths of ±τ) says how many samples would. The
    # point rule, rescored from the same curves, still calls some group robust or antifragile.
    report = fragscan.scan(fragscan.ScanConfig())
    assert report.baseline.clean >= 0.95
    classes = {(g.name, f, s): getattr(c.classes, s) for g in report.groups for f, c in g.filters.items()
               for s in ("clean", "adversarial", "difference")}
    assert len(set(classes.values()) & DECIDED) > 1
    bands = [c for g in report.groups for c in g.filters["pulse"].threshold_classes.adversarial]
    assert set(bands) & DECIDED
    for group in report.groups:
        assert group.summary_class in DECIDED or group.samples_to_decide is not None
    settings = report.settings.model_copy(update={"classify": "tau"})
    as_tau = judge(report.model_copy(update={"settings": settings}))
    assert {g.summary_class for g in as_tau.groups} & {"robust", "antifragile"}


def test_global_scope_filters_all_groups_at_once(small_config):
    report = fragscan.scan(small_config(scope="global"))
    assert report.groups == []
    total = sum(g.parameter.numel() for g in parameter_groups(create_model("digits-cnn").net)[0])
    step_up = report.global_["step-up"]
    assert step_up.removed[-1] == total
    assert step_up.clean[-1] < 0.5


def test_constant_tensors_are_skipped_with_a_reason():
    model = create_model("digits-cnn")
    with torch.no_grad():
        model.net.classifier[3].weight.fill_(0.5)
    groups, skipped = parameter_groups(model.net)
    assert "classifier.3.weight" not in [g.name for g in groups]
    assert skipped[0].name == "classifier.3.weight" and "equal" in skipped[0].reason


def test_include_widens_the_scope_to_biases():
    groups, _ = parameter_groups(create_model("digits-cnn").net, ("bias",))
    assert "features.0.bias" in [g.name for g in groups]


def test_reduced_precision_is_measured_against_fp32_and_falls_back_beyond_the_tolerance(small_config):
    quick = dict(max_samples=200, thresholds=3, bootstrap=0, classify="tau")
    exact = fragscan.scan(small_config(**quick))
    fast = fragscan.scan(small_config(**quick, precision="bf16", precision_tolerance=1.0))
    assert exact.settings.precision_used == "fp32" and exact.settings.precision_disagreement is None
    assert fast.settings.precision_used == "bf16"
    flips = fast.settings.precision_disagreement
    assert 0 < flips < 0.1  # bf16 moves a few FGSM examples of this model across the boundary
    strict = fragscan.scan(
        small_config(**quick, precision="bf16", precision_tolerance=flips / 2)
    )
    assert strict.settings.precision_used == "fp32" and strict.settings.precision_disagreement == flips
    assert any("the sweep ran in fp32" in w for w in strict.warnings)
    assert [g.filters for g in strict.groups] == [g.filters for g in exact.groups]  # the fallback is exact
    assert "Arithmetic <code>bf16</code>, not exact" in render_html(fast)
    assert "Arithmetic" not in render_html(strict)


def test_select_analyses_only_the_matching_groups_and_the_mask_treats_the_rest_as_others(small_config, tmp_path):
    from safetensors.torch import load_file

    config = small_config(select=("classifier.*",), thresholds=3, bootstrap=0, classify="tau")
    outputs = fragscan.scan_to(config, tmp_path)
    assert [g.name for g in outputs.report.groups] == ["classifier.1.weight", "classifier.3.weight"]
    assert outputs.report.settings.select == ("classifier.*",)
    full = fragscan.scan(small_config(thresholds=3, bootstrap=0, classify="tau"))
    # the same numbers as in a scan of every group, but for what is adjusted for the family of thresholds
    family = {"filters": {"__all__": {"threshold_q_values", "threshold_intervals"}}}
    assert [g.model_dump(exclude=family) for g in outputs.report.groups] == [
        g.model_dump(exclude=family) for g in full.groups[3:]
    ]
    assert outputs.report.settings.threshold_level < full.settings.threshold_level  # a smaller family
    mask = load_file(tmp_path / "mask.safetensors")
    assert bool(mask["features.0.weight"].all())  # not analysed: --others train (the default)
    frozen = fragscan.mask_from_report(outputs.report, others="freeze").tensors
    assert not bool(frozen["features.0.weight"].any())


def test_a_model_without_weights_starts_from_the_seeded_initialisation():
    # no weights file: the report's numbers come from the initialisation, which the seed must fix
    def scan(seed):
        config = fragscan.ScanConfig(
            model="small-cnn", max_samples=30, thresholds=3, eps=0.1, filters="pulse", bootstrap=0,
            classify="tau", seed=seed,
        )
        return fragscan.scan(config).groups[0].filters["pulse"].thresholds

    assert scan(0) == scan(0)
    assert scan(0) != scan(1)
