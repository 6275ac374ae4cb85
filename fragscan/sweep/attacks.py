"""Adversarial data from torchattacks, crafted in [0, 1] pixel space against the Normalized model.

``attack_space='normalized'`` is the source's attack instead: FGSM steps ``eps`` on the normalised
input, unclipped (:class:`NormalizedFGSM`); it still takes and returns pixels.

Two ways to get adversarial accuracy for a (filtered) network, one small class each:
``Regenerate`` attacks the network it is asked about; ``Fixed`` reuses examples crafted once
against the unfiltered network (the transfer setting).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Protocol

import torch
import torchattacks
from torch import nn
from torchattacks.attack import Attack

from ..base.errors import ConfigError
from ..base.registry import Registry
from ..config import EPS_TARGET, AttackPart
from ..models import Normalized

ATTACKS: Registry[type[Attack]] = Registry("attack")

# Wrappers that combine other attacks, and attacks that need extra models or data, are not offered.
_NOT_STANDALONE = {"MultiAttack", "LGV", "AutoAttack", "VANILA"}

for _name in torchattacks.__all__:
    _cls = getattr(torchattacks, _name)
    if _name not in _NOT_STANDALONE and isinstance(_cls, type) and issubclass(_cls, Attack):
        ATTACKS.register(_name, _cls, source="torchattacks")


class _CallerModes(nn.Module):
    """``model`` with its train/eval switch disabled, for an attack to run in the modes its caller set.

    torchattacks cannot express the source's mode (batch norm in train mode, all else in eval):
    ``set_model_training_mode(model_training=True)`` puts the whole model in train mode and then
    only modules whose class name contains "BatchNorm" or "Dropout" back, so functional dropout
    and DropPath stay on, and after the attack it leaves the model in train mode.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def train(self, mode: bool = True) -> _CallerModes:
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)


class NormalizedFGSM(Attack):
    """The source's FGSM: z + eps * sign(grad_z) on the normalised input z = (x - mean) / std, unclipped.

    It takes and returns pixels: a step of ``eps * std`` per channel along sign(grad_x), which is
    sign(grad_z) since std > 0. torchattacks.FGSM clamps to [0, 1] inside ``forward``; this is
    that forward without the clamp.
    """

    def __init__(self, model: nn.Module, std: torch.Tensor, eps: float):
        super().__init__("NormalizedFGSM", model)
        self.eps = eps
        self.std = std.detach().clone()

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        images = images.clone().detach().to(self.device).requires_grad_(True)
        labels = labels.clone().detach().to(self.device)
        cost = nn.CrossEntropyLoss()(self.get_logits(images), labels)
        grad = torch.autograd.grad(cost, images)[0]
        return (images + self.eps * self.std.to(images.device) * grad.sign()).detach()


def check_attack_space(name: str, attack_space: str) -> None:
    if attack_space == "normalized" and name != "FGSM":
        raise ConfigError(
            f"--attack-space normalized is the source's FGSM on normalised inputs; use --attack FGSM, not {name}"
        )


def check_attack(name: str, eps: float | str, attack_space: str) -> None:
    """Fail fast, before any data is read, on attack settings that cannot work together."""
    ATTACKS.entry(name)
    check_attack_space(name, attack_space)
    if eps == "auto" and not uses_eps(name):
        raise ConfigError(f"attack {name} has no eps; --eps auto cannot calibrate it")


