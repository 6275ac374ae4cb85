"""Selective retraining judged honestly (method §7): the mask's arm against chance and against no mask.

``retrain`` fine-tunes the starting weights in up to three *arms*: ``selective`` (under the mask),
``random`` (a fresh random mask per repeat with the mask's trainable count in every parameter) and
``unmasked``. Every arm gets the same budget, the same data order per repeat and the same attack;
each arm runs ``repeats`` times (seed, seed + 1, ...). Each run's per-sample correctness on the
evaluation samples is kept (packed bits), so the paired differences selective − random and
selective − unmasked and their bootstrap intervals (over test samples and repeats) can be
recomputed from ``retrain.json`` alone. Frozen elements are checked bit by bit in every masked arm.
It returns the result and each arm's weights after the first repeat; it writes nothing.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Subset
from torchattacks.attack import Attack

from ..._version import __version__
from ...base.errors import ConfigError, InputError
from ...base.runtime import library_versions, resolve_device
from ...config import EPS_TARGET, AttackPart, RetrainConfig, ScanConfig, TrainSettings
from ...data import create_dataset, drawn_indices, evaluation_tensors
from ...models import Normalized
from ...models.fitting import model_for_data
from ...models.train import train
from ...report.model import ACCURACIES, Accuracy, PackedCorrectness
from ...report.retrain_model import (
    Arm,
    Comparison,
    Estimate,
    ParameterChange,
    RetrainResult,
    RetrainThreat,
    Run,
)
from ...scoring.confidence import LEVEL, pack_bits, unpack_bits
from ...sweep import threats
from ...sweep.attacks import build_attack, calibrate_eps, calibration_missed, check_attack, craft, predictions
from ...sweep.engine import analysis_mode
from ..masks import Mask, load_mask

ARMS: tuple[str, ...] = ("selective", "random", "unmasked")


@dataclass(frozen=True)
class Retrained:
    result: RetrainResult
    weights: dict[str, dict[str, torch.Tensor]]  # per arm: the user's network's state after the first repeat


def measure(
    model: Normalized, images, labels, attack: Attack, batch_size: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample correctness, clean and under ``attack`` built on this very network."""
    with analysis_mode(model):
        clean = predictions(model, images, batch_size) == labels
        adversarial_images = craft(attack, images, labels, batch_size, seed)
        adversarial = predictions(model, adversarial_images, batch_size) == labels
    return clean.cpu(), adversarial.cpu()


def profile_settings(config: RetrainConfig) -> AttackPart:
    """The settings :mod:`fragscan.sweep.threats` reads, from retrain's: the profile, its headline, the attack
    space, the seed, and --eps auto's target (retrain's, for 'auto' budgets); each network is attacked
    afresh, as retrain judges every arm."""
    return ScanConfig(
        threat=config.threat, headline_eps=config.headline_eps, attack_space=config.attack_space, seed=config.seed,
        eps_target=EPS_TARGET, attack_mode="regenerate",
    ).attack_part


