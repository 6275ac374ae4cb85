"""Threat profiles (method §6b): several attacks at several budgets, judged by the per-sample worst case.

A profile is written ``"FGSM@0.02,0.05,0.1;PGD@0.05"``: attacks (torchattacks names, as ``--attack``
takes them), each with its budgets (``auto`` as ``--eps auto``). At each budget ε a sample is
adversarially correct only if every attack listed at ε leaves it correct, the robust accuracy
AutoAttack and RobustBench report. As torchattacks' ``MultiAttack`` does, a later attack runs only
on the samples the earlier ones left correct, so a profile costs far less than its attacks apart.

Here: the spec's parsing and checks, its resolution into sorted budgets (``auto`` calibrated per
attack), and :class:`WorstCase`, the adversary whose correctness carries a trailing budget
dimension ([samples, budgets]); the engine passes it through untouched, so a curve of a profile
is [thresholds, samples, budgets]. Scoring per budget lives in :mod:`fragscan.scoring.surface`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

import torch
from torch import nn
from torchattacks.attack import Attack

from ..base.errors import ConfigError
from ..base.threat_spec import parse
from ..config import AttackPart
from .attacks import (
    ADVERSARIES,
    ATTACKS,
    Adversary,
    Fixed,
    build_adversary,
    calibrate_eps,
    check_attack_space,
    run_attack,
    scan_attack,
    uses_eps,
)


def check(attack_part: AttackPart) -> None:
    """Fail fast, before any data is read, on a profile naming an attack no registry knows, an attack
    without a budget (CW, DeepFool: their ε would be ignored), or one the attack space cannot take."""
    for entry in parse(attack_part.threat):
        ATTACKS.entry(entry.attack)
        if not uses_eps(entry.attack):
            raise ConfigError(
                f"--threat: attack {entry.attack} has no ε, so it cannot take budget {entry.eps}; "
                f"scan it alone with --attack {entry.attack}"
            )
        check_attack_space(entry.attack, attack_part.attack_space)


@dataclass(frozen=True)
class Resolved:
    """A profile with its budgets settled: sorted, each with the attacks listed at it (spec order)."""

    spec: str
    budgets: tuple[float, ...]
    attacks: tuple[tuple[str, ...], ...]  # per budget
    headline: int  # index into budgets
    calibrated: tuple[tuple[str, float], ...] = ()  # the (attack, budget) entries that 'auto' settled

    @property
    def single(self) -> bool:
        """One attack at one budget: the plain scan (``--attack``/``--eps``) and its numbers."""
        return len(self.budgets) == 1 and len(self.attacks[0]) == 1

    def entries(self) -> list[tuple[str, float]]:
        return [(name, eps) for eps, names in zip(self.budgets, self.attacks) for name in names]


def resolve(
    attack_part: AttackPart, model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int
) -> Resolved:
    """The profile's budgets, ``auto`` calibrated per attack (bisected as ``--eps auto``), and the
    headline budget (``--headline-eps``, default the largest)."""
    at: dict[float, list[str]] = {}
    calibrated = []
    for entry in parse(attack_part.threat):
        eps = entry.eps
        if eps == "auto":
            make = partial(scan_attack, attack_part, model, name=entry.attack)
            eps = calibrate_eps(make, model, images, labels, batch_size, attack_part.seed, attack_part.eps_target)
            calibrated.append((entry.attack, float(eps)))
        names = at.setdefault(float(eps), [])
        if entry.attack not in names:  # 'FGSM@auto;FGSM@0.5' may settle on one budget
            names.append(entry.attack)
    budgets = tuple(sorted(at))
    headline = len(budgets) - 1
    if attack_part.headline_eps is not None:
        if attack_part.headline_eps not in budgets:
            raise ConfigError(
                f"--headline-eps {attack_part.headline_eps:g} is not among the profile's budgets "
                f"({', '.join(f'{b:g}' for b in budgets)})"
            )
        headline = budgets.index(attack_part.headline_eps)
    return Resolved(attack_part.threat, budgets, tuple(tuple(at[b]) for b in budgets), headline, tuple(calibrated))


def check_runs(attack_part: AttackPart, model: nn.Module, resolved: Resolved, images, labels) -> None:
    """Fail before any training on an attack of the profile that cannot run on these inputs (TIFGSM on one
    channel): each attack at each of its budgets tried on two samples, the random generators left as they were."""
    with torch.random.fork_rng(devices=[images.device] if images.device.type == "cuda" else []):
        for name, eps in resolved.entries():
            run_attack(scan_attack(attack_part, model, eps, name), images[:2], labels[:2])


# A fixed-mode profile's examples, crafted once: per budget, per attack (a one-attack profile's: one tensor).
Crafted = torch.Tensor | list[list[torch.Tensor]]


def profile_adversary(
    attack_part: AttackPart, model: nn.Module, resolved: Resolved, images, labels, batch_size: int,
    crafted: Crafted | None = None,
) -> Adversary:
    """The adversary of a profile: a one-attack, one-budget profile is the plain scan's own adversary
    (its numbers exactly); otherwise :class:`WorstCase` over the profile's single-attack adversaries.
    ``crafted``: the fixed mode's examples, crafted already (:func:`crafted_once`; a Ray worker
    receives the scan's)."""
    if resolved.single:
        plain = replace(attack_part, attack=resolved.attacks[0][0])
        return build_adversary(plain, model, resolved.budgets[0], images, labels, batch_size, crafted)
    if crafted is not None:
        return WorstCase([[Fixed(examples, labels, batch_size) for examples in each] for each in crafted])
    build, seed = ADVERSARIES[attack_part.attack_mode], attack_part.seed
    adversaries = [
        [build(scan_attack(attack_part, model, eps, name), images, labels, batch_size, seed) for name in names]
        for eps, names in zip(resolved.budgets, resolved.attacks)
    ]
    return WorstCase(adversaries)


