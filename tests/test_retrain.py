import json
from html import escape

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch.utils.data import Subset
from typer.testing import CliRunner

from fragscan.cli import app
from fragscan.data import create_dataset
from fragscan.models import create_model
from fragscan.models.train import TrainSettings, train
from fragscan.outputs.masks import Mask, load_mask
from fragscan.outputs.retraining.experiment import (
    Comparison,
    Estimate,
    RetrainConfig,
    RetrainResult,
    bits_differ,
    bootstrap_mean,
    compare,
    random_mask_like,
    retrain,
    stacked,
    verdict,
)
from fragscan.sweep.attacks import build_attack

runner = CliRunner()


def _half_mask(model, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return {
        name: (torch.rand(p.shape, generator=generator) < 0.5).to(torch.uint8) for name, p in model.named_parameters()
    }


def _train_set():
    return Subset(create_dataset("digits", split="train"), range(200))


def test_masked_training_keeps_frozen_elements_bit_identical_with_weight_decay_and_adversary():
    model = create_model("digits-cnn")
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    mask = _half_mask(model)
    attack = build_attack("FGSM", model, 0.1, 10)
    train(model, _train_set(), TrainSettings(epochs=1, weight_decay=0.05), mask=mask, attack=attack)
    for name, parameter in model.named_parameters():
        differs = bits_differ(before[name], parameter.detach())
        frozen = ~mask[name].bool()
        assert not bool((differs & frozen).any()), name
        assert bool((differs & mask[name].bool()).any()), f"{name} did not move"


@pytest.mark.parametrize("attacked", [None, "FGSM", "profile"])
def test_a_batch_norm_layer_with_every_parameter_frozen_keeps_its_running_statistics(attacked):
    """Also under --adversarial: torchattacks puts the whole network back in train mode after each attack."""
    from torch import nn

    from fragscan.models import ModelSpec, Normalized
    from fragscan.sweep.threats import HeadlineWorstCase

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3),
        nn.BatchNorm2d(4),
        nn.Flatten(),
        nn.Linear(64, 10),
    )
    model = Normalized(net, ModelSpec((1, 8, 8), (0.3,), (0.4,), 10))
    mask = {name: torch.ones(p.shape, dtype=torch.uint8) for name, p in model.named_parameters()}
    mask["net.1.weight"].zero_()
    mask["net.1.bias"].zero_()  # the first norm layer frozen whole; the second still trains
    before = {k: v.clone() for k, v in model.state_dict().items()}
    attack = None
    if attacked == "FGSM":
        attack = build_attack("FGSM", model, 0.1, 10)
    elif attacked == "profile":
        attack = HeadlineWorstCase([build_attack("FGSM", model, 0.1, 10), build_attack("PGD", model, 0.1, 10)], model)
    train(model, _train_set(), TrainSettings(epochs=1), mask=mask, attack=attack)
    for buffer in ("running_mean", "running_var", "num_batches_tracked"):
        assert torch.equal(model.state_dict()[f"net.1.{buffer}"], before[f"net.1.{buffer}"]), buffer
        assert not torch.equal(model.state_dict()[f"net.4.{buffer}"], before[f"net.4.{buffer}"]), buffer


def test_masking_gradients_alone_would_not_keep_them_under_weight_decay():
    """Why frozen elements are restored after each step: Adam's decay moves zero-gradient entries."""
    model = create_model("digits-cnn")
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    mask = _half_mask(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=0.05)
    images, labels = next(iter(torch.utils.data.DataLoader(_train_set(), batch_size=100)))
    torch.nn.functional.cross_entropy(model(images), labels).backward()
    for name, parameter in model.named_parameters():
        parameter.grad.mul_(mask[name])
    optimizer.step()
    weight = "net.features.0.weight"
    assert bool((bits_differ(before[weight], model.get_parameter(weight).detach()) & ~mask[weight].bool()).any())


def _mask_file(path, model, *, split=None, seed=0):
    from safetensors.torch import save_file

    metadata = None if split is None else {"split": split, "model": "digits-cnn"}
    save_file(_half_mask(model.net, seed), str(path), metadata=metadata)
    return path


QUICK_RETRAIN = ["--epochs", "1", "--max-samples", "40", "--eps", "0.1", "--train-samples", "200", "--quiet"]


