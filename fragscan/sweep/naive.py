"""The obvious sweep, the definition the engine must reproduce bit for bit.

For every group, filter and threshold: copy the model, zero the filter's band in the copy, run the
whole evaluation set through it, and (``regenerate``) attack the copy with torchattacks. Nothing is
shared or skipped. Slow by design; used by the tests and ``benchmarks/sweep.py`` as the oracle.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn
from torchattacks.attack import Attack

from .attacks import craft, predictions
from .filters import create_filter
from .groups import Group

# Per group and filter: clean and adversarial correctness, bool [thresholds, samples].
NaiveCurves = dict[str, dict[str, tuple[torch.Tensor, torch.Tensor]]]


def naive_sweep(
    model: nn.Module,
    groups: list[Group],
    filter_ids: tuple[str, ...],
    n_thresholds: int,
    images: torch.Tensor,
    labels: torch.Tensor,
    make_attack: Callable[[nn.Module], Attack],
    attack_mode: str,
    batch_size: int,
    seed: int,
) -> NaiveCurves:
    """Local-scope curves computed the obvious way (call inside ``engine.analysis_mode``)."""
    fixed = craft(make_attack(model), images, labels, batch_size, seed) if attack_mode == "fixed" else None
    names = {id(p): name for name, p in model.named_parameters()}
    curves: NaiveCurves = {}
    for group in groups:
        weight = group.parameter.detach()
        curves[group.name] = {}
        for filter_id in filter_ids:
            synaptic_filter = create_filter(filter_id, float(weight.min()), float(weight.max()), n_thresholds)
            clean, adversarial = [], []
            for alpha in synaptic_filter.thresholds().tolist():
                variant = copy.deepcopy(model)
                parameter = variant.get_parameter(names[id(group.parameter)])
                with torch.no_grad():
                    parameter.masked_fill_(synaptic_filter.removed(weight, alpha), 0)
                attacked = fixed if fixed is not None else craft(make_attack(variant), images, labels, batch_size, seed)
                clean.append(predictions(variant, images, batch_size) == labels)
                adversarial.append(predictions(variant, attacked, batch_size) == labels)
            curves[group.name][filter_id] = (torch.stack(clean).cpu(), torch.stack(adversarial).cpu())
    return curves