def crafted_once(adversary: Adversary, images, labels) -> Crafted | None:
    """The examples ``adversary`` crafted once, on the CPU (what a Ray worker is sent); None when each
    network is attacked afresh."""
    if isinstance(adversary, WorstCase):
        budgets = adversary.adversaries
        if not all(a.crafted_once for per_budget in budgets for a in per_budget):
            return None
        return [[a.examples(slice(None), 0, images, labels).cpu() for a in per_budget] for per_budget in budgets]
    return adversary.examples(slice(None), 0, images, labels).cpu() if adversary.crafted_once else None


def with_budgets(correct: torch.Tensor, resolved: Resolved) -> torch.Tensor:
    """Adversarial correctness with its budget dimension last: a one-attack profile's plain adversary gives none."""
    return correct[..., None] if resolved.single else correct


class WorstCase:
    """Per budget, a sample is adversarially correct only if every attack listed at the budget leaves
    it so; correctness is [samples, budgets]. Each attack is a plain adversary (``Regenerate`` or
    ``Fixed``) in spec order; on a batch, each runs only on the samples the earlier ones left
    correct (early exit). A randomised attack (PGD's random start) draws its noise for the samples
    it runs on, so its examples equal those of a whole-batch run in distribution, not bit for bit."""

    crafted_once = False  # one set of examples per attack and budget: nothing for the engine to reuse

    def __init__(self, adversaries: list[list[Adversary]]):
        self.adversaries = adversaries  # per budget, per attack

    def each(self, model: nn.Module) -> list[list[torch.Tensor]]:
        """Every attack's own correctness on every sample, per budget in spec order (no early exit)."""
        return [[a.correct(model) for a in per_budget] for per_budget in self.adversaries]

    def correct(self, model: nn.Module) -> torch.Tensor:
        """The definition, for the unfiltered network: each attack on every sample, the worst case kept."""
        return torch.stack([torch.stack(each).all(0) for each in self.each(model)], -1)

    def batch_correct(self, batch: slice, k: int, images, labels, predict: Callable) -> torch.Tensor:
        columns = []
        for per_budget in self.adversaries:
            correct = torch.ones(len(labels), dtype=torch.bool, device=labels.device)
            for adversary in per_budget:
                alive = correct.nonzero().squeeze(1)
                if not len(alive):
                    break
                if adversary.crafted_once:  # examples made for the whole batch: take the survivors'
                    crafted = adversary.examples(batch, k, images, labels)[alive]
                else:
                    crafted = adversary.examples(batch, k, images[alive], labels[alive])
                correct[alive] = predict(crafted) == labels[alive]
            columns.append(correct)
        return torch.stack(columns, -1)

    def fusable_fgsm(self) -> tuple[float | None, str | None]:
        return None, "a threat profile runs each of its attacks on its own (worst case with early exit)"

    def subset(self, columns: torch.Tensor) -> WorstCase:
        return WorstCase([[a.subset(columns) for a in per_budget] for per_budget in self.adversaries])


class HeadlineWorstCase:
    """Adversarial fine-tuning against a profile (``retrain --threat --adversarial``), a ``train(attack=...)``:
    each batch replaced by its per-sample worst case at the headline budget. The budget's attacks run in spec
    order against the network as it is now, each only on the samples every earlier one left correctly
    classified (the early exit :class:`WorstCase` judges with); a sample takes the first example that fools
    the network, and a sample no attack fools the last attack's example. Randomness comes from the global
    generator as training leaves it (as a lone ``--adversarial`` attack's does); whether an example fools is
    decided in eval mode, after which every module's mode is as it was."""

    def __init__(self, attacks: list[Attack], model: nn.Module):
        self.attacks, self.model = attacks, model

    @classmethod
    def of(cls, attack_part: AttackPart, model: nn.Module, resolved: Resolved) -> HeadlineWorstCase:
        """The headline budget's attacks on ``model``, built as the scan builds them."""
        eps = resolved.budgets[resolved.headline]
        return cls([scan_attack(attack_part, model, eps, name) for name in resolved.attacks[resolved.headline]], model)

    def _fooled(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        was = [(module, module.training) for module in self.model.modules()]
        self.model.eval()
        try:
            with torch.no_grad():
                return self.model(images).argmax(1) != labels
        finally:
            for module, training in was:
                module.training = training

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        adversarial = images.clone()
        alive = torch.arange(len(labels), device=labels.device)
        for i, attack in enumerate(self.attacks):
            crafted = run_attack(attack, images[alive], labels[alive]).detach()
            adversarial[alive] = crafted.to(adversarial.dtype)
            if i == len(self.attacks) - 1:  # the last attack's example stays, fooled or not
                break
            alive = alive[~self._fooled(crafted, labels[alive])]
            if not len(alive):
                break
        return adversarial