def test_scan_val_mask_retrain_round_trip_with_both_controls_and_repeats(tmp_path):
    scan_dir, out = tmp_path / "scan", tmp_path / "retrain"
    result = runner.invoke(
        app,
        [
            "scan",
            "--split",
            "val",
            "--max-samples",
            "40",
            "--thresholds",
            "3",
            "--eps",
            "0.1",
            "--filters",
            "pulse",
            "--classify",
            "tau",
            "--quiet",
            "--out",
            str(scan_dir),
        ],
    )
    assert result.exit_code == 0, result.output
    mask_path = scan_dir / "mask.safetensors"
    result = runner.invoke(
        app, ["mask", str(scan_dir / "report.json"), "--policy", "band", "-o", str(tmp_path / "again.safetensors")]
    )
    assert result.exit_code == 0, result.output
    assert load_file(str(mask_path)).keys() == load_file(str(tmp_path / "again.safetensors")).keys()
    assert all(
        torch.equal(load_file(str(mask_path))[k], v) for k, v in load_file(str(tmp_path / "again.safetensors")).items()
    )

    result = runner.invoke(
        app,
        [
            "retrain",
            "digits-cnn",
            "digits",
            "--mask",
            str(mask_path),
            "--repeats",
            "2",
            "--weight-decay",
            "0.01",
            "--adversarial",
            *QUICK_RETRAIN,
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "retrain.json").read_text())
    assert summary["mask_split"] == "val" and summary["holdout"].startswith("val: 251 of the 1257")
    assert summary["frozen_bit_identical"] is True and summary["settings"]["adversarial"] is True
    assert set(summary["arms"]) == {"selective", "random", "unmasked"}
    assert [run["seed"] for run in summary["arms"]["random"]["runs"]] == [0, 1]
    assert set(summary["comparison"]) == {"selective_minus_random", "selective_minus_unmasked"}
    for comparison in summary["comparison"].values():
        assert set(comparison) == {"adversarial", "clean"} and set(comparison["clean"]) == {"estimate", "interval"}
    partly = any(0 < int(m.sum()) < m.numel() for m in load_file(str(mask_path)).values())
    assert summary["mask_chooses_elements"] is partly
    assert summary["verdict"].startswith("The mask's choice " if partly else "The mask trains each parameter whole")
    page = (out / "retrain.html").read_text()
    assert escape(summary["verdict"]) in page and "selective minus random" in page

    original = dict(create_model("digits-cnn").net.named_parameters())
    files = (mask_path, out / "weights.safetensors", out / "unmasked.safetensors")
    mask, after, unmasked = (load_file(str(path)) for path in files)
    assert 0 < sum(int(m.sum()) for m in mask.values()) < sum(m.numel() for m in mask.values())
    for name, parameter in original.items():
        differs = bits_differ(parameter.detach(), after[name])
        assert not bool((differs & ~mask[name].bool()).any()), name
        if mask[name].any():
            assert bool(differs.any()), f"trainable {name} did not move"
        assert bool(bits_differ(parameter.detach(), unmasked[name]).any()), f"unmasked control left {name} unchanged"


def test_the_random_control_keeps_the_masks_count_in_every_parameter_at_other_positions():
    model = create_model("digits-cnn")
    mask = Mask(_half_mask(model.net), {"policy": "band"})
    mask.tensors["features.0.bias"].zero_()  # a parameter frozen whole stays frozen whole
    drawn = random_mask_like(mask, seed=3)
    assert drawn.tensors.keys() == mask.tensors.keys()
    for name, tensor in mask.tensors.items():
        assert int(drawn.tensors[name].sum()) == int(tensor.sum()), name
        assert drawn.tensors[name].shape == tensor.shape and drawn.tensors[name].dtype == torch.uint8
    weight = "features.0.weight"
    assert not torch.equal(drawn.tensors[weight], mask.tensors[weight])
    assert torch.equal(random_mask_like(mask, seed=3).tensors[weight], drawn.tensors[weight])  # seeded
    assert not torch.equal(random_mask_like(mask, seed=4).tensors[weight], drawn.tensors[weight])


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    """One library retraining with both controls and two repeats on a half mask scanned (it says) on val."""
    folder = tmp_path_factory.mktemp("judged")
    model = create_model("digits-cnn")
    path = _mask_file(folder / "m.safetensors", model, split="val")
    config = RetrainConfig(
        mask=path, epochs=1, max_samples=60, eps=0.1, train_samples=200, repeats=2, weight_decay=0.05
    )
    return retrain(config), path