def build_attack(
    name: str, model: nn.Module, eps: float, num_classes: int, norm_mode: str = "eval", attack_space: str = "pixel"
) -> Attack:
    """An attack on ``model`` with budget ``eps``; class-count options are set from the model, and
    a step size ``alpha`` keeps torchattacks' default ratio to ``eps`` (equal to its default at
    the default eps).

    ``norm_mode='eval'``: torchattacks' default, the attack runs in eval mode and switches a model
    in training back afterwards. ``norm_mode='train'``: the attack runs in, and leaves, exactly the
    modes its caller set; call it inside ``engine.analysis_mode(model, 'train')``.
    ``attack_space='normalized'``: :class:`NormalizedFGSM` (``name`` must be FGSM), ``eps`` in
    normalised units; ``model`` must be a Normalized wrapper, whose ``std`` sets the step.
    """
    attacked = _CallerModes(model) if norm_mode == "train" else model
    check_attack_space(name, attack_space)
    if attack_space == "normalized":
        if not isinstance(model, Normalized):
            raise ConfigError("--attack-space normalized needs a fragscan Normalized model: its std sets the step")
        return NormalizedFGSM(attacked, model.std, eps)
    cls = ATTACKS.get(name)
    accepted = inspect.signature(cls.__init__).parameters
    options = {}
    if "eps" in accepted:
        options["eps"] = eps
        default_alpha, default_eps = (accepted[p].default if p in accepted else None for p in ("alpha", "eps"))
        if all(isinstance(d, (int, float)) and d > 0 for d in (default_alpha, default_eps)):
            # torchattacks' step sizes are absolute (PGD: 2/255 for eps 8/255, 10 steps), so a larger
            # eps would never be reached: keep the step's default share of eps instead.
            options["alpha"] = eps * default_alpha / default_eps
    for count_option in ("n_classes", "num_classes"):
        if count_option in accepted:
            options[count_option] = num_classes
    try:
        return cls(attacked, **options)
    except TypeError as error:
        raise ConfigError(f"attack {name} cannot be built with {sorted(options)}: {error}") from None


def hyperparameters(attack: Attack) -> dict[str, bool | int | float | str]:
    """The attack's hyper-parameters as built (PGD: eps, alpha, steps, random_start): torchattacks
    keeps each constructor argument as an attribute of that name. Tensors (a per-channel std) and
    the model are no hyper-parameters a reader compares, so they are left out."""
    names = [name for name in inspect.signature(type(attack).__init__).parameters if name not in ("self", "model")]
    values = {name: getattr(attack, name, None) for name in names}
    return {name: value for name, value in values.items() if isinstance(value, (bool, int, float, str))}


def uses_eps(name: str) -> bool:
    return "eps" in inspect.signature(ATTACKS.get(name).__init__).parameters


def budget(name: str, eps: float) -> str:
    """``ε=0.1`` for display, or nothing for an attack without an ε (CW): a number it ignored would mislead."""
    return f"ε={eps:.4g}" if name not in ATTACKS or uses_eps(name) else "(no ε)"


def eps_meaning(name: str) -> str:
    """What ``--eps`` bounds for this attack (torchattacks names its L2 attacks ``...L2``)."""
    if not uses_eps(name):
        return "nothing (no eps)"
    return "L2 norm of the change" if name.endswith("L2") else "each pixel's change"