def measure_profile(
    model: Normalized, images, labels, profile: AttackPart, resolved: threats.Resolved, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample correctness, clean and the worst case over each budget's attacks [samples, budgets],
    every attack built on this very network (one attack at one budget: :func:`measure`'s bits)."""
    with analysis_mode(model):
        clean = predictions(model, images, batch_size) == labels
        adversary = threats.profile_adversary(profile, model, resolved, images, labels, batch_size)
        worst = threats.with_budgets(adversary.correct(model), resolved)
    return clean.cpu(), worst.cpu()


def bootstrap_mean(values: np.ndarray, resamples: int, seed: int, level: float = LEVEL) -> Estimate:
    """Mean of ``values`` [repeats, samples] and its percentile interval: each resample draws the
    repeats and the test samples with replacement (the same samples for every drawn repeat, since
    every repeat is judged on the same test images)."""
    repeats, samples = values.shape
    rng = np.random.default_rng(seed)
    repeat_counts = _counts(rng.integers(repeats, size=(resamples, repeats)), repeats)
    sample_counts = _counts(rng.integers(samples, size=(resamples, samples)), samples)
    draws = ((repeat_counts @ values) * sample_counts).sum(axis=1) / (repeats * samples)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return Estimate(estimate=float(values.mean()), interval=(float(low), float(high)))


def _counts(draws: np.ndarray, size: int) -> np.ndarray:
    """Row-wise counts of each index 0..size-1 in ``draws`` [resamples, k] -> [resamples, size]."""
    counts = np.zeros((len(draws), size))
    np.add.at(counts, (np.arange(len(draws))[:, None], draws), 1)
    return counts


def stacked(runs: list[Run], accuracy: Accuracy, samples: int) -> np.ndarray:
    """Correctness [repeats, samples] (0.0 or 1.0) of one arm's runs, read back from their packed bits."""
    return np.stack([unpack_bits(getattr(run.correct, accuracy), [samples]).numpy() for run in runs]).astype(float)


def summarise(runs: list[Run], trainable_share: float, samples: int, resamples: int, seed: int) -> Arm:
    return Arm(
        trainable_share=trainable_share,
        runs=runs,
        **{accuracy: bootstrap_mean(stacked(runs, accuracy, samples), resamples, seed) for accuracy in ACCURACIES},
    )


def compare(selective: Arm, control: Arm, samples: int, resamples: int, seed: int) -> Comparison:
    """Selective minus ``control``, paired by repeat (same data order) and test sample."""
    return Comparison(
        **{
            accuracy: bootstrap_mean(
                stacked(selective.runs, accuracy, samples) - stacked(control.runs, accuracy, samples), resamples, seed
            )
            for accuracy in ACCURACIES
        }
    )


def verdict(comparison: dict[str, Comparison], chooses_elements: bool = True) -> str:
    """One plain sentence: did the mask's choice of elements beat a random choice of as many?

    ``chooses_elements``: some parameter is trainable in part; when none is, the random mask with
    the same count in every parameter is the mask itself, and the comparison says nothing."""
    if "selective_minus_random" not in comparison:
        return "No random-mask control was run, so these results cannot tell whether the mask's choice beat chance."
    if not chooses_elements:
        return (
            "The mask trains each parameter whole or not at all, so a random mask with its count in every parameter "
            "is the same mask: these results cannot tell whether its choice beat chance."
        )
    difference = comparison["selective_minus_random"].adversarial
    low, high = difference.interval
    figures = f"{difference.estimate:+.4f} adversarial accuracy (95% interval {low:+.4f} to {high:+.4f})"
    against = "a random mask of the same size"
    if low > 0:
        return f"The mask's choice beat chance: selective retraining gained {figures} over {against}."
    if high < 0:
        return f"The mask's choice did worse than chance: selective retraining differed by {figures} from {against}."
    return f"The mask's choice did not beat chance: selective minus {against} is {figures}, which includes 0."


def random_mask_like(mask: Mask, seed: int) -> Mask:
    """A mask with exactly ``mask``'s trainable count in every parameter, the positions drawn at random."""
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, tensor in mask.tensors.items():
        chosen = torch.zeros(tensor.numel(), dtype=torch.uint8)
        chosen[torch.randperm(tensor.numel(), generator=generator)[: int(tensor.sum())]] = 1
        tensors[name] = chosen.reshape(tensor.shape)
    policy = f"random (seed {seed}, the counts of {mask.metadata.get('policy', '?')})"
    return Mask(tensors, {**mask.metadata, "policy": policy})


_SAME_WIDTH_INTEGER = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def bits_differ(old: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    """Element-wise: are the bit patterns different? (``==`` would call −0.0 and 0.0 equal, NaN unequal)."""
    integer = _SAME_WIDTH_INTEGER[old.element_size()]
    return old.contiguous().view(integer) != new.contiguous().view(integer)


def _changes(before: dict[str, torch.Tensor], after: Normalized, mask: Mask) -> list[ParameterChange]:
    changes = []
    for name, parameter in after.net.named_parameters():
        trainable = mask.tensors[name].bool()
        differs = bits_differ(before[name], parameter.detach().cpu())
        changes.append(
            ParameterChange(
                name=name,
                elements=parameter.numel(),
                trainable=int(trainable.sum()),
                moved=int((differs & trainable).sum()),
                frozen_moved=int((differs & ~trainable).sum()),
            )
        )
    return changes


def check_judged_apart(config: RetrainConfig, mask: Mask) -> None:
    """No leakage (method §7): refuse to judge on the split the mask's scan saw, or on the one fitted."""
    scanned = mask.metadata.get("split")
    if scanned == config.eval_split:
        raise ConfigError(
            f"mask {str(config.mask)!r} was derived from a scan of the {scanned!r} split, the one --eval-split judges "
            "on: its choice has seen those samples; judge on another split, with a mask from "
            "`fragscan scan --split val`"
        )
    if config.train_split == config.eval_split:
        raise ConfigError(
            f"--train-split and --eval-split are both {config.eval_split!r}: that judges on what it fitted; "
            "judge on test"
        )


def _fine_tuning_set(config: RetrainConfig) -> Dataset:
    train_set = create_dataset(config.dataset, root=config.data_root, split=config.train_split)
    if config.train_samples is None or config.train_samples >= len(train_set):
        return train_set
    subset = Subset(train_set, drawn_indices(len(train_set), config.train_samples, config.seed))
    subset.holdout = getattr(train_set, "holdout", None)
    return subset


def check_mask_is_for_weights(config: RetrainConfig) -> None:
    """Refuse a mask derived from a scan of other weights, as `fragscan mask` refuses them: its
    classes describe another network, and retraining under it would look valid but mean nothing."""
    from safetensors import safe_open

    from ...base.files import file_sha256
    from ...base.plugins import load_plugins
    from ...models import model_spec

    try:
        with safe_open(str(config.mask), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except Exception:  # missing or unreadable: load_mask names the problem, with the model at hand
        return
    if metadata.get("model", config.model) != config.model:
        return  # another model's mask: retrain names that, the deeper cause of any weights mismatch
    recorded = metadata.get("weights_sha256")
    load_plugins()  # a plugin model's default weights are in its spec
    weights = config.weights or model_spec(config.model).default_weights
    if recorded and weights is not None and Path(weights).is_file() and file_sha256(weights) != recorded:
        raise InputError(
            f"mask {str(config.mask)!r} was derived from a scan of other weights (sha256 {recorded[:12]}…), "
            f"not {str(weights)!r}; pass the scanned weights with --weights, or derive a mask from a scan of these"
        )


def retrain(config: RetrainConfig) -> Retrained:
    """Fine-tune ``config.weights`` in the selective arm and the control arms, ``config.repeats`` times each."""
    started = time.perf_counter()
    check_mask_is_for_weights(config)
    profile = None if config.threat is None else profile_settings(config)
    if profile is None:
        check_attack(config.attack, config.eps, config.attack_space)
    else:
        threats.check(profile)
    device = resolve_device(config.device)
    train_set = _fine_tuning_set(config)
    original = model_for_data(config.model, config.dataset, train_set, weights=config.weights, stem=config.stem)
    mask = load_mask(config.mask, original.net)
    masked_model = mask.metadata.get("model")
    if masked_model and masked_model != config.model:  # the shapes can fit another model's by chance
        raise InputError(
            f"mask {str(config.mask)!r} was derived from a scan of {masked_model!r}, not {config.model!r}; "
            "derive one from a scan of this model (fragscan mask REPORT)"
        )
    check_judged_apart(config, mask)
    images, labels, _ = evaluation_tensors(
        create_dataset(config.dataset, root=config.data_root, split=config.eval_split), config.max_samples, config.seed
    )
    images, labels = images.to(device), labels.to(device)
    original.to(device)
    start_weights = {k: v.detach().cpu().clone() for k, v in original.net.state_dict().items()}
    batch = config.batch_size

    def attack_on(model: Normalized, eps: float) -> Attack:
        return build_attack(config.attack, model, eps, model.spec.num_classes, attack_space=config.attack_space)

    resolved = None
    if profile is not None:
        with analysis_mode(original):
            resolved = threats.resolve(profile, original, images, labels, batch)
            threats.check_runs(profile, original, resolved, images, labels)  # judged, and trained against
        eps = resolved.budgets[resolved.headline]
    elif config.eps == "auto":
        with analysis_mode(original):
            eps = calibrate_eps(
                lambda e: attack_on(original, e), original, images, labels, batch, config.seed, eps_target=EPS_TARGET
            )
    else:
        eps = float(config.eps)

    def judged(model: Normalized, repeat: int, parameters: list[ParameterChange]) -> Run:
        worst = None
        if resolved is None:
            clean, adversarial = measure(model, images, labels, attack_on(model, eps), batch, config.seed)
        else:
            clean, worst = measure_profile(model, images, labels, profile, resolved, batch)
            adversarial = worst[:, resolved.headline]
        return Run(
            repeat=repeat,
            seed=config.seed + repeat,
            clean=clean.double().mean().item(),
            adversarial=adversarial.double().mean().item(),
            worst=None if worst is None else worst.double().mean(0).tolist(),
            correct=PackedCorrectness(clean=pack_bits(clean), adversarial=pack_bits(adversarial)),
            parameters=parameters,
        )

    def fine_tune(arm_mask: Mask | None, seed: int) -> Normalized:
        model = copy.deepcopy(original)
        attack = None
        if config.adversarial and resolved is None:
            attack = attack_on(model, eps)
        elif config.adversarial:  # a profile: its headline worst case, with the attacks the arms are judged by
            attack = threats.HeadlineWorstCase.of(profile, model, resolved)
        per_name = None if arm_mask is None else {f"net.{k}": v for k, v in arm_mask.tensors.items()}
        # The wrapper's own parameters (none for built-ins) are not in the mask: they stay as they are.
        if per_name is not None:
            for name, parameter in model.named_parameters():
                per_name.setdefault(name, torch.zeros(parameter.shape, dtype=torch.uint8))
        settings = TrainSettings(
            epochs=config.epochs, lr=config.lr, batch_size=batch, weight_decay=config.weight_decay, seed=seed
        )
        return train(model, train_set, settings, device=device, mask=per_name, attack=attack)

    runs: dict[str, list[Run]] = {arm: [] for arm in ARMS if arm == "selective" or arm in config.controls}
    first: dict[str, dict[str, torch.Tensor]] = {}
    for repeat in range(config.repeats):
        seed = config.seed + repeat
        # Every arm of a repeat: the same data order (seed), budget and attack; only the mask differs.
        for arm in runs:
            arm_mask = mask if arm == "selective" else random_mask_like(mask, seed) if arm == "random" else None
            model = fine_tune(arm_mask, seed)
            changes = [] if arm_mask is None else _changes(start_weights, model, arm_mask)
            runs[arm].append(judged(model, repeat, changes))
            if repeat == 0:
                first[arm] = {k: v.detach().cpu().contiguous() for k, v in model.net.state_dict().items()}

    samples = len(labels)
    share = mask.trainable_share()  # the random masks' too: the same count in every parameter
    arms = {
        arm: summarise(arm_runs, 1.0 if arm == "unmasked" else share, samples, config.bootstrap, config.seed)
        for arm, arm_runs in runs.items()
    }
    chooses_elements = any(0 < int(t.sum()) < t.numel() for t in mask.tensors.values())
    comparison = {
        f"selective_minus_{control}": compare(arms["selective"], arms[control], samples, config.bootstrap, config.seed)
        for control in ("random", "unmasked")
        if control in arms
    }
    before = summarise([judged(original, 0, [])], 0.0, samples, config.bootstrap, config.seed)
    warnings: list[str] = []
    if mask.metadata.get("split") is None:
        warnings.append("the mask does not say which split its scan ran on: leakage cannot be ruled out")
    if arms["selective"].trainable_share == 0:
        warnings.append(
            "the mask freezes every element, so nothing was retrained; derive one that leaves some trainable "
            "(fragscan mask REPORT --others train, or another --policy)"
        )
    if config.eps == "auto" and resolved is None:  # the starting network at the budget found, as a scan judges it
        clean, adversarial = before.clean.estimate, before.adversarial.estimate
        warnings += filter(None, [calibration_missed(clean, adversarial, EPS_TARGET, config.attack, eps)])
    if resolved is not None and "eps" in mask.metadata and float(mask.metadata["eps"]) != eps:
        warnings.append(
            f"the mask's classes were stated at ε={float(mask.metadata['eps']):g}, the arms are judged at ε={eps:g} "
            "(--headline-eps picks the profile's budget)"
        )
    result = RetrainResult(
        fragscan_version=__version__,
        settings=config,
        eps_used=eps,
        threat=None if resolved is None else RetrainThreat(
            spec=resolved.spec, budgets=list(resolved.budgets), headline=eps
        ),
        device_used=str(device),
        versions=library_versions(),
        mask_metadata=mask.metadata,
        mask_split=mask.metadata.get("split"),
        holdout=getattr(train_set, "holdout", None),
        samples=samples,
        fine_tuning_samples=len(train_set),
        before=before,
        arms=arms,
        comparison=comparison,
        mask_chooses_elements=chooses_elements,
        verdict=verdict(comparison, chooses_elements),
        frozen_bit_identical=all(
            change.frozen_moved == 0 for arm in arms.values() for run in arm.runs for change in run.parameters
        ),
        warnings=warnings,
        duration_s=round(time.perf_counter() - started, 3),
    )
    return Retrained(result, first)