def test_frozen_elements_stay_bit_identical_in_every_masked_arm(judged):
    done, path = judged
    original = dict(create_model("digits-cnn").net.named_parameters())
    mask = load_mask(path, create_model("digits-cnn").net)
    masks = {"selective": mask, "random": random_mask_like(mask, done.result.settings.seed)}  # the first repeat's
    for arm, arm_mask in masks.items():
        for name, parameter in original.items():
            differs = bits_differ(parameter.detach(), done.weights[arm][name])
            trainable = arm_mask.tensors[name].bool()
            assert not bool((differs & ~trainable).any()), (arm, name)
            assert bool((differs & trainable).any()), f"{arm}: trainable {name} did not move"
        for run in done.result.arms[arm].runs:
            assert {c.name: c.trainable for c in run.parameters} == {n: int(t.sum()) for n, t in mask.tensors.items()}
            assert all(c.frozen_moved == 0 for c in run.parameters)
    assert done.result.frozen_bit_identical and done.result.mask_chooses_elements


def test_the_comparison_is_recomputable_from_the_stored_per_sample_correctness(judged):
    done, _ = judged
    stored = RetrainResult.model_validate_json(done.result.model_dump_json())  # what retrain.json holds, read back
    samples, settings = stored.samples, stored.settings
    for arm in stored.arms.values():
        for run in arm.runs:  # the bits are the runs' own accuracies
            assert stacked([run], "adversarial", samples).mean() == pytest.approx(run.adversarial)
            assert stacked([run], "clean", samples).mean() == pytest.approx(run.clean)
    for control in ("random", "unmasked"):
        again = compare(stored.arms["selective"], stored.arms[control], samples, settings.bootstrap, settings.seed)
        assert again == stored.comparison[f"selective_minus_{control}"]
        runs = zip(stored.arms["selective"].runs, stored.arms[control].runs)
        paired = [a.adversarial - b.adversarial for a, b in runs]
        assert again.adversarial.estimate == pytest.approx(sum(paired) / len(paired))
        low, high = again.adversarial.interval
        assert low <= again.adversarial.estimate <= high


def test_the_bootstrap_interval_has_the_binomial_width_and_pairs_the_arms():
    rng = np.random.default_rng(0)
    coin = (rng.random((1, 400)) < 0.5).astype(float)
    estimate = bootstrap_mean(coin, 4000, seed=0)
    width = estimate.interval[1] - estimate.interval[0]
    assert width == pytest.approx(2 * 1.96 * (0.25 / 400) ** 0.5, rel=0.15)
    # Two arms that differ on 20 of 400 samples, identically in each of 3 repeats: pairing by sample
    # and repeat leaves only the discordant samples' noise, far narrower than either arm's own.
    base = np.tile((rng.random(400) < 0.5).astype(float), (3, 1))
    better = base.copy()
    better[:, np.flatnonzero(base[0] == 0)[:20]] = 1
    difference = bootstrap_mean(better - base, 4000, seed=0)
    assert difference.estimate == pytest.approx(0.05) and difference.interval[0] > 0.02
    assert bootstrap_mean(np.full((3, 50), 0.25), 100, seed=1).interval == (0.25, 0.25)


@pytest.mark.parametrize(
    ("interval", "opening"),
    [
        ((0.01, 0.05), "The mask's choice beat chance"),
        ((-0.02, 0.03), "The mask's choice did not beat chance"),
        ((-0.05, -0.01), "The mask's choice did worse than chance"),
    ],
)
def test_the_verdict_is_one_sentence_on_the_random_control(interval, opening):
    estimate = Estimate(estimate=sum(interval) / 2, interval=interval)
    sentence = verdict({"selective_minus_random": Comparison(adversarial=estimate, clean=estimate)})
    assert sentence.startswith(opening) and sentence.endswith(".") and "\n" not in sentence
    assert verdict({}).startswith("No random-mask control was run")
    same = {"selective_minus_random": Comparison(adversarial=estimate, clean=estimate)}
    whole = verdict(same, chooses_elements=False)
    assert "cannot tell whether its choice beat chance" in whole