def predictions(model: nn.Module, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    with torch.inference_mode():
        return torch.cat([model(images[i : i + batch_size]).argmax(1) for i in range(0, len(images), batch_size)])


def craft(attack: Attack, images: torch.Tensor, labels: torch.Tensor, batch_size: int, seed: int) -> torch.Tensor:
    """Adversarial images, batch by batch; batch k's randomness is seeded by ``seed + k``.

    Seeding per batch (not per call) makes identical networks get identical examples, whatever
    order the sweep visits them in.
    """
    crafted = []
    for k, start in enumerate(range(0, len(images), batch_size)):
        batch = slice(start, start + batch_size)
        crafted.append(craft_batch(attack, images[batch], labels[batch], seed + k))
    return torch.cat(crafted)


def craft_batch(attack: Attack, images: torch.Tensor, labels: torch.Tensor, seed: int) -> torch.Tensor:
    """One batch of :func:`craft`, its randomness seeded by ``seed``."""
    torch.manual_seed(seed)
    return run_attack(attack, images, labels)


def run_attack(attack: Attack, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``attack`` on one batch, its randomness drawn from the global generator as it stands; an attack that
    cannot run on these inputs is a one-line :class:`ConfigError`."""
    try:
        return attack(images, labels)
    except torch.OutOfMemoryError:
        raise
    except RuntimeError as error:  # e.g. TIFGSM's kernels are built for 3 channels only
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ConfigError(
            f"attack {type(attack).__name__} cannot run on inputs of shape {tuple(images.shape[1:])}: {reason[:200]}; "
            "choose another --attack (see `fragscan attacks`)"
        ) from error


class Adversary(Protocol):
    """How adversarial correctness of a (filtered) network is obtained (``--attack-mode`` chooses which):
    what the engine asks, so that it never needs to know which adversary it has."""

    crafted_once: bool  # the examples are the same for every network: the engine may reuse their prefix activations

    def correct(self, model: nn.Module) -> torch.Tensor:
        """Adversarial correctness of ``model`` as it is now, one bool per sample ([samples, budgets] for a
        threat profile)."""

    def examples(self, batch: slice, k: int, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Batch ``k``'s adversarial examples (the samples at ``batch``: ``images``, ``labels``) for the
        network as it is now."""

    def batch_correct(self, batch: slice, k: int, images, labels, predict: Callable) -> torch.Tensor:
        """Batch ``k``'s adversarial correctness under the network ``predict`` runs (images -> predicted
        labels): [samples], or [samples, budgets] for a threat profile (:mod:`fragscan.sweep.threats`)."""

    def fusable_fgsm(self) -> tuple[float | None, str | None]:
        """``(eps, None)`` when the examples are a plain torchattacks.FGSM step crafted per network, so
        the clean forward may also give the attack's gradient; ``(None, why not)`` otherwise."""

    def subset(self, columns: torch.Tensor) -> Adversary:
        """The same adversary on the samples at ``columns`` only (an adaptive scan's new samples)."""


class Regenerate:
    """Adversarial correctness of the network as it is now, attacked afresh."""

    crafted_once = False

    def __init__(self, attack: Attack, images, labels, batch_size: int, seed: int):
        self.attack, self.images, self.labels = attack, images, labels
        self.batch_size, self.seed = batch_size, seed

    def correct(self, model: nn.Module) -> torch.Tensor:
        adversarial = craft(self.attack, self.images, self.labels, self.batch_size, self.seed)
        return predictions(model, adversarial, self.batch_size) == self.labels

    def examples(self, batch: slice, k: int, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return craft_batch(self.attack, images, labels, self.seed + k)

    def batch_correct(self, batch: slice, k: int, images, labels, predict: Callable) -> torch.Tensor:
        return predict(self.examples(batch, k, images, labels)) == labels

    def fusable_fgsm(self) -> tuple[float | None, str | None]:
        attack = self.attack
        if type(attack) is not torchattacks.FGSM:
            return None, f"{type(attack).__name__} is not torchattacks.FGSM: the attack runs on its own"
        if attack.targeted or attack._normalization_applied is not None or attack._model_training:
            return None, "FGSM in targeted, normalised or training mode runs as torchattacks defines it"
        return attack.eps, None

    def subset(self, columns: torch.Tensor) -> Regenerate:
        return Regenerate(self.attack, self.images[columns], self.labels[columns], self.batch_size, self.seed)


class Fixed:
    """Adversarial correctness on examples crafted once, against the unfiltered network, for every network."""

    crafted_once = True

    def __init__(self, adversarial: torch.Tensor, labels: torch.Tensor, batch_size: int):
        self.adversarial, self.labels, self.batch_size = adversarial, labels, batch_size

    @classmethod
    def crafted(cls, attack: Attack, images, labels, batch_size: int, seed: int) -> Fixed:
        """Examples crafted by ``attack`` against the network it holds now (:func:`craft`)."""
        return cls(craft(attack, images, labels, batch_size, seed), labels, batch_size)

    def correct(self, model: nn.Module) -> torch.Tensor:
        return predictions(model, self.adversarial, self.batch_size) == self.labels

    def examples(self, batch: slice, k: int, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.adversarial[batch]

    def batch_correct(self, batch: slice, k: int, images, labels, predict: Callable) -> torch.Tensor:
        return predict(self.examples(batch, k, images, labels)) == labels

    def fusable_fgsm(self) -> tuple[float | None, str | None]:
        return None, "fixed mode crafts once; nothing to share"

    def subset(self, columns: torch.Tensor) -> Fixed:
        """The examples already crafted for the samples at ``columns``: nothing is crafted again."""
        return Fixed(self.adversarial[columns], self.labels[columns], self.batch_size)


# Per --attack-mode, each builds its adversary from (attack, images, labels, batch_size, seed).
ADVERSARIES: dict[str, Callable[..., Adversary]] = {"regenerate": Regenerate, "fixed": Fixed.crafted}


def scan_attack(attack_part: AttackPart, model: Normalized, eps: float, name: str | None = None) -> Attack:
    """The attack ``attack_part`` names (or ``name``, one of a threat profile's), on ``model`` with budget ``eps``."""
    name = name or attack_part.attack
    return build_attack(name, model, eps, model.spec.num_classes, attack_part.norm_mode, attack_part.attack_space)


def build_adversary(
    attack_part: AttackPart, model: Normalized, eps: float, images, labels, batch_size: int,
    crafted: torch.Tensor | None = None,
) -> Adversary:
    """The adversary ``attack_part`` names (its attack, its attack mode) on ``model`` and the samples
    ``images``, ``labels``: the scan's, and a Ray worker's. ``crafted``: the fixed mode's examples, crafted
    already (a worker receives the scan's)."""
    if crafted is not None:
        return Fixed(crafted, labels, batch_size)
    attack = scan_attack(attack_part, model, eps)
    return ADVERSARIES[attack_part.attack_mode](attack, images, labels, batch_size, attack_part.seed)


def calibration_missed(clean: float, adversarial: float, eps_target: float, attack: str, eps: float) -> str | None:
    """Why an ``--eps auto`` result ``eps`` is not what was asked for, or None. Bisection ends at
    ε = 1 when no smaller ε brought adversarial accuracy down to ``eps_target`` x clean: say so, as the
    adversarial scores of such a scan compare nearly unattacked networks. Below 1 the bisection met
    the target (in fp32); a sweep in bf16 measures a hair off it (0.494 against 0.4925), no miss."""
    if eps < 1 or adversarial <= eps_target * clean:
        return None
    return (
        f"--eps auto did not reach its target: adversarial accuracy {adversarial:.3f} > {eps_target:g} x clean "
        f"{clean:.3f} even at ε = 1; {attack} cannot attack this model much, so adversarial scores say little "
        "(try another --attack, or a fixed --eps)"
    )


def calibrate_eps(
    make_attack: Callable[[float], Attack],
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    seed: int,
    eps_target: float = EPS_TARGET,
    steps: int = 12,
) -> float:
    """Bisect eps in [0, 1] so that adversarial accuracy is about ``eps_target`` x clean accuracy.

    Assumes accuracy falls as eps grows (true on average for gradient attacks); returns the
    upper end of the bracket after ``steps`` halvings (a multiple of 2**-steps).
    """
    clean = (predictions(model, images, batch_size) == labels).float().mean().item()
    goal = eps_target * clean
    low, high = 0.0, 1.0
    for _ in range(steps):
        middle = (low + high) / 2
        adversarial = craft(make_attack(middle), images, labels, batch_size, seed)
        accuracy = (predictions(model, adversarial, batch_size) == labels).float().mean().item()
        if accuracy > goal:
            low = middle
        else:
            high = middle
    return high