@pytest.mark.parametrize(
    ("mask_split", "options", "expected"),
    [
        ("test", [], "derived from a scan of the 'test' split, the one --eval-split judges on"),
        ("val", ["--eval-split", "val"], "derived from a scan of the 'val' split, the one --eval-split judges on"),
        ("val", ["--train-split", "test"], "--train-split and --eval-split are both 'test'"),
    ],
)
def test_judging_on_the_split_the_mask_saw_or_the_one_fitted_is_refused(tmp_path, mask_split, options, expected):
    path = _mask_file(tmp_path / "m.safetensors", create_model("digits-cnn"), split=mask_split)
    result = runner.invoke(
        app,
        [
            "retrain",
            "digits-cnn",
            "digits",
            "--mask",
            str(path),
            *QUICK_RETRAIN,
            *options,
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 2 and expected in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not (tmp_path / "o" / "retrain.json").exists()


def test_controls_none_runs_the_selective_arm_alone_and_says_chance_was_not_tested(tmp_path):
    path = _mask_file(tmp_path / "m.safetensors", create_model("digits-cnn"))  # no split: a warning, not a refusal
    result = runner.invoke(
        app,
        [
            "retrain",
            "digits-cnn",
            "digits",
            "--mask",
            str(path),
            *QUICK_RETRAIN[:-1],
            "--controls",
            "none",
            "--repeats",
            "1",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "leakage cannot be ruled out" in " ".join(result.output.split())
    record = json.loads((tmp_path / "o" / "retrain.json").read_text())
    assert set(record["arms"]) == {"selective"} and record["comparison"] == {} and record["mask_split"] is None
    assert any("leakage cannot be ruled out" in w for w in record["warnings"])  # kept, not only printed
    assert record["verdict"].startswith("No random-mask control was run")
    assert not (tmp_path / "o" / "unmasked.safetensors").exists()
    arguments = ["retrain", "digits-cnn", "digits", "--mask", str(path), "--controls", "shuffled", "--out", tmp_path]
    bad = runner.invoke(app, [str(a) for a in arguments])
    assert bad.exit_code == 2 and "--controls" in bad.output and "Traceback" not in bad.output


def test_train_writes_checkpoints_and_a_sidecar(tmp_path):
    result = runner.invoke(
        app,
        [
            "train",
            "digits-cnn",
            "digits",
            "--split",
            "train",
            "--epochs",
            "3",
            "--save-every",
            "2",
            "--quiet",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "training.json").read_text())
    assert [c["epoch"] for c in record["checkpoints"]] == [2, 3]
    assert len(record["losses"]) == 3 and record["losses"][-1] < record["losses"][0]
    model = create_model("digits-cnn", weights=tmp_path / "epoch_003.safetensors")  # loads strictly
    assert record["checkpoints"][-1]["accuracy"] > 0.5
    assert not torch.equal(model.net.features[0].weight, create_model("digits-cnn").net.features[0].weight)


def test_bad_training_options_are_one_line(tmp_path):
    result = runner.invoke(app, ["train", "digits-cnn", "digits", "--epochs", "0", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--epochs must lie in [1, 100000]" in result.output
    result = runner.invoke(
        app, ["retrain", "digits-cnn", "digits", "--mask", str(tmp_path / "none.safetensors"), "--out", str(tmp_path)]
    )
    assert result.exit_code == 2 and "not found" in result.output and "Traceback" not in result.output


def test_train_shows_progress_within_an_epoch(tmp_path, monkeypatch):
    """Issue 23.23: one Fashion-MNIST epoch on a CPU took 5 minutes without a word."""
    import fragscan.cli.ui

    monkeypatch.setattr(fragscan.cli.ui, "LOG_EVERY_S", 0.0)  # a log line at every batch, not every 30 s
    arguments = ["train", "digits-cnn", "digits", "--epochs", "2", "--batch-size", "256", "--out", str(tmp_path)]
    result = runner.invoke(app, arguments)
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.output.splitlines() if line.endswith(" batches")]
    batches = int(lines[0][2].split("/")[1])
    # every batch but an epoch's last, which the epoch's own line reports
    assert [(int(e), d) for _, e, d, _ in lines] == [(e, f"{d}/{batches}") for e in (1, 2) for d in range(1, batches)]
    assert batches > 1


@pytest.fixture(scope="module")
def judged_by_profile(tmp_path_factory):
    """A tiny retraining judged by a profile (two budgets, PGD beside FGSM at the headline)."""
    folder = tmp_path_factory.mktemp("profile")
    path = _mask_file(folder / "m.safetensors", create_model("digits-cnn"), split="val")
    config = RetrainConfig(
        mask=path, epochs=1, max_samples=40, train_samples=200, repeats=1, controls=("random",),
        threat="FGSM@0.05,0.1;PGD@0.1", bootstrap=200,
    )
    return retrain(config)


def _worst_by_hand(net, images, labels, batch, seed):
    """Per budget, torchattacks run directly on every sample (batch k seeded seed + k), the worst case kept."""
    import torchattacks

    from fragscan.sweep.attacks import predictions

    def correct(attack):
        out = []
        for k, start in enumerate(range(0, len(images), batch)):
            torch.manual_seed(seed + k)
            adversarial = attack(images[start : start + batch], labels[start : start + batch])
            out.append(predictions(net, adversarial, batch) == labels[start : start + batch])
        return torch.cat(out)

    fgsm = {eps: correct(torchattacks.FGSM(net, eps=eps)) for eps in (0.05, 0.1)}
    pgd = correct(torchattacks.PGD(net, eps=0.1, alpha=0.1 / 4, steps=10))  # a scan keeps the step's share
    return [fgsm[0.05], fgsm[0.1] & pgd]


def test_a_profile_judges_each_arm_by_the_worst_case_at_its_headline_and_records_every_budget(judged_by_profile):
    from fragscan.data import evaluation_tensors

    result = RetrainResult.model_validate_json(judged_by_profile.result.model_dump_json())  # retrain.json read back
    assert result.threat.budgets == [0.05, 0.1] and result.threat.headline == result.eps_used == 0.1
    images, labels, _ = evaluation_tensors(create_dataset("digits", split="test"), 40, 0)
    networks = {"before": create_model("digits-cnn")}
    for arm, state in judged_by_profile.weights.items():
        networks[arm] = create_model("digits-cnn")
        networks[arm].net.load_state_dict(state)
    runs = {"before": result.before.runs[0], **{arm: result.arms[arm].runs[0] for arm in ("selective", "random")}}
    for arm, run in runs.items():
        worst = _worst_by_hand(networks[arm].eval(), images, labels, 100, 0)
        assert run.worst == [w.double().mean().item() for w in worst], arm
        assert torch.equal(torch.from_numpy(stacked([run], "adversarial", 40)[0]).bool(), worst[1]), arm
        assert run.adversarial == run.worst[1]
    assert any(r.worst[1] < r.worst[0] for r in runs.values()), "the larger budget must be the harder one"


def test_a_one_attack_profile_judges_as_attack_and_eps_do(tmp_path):
    path = _mask_file(tmp_path / "m.safetensors", create_model("digits-cnn"), split="val")
    quick = dict(mask=path, epochs=1, max_samples=40, train_samples=200, repeats=1, controls=(), bootstrap=50)
    profile = retrain(RetrainConfig(**quick, threat="FGSM@0.1")).result
    plain = retrain(RetrainConfig(**quick, eps=0.1)).result
    for mine, theirs in zip([profile.before, profile.arms["selective"]], [plain.before, plain.arms["selective"]]):
        assert [(r.clean, r.adversarial, r.correct) for r in mine.runs] == [
            (r.clean, r.adversarial, r.correct) for r in theirs.runs
        ]
    assert profile.threat.budgets == [0.1] and plain.threat is None and plain.before.runs[0].worst is None


@pytest.mark.parametrize(
    "options, words",
    [
        (["--threat", "FGSM@0.1;FGSMM@0.2"], "unknown attack 'FGSMM'"),
        (["--threat", "FGSM@0.1,1.2"], "outside [0, 1]"),
        (["--threat", "PGD@0.1;PGD@0.1"], "twice"),
        (["--threat", "CW@0.1"], "has no ε"),
        (["--threat", "FGSM@0.1", "--eps", "0.2"], "replaces --attack and --eps"),
        (["--threat", "FGSM@0.1,0.2", "--headline-eps", "0.3"], "not among"),
        (["--headline-eps", "0.1"], "give a --threat"),
        # an attack that cannot run on the data, judged or trained against: refused before any fine-tuning
        (["--threat", "FGSM@0.1;TIFGSM@0.1", "--adversarial"], "attack TIFGSM cannot run on inputs of shape"),
    ],
)
def test_a_bad_retrain_profile_is_one_line_exit_2_and_nothing_written(tmp_path, options, words):
    path = _mask_file(tmp_path / "m.safetensors", create_model("digits-cnn"), split="val")
    out = tmp_path / "o"
    quick = [o for o in QUICK_RETRAIN if o not in ("--eps", "0.1")]
    result = runner.invoke(app, ["retrain", "digits-cnn", "digits", "--mask", str(path), *quick, *options,
                                 "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert words in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert not out.exists()


def _profile_part(threat):
    from fragscan.outputs.retraining.experiment import profile_settings

    return profile_settings(RetrainConfig(mask="m.safetensors", threat=threat))


@pytest.mark.parametrize("eps", [0.05, 0.1])
def test_adversarial_fine_tuning_on_a_profile_takes_the_first_example_that_fools(eps):
    """The headline budget's attacks in spec order, each only on the samples the earlier ones left correct:
    per sample the first fooling example, else the last attack's, as torchattacks run directly gives them."""
    import torchattacks

    from fragscan.data import evaluation_tensors
    from fragscan.sweep import threats
    from fragscan.sweep.attacks import predictions

    net = create_model("digits-cnn").eval()
    images, labels, _ = evaluation_tensors(create_dataset("digits", split="test"), 60, 0)
    profile = _profile_part(f"FGSM@0.02,{eps};PGD@{eps}")  # a lower budget is not trained against
    resolved = threats.resolve(profile, net, images, labels, 100)
    perturb = threats.HeadlineWorstCase.of(profile, net, resolved)
    torch.manual_seed(7)
    mine = perturb(images, labels)

    fgsm = torchattacks.FGSM(net, eps=eps)(images, labels)
    fooled = predictions(net, fgsm, 100) != labels
    torch.manual_seed(7)  # FGSM and the predictions draw nothing: PGD's random start is the first draw
    pgd = torchattacks.PGD(net, eps=eps, alpha=eps / 4, steps=10)(images[~fooled], labels[~fooled])
    expected = fgsm.clone()
    expected[~fooled] = pgd
    assert torch.equal(mine, expected)
    pgd_fooled = predictions(net, pgd, 100) != labels[~fooled]
    assert fooled.any() and pgd_fooled.any() and not pgd_fooled.all(), "each case must occur: FGSM, PGD, none fools"
    assert not net.training


def test_adversarial_fine_tuning_against_a_profile_runs_from_the_command_line(tmp_path, monkeypatch):
    """Once refused ("--adversarial fine-tunes on one attack"): now each batch is the headline's worst case."""
    from fragscan.sweep import threats

    perturbed = []
    original_call = threats.HeadlineWorstCase.__call__

    def spy(self, images, labels):
        perturbed.append(([type(a).__name__ for a in self.attacks], [a.eps for a in self.attacks], len(labels)))
        return original_call(self, images, labels)

    monkeypatch.setattr(threats.HeadlineWorstCase, "__call__", spy)
    path = _mask_file(tmp_path / "m.safetensors", create_model("digits-cnn"), split="val")
    out = tmp_path / "o"
    quick = [o for o in QUICK_RETRAIN if o not in ("--eps", "0.1")]
    result = runner.invoke(
        app,
        ["retrain", "digits-cnn", "digits", "--mask", str(path), *quick, "--repeats", "1", "--controls", "random",
         "--bootstrap", "50", "--threat", "FGSM@0.05;PGD@0.05", "--adversarial", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "retrain.json").read_text())
    assert summary["settings"]["adversarial"] is True and summary["settings"]["threat"] == "FGSM@0.05;PGD@0.05"
    assert summary["threat"] == {"spec": "FGSM@0.05;PGD@0.05", "budgets": [0.05], "headline": 0.05}
    assert summary["frozen_bit_identical"] is True and set(summary["arms"]) == {"selective", "random"}
    # 200 fine-tuning samples in batches of 100, in each of the two arms
    assert perturbed == [(["FGSM", "PGD"], [0.05, 0.05], 100)] * 4


def test_adversarial_fine_tuning_on_a_one_attack_profile_is_that_of_attack_and_eps(tmp_path):
    path = _mask_file(tmp_path / "m.safetensors", create_model("digits-cnn"), split="val")
    quick = dict(mask=path, epochs=1, max_samples=40, train_samples=200, repeats=1, controls=(), bootstrap=50)
    profile = retrain(RetrainConfig(**quick, threat="FGSM@0.1", adversarial=True))
    plain = retrain(RetrainConfig(**quick, eps=0.1, adversarial=True))
    unattacked = retrain(RetrainConfig(**quick, eps=0.1))
    same = [torch.equal(v, plain.weights["selective"][k]) for k, v in profile.weights["selective"].items()]
    assert all(same)
    assert not all(torch.equal(v, plain.weights["selective"][k]) for k, v in unattacked.weights["selective"].items())
