"""The sweep: filter tensors in place, measure clean and adversarial correctness per sample.

The engine prints and writes nothing. It restores every tensor in ``finally``, evaluates each
distinct mask once (identical masks give identical networks), and reports progress through a
callback.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from .filters import SynapticFilter, create_filter
from .groups import Group

# Clean and adversarial correctness, one bool per evaluation sample.
Measurement = tuple[torch.Tensor, torch.Tensor]
Measure = Callable[[nn.Module], Measurement]


@dataclass(frozen=True)
class Curve:
    """One sweep of one filter over one target (a group, or all groups in global scope)."""

    thresholds: list[float]
    positions: list[float]
    removed: list[int]  # entries inside the filter's band
    changed: list[int]  # of those, entries that were non-zero, i.e. really altered
    numel: int
    clean: torch.Tensor  # bool [thresholds, samples]
    adversarial: torch.Tensor  # bool [thresholds, samples]


@dataclass(frozen=True)
class Progress:
    target: str
    filter: str
    done: int
    total: int


@contextmanager
def analysis_mode(model: nn.Module, norm_mode: str = "eval") -> Iterator[nn.Module]:
    """Eval mode with gradients only for inputs; ``norm_mode='train'`` uses batch statistics
    without letting them leak into the running buffers. Everything is restored on exit."""
    was_training = model.training
    requires_grad = {p: p.requires_grad for p in model.parameters()}
    norm_layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved_buffers = {m: ([b.clone() for b in m.buffers()], m.momentum) for m in norm_layers}
    try:
        model.eval()
        for parameter in requires_grad:
            parameter.requires_grad_(False)
        if norm_mode == "train":
            for layer in norm_layers:
                layer.train()
                layer.momentum = 0.0
        yield model
    finally:
        for parameter, flag in requires_grad.items():
            parameter.requires_grad_(flag)
        with torch.no_grad():
            for layer, (buffers, momentum) in saved_buffers.items():
                for live, saved in zip(layer.buffers(), buffers):
                    live.copy_(saved)
                layer.momentum = momentum
        model.train(was_training)


def _digest(masks: list[torch.Tensor]) -> bytes:
    hasher = hashlib.blake2b(digest_size=16)
    for mask in masks:
        hasher.update(mask.flatten().cpu().numpy().tobytes())
    return hasher.digest()


def sweep_filter(
    model: nn.Module,
    targets: list[nn.Parameter],
    synaptic_filter: SynapticFilter,
    measure: Measure,
    unfiltered: Measurement,
    cache: dict[bytes, Measurement],
    on_step: Callable[[], None] = lambda: None,
) -> Curve:
    """Sweep one filter over ``targets`` (filtered together), restoring them afterwards."""
    originals = [p.detach().clone() for p in targets]
    thresholds = synaptic_filter.thresholds()
    removed, changed, clean, adversarial = [], [], [], []
    try:
        for alpha in thresholds.tolist():
            masks = [synaptic_filter.removed(w, alpha) for w in originals]
            removed.append(sum(int(m.sum()) for m in masks))
            changed.append(sum(int((m & (w != 0)).sum()) for m, w in zip(masks, originals)))
            if changed[-1] == 0:
                result = unfiltered
            else:
                key = _digest(masks)
                if key not in cache:
                    with torch.no_grad():
                        for parameter, original, mask in zip(targets, originals, masks):
                            parameter.copy_(original.masked_fill(mask, 0))
                    cache[key] = measure(model)
                result = cache[key]
            clean.append(result[0])
            adversarial.append(result[1])
            on_step()
    finally:
        with torch.no_grad():
            for parameter, original in zip(targets, originals):
                parameter.copy_(original)
    return Curve(
        thresholds=thresholds.tolist(),
        positions=synaptic_filter.positions().tolist(),
        removed=removed,
        changed=changed,
        numel=sum(p.numel() for p in targets),
        clean=torch.stack(clean).cpu(),
        adversarial=torch.stack(adversarial).cpu(),
    )


def global_range(groups: list[Group], kind: str) -> tuple[float, float]:
    if kind == "unit":
        return -1.0, 1.0
    return min(float(g.parameter.detach().min()) for g in groups), max(float(g.parameter.detach().max()) for g in groups)


def sweep(
    model: nn.Module,
    groups: list[Group],
    filter_ids: tuple[str, ...],
    n_thresholds: int,
    measure: Measure,
    unfiltered: Measurement,
    *,
    scope: str = "local",
    range_kind: str = "pooled",
    progress: Callable[[Progress], None] | None = None,
) -> dict[str, dict[str, Curve]]:
    """Curves per target and filter. Local scope: one target per group, each over its own range;
    global scope: one target, ``"global"``, all groups filtered at once over a shared range."""
    if scope == "local":
        targets = {g.name: ([g.parameter], None) for g in groups}
    else:
        targets = {"global": ([g.parameter for g in groups], global_range(groups, range_kind))}
    total = len(targets) * len(filter_ids) * n_thresholds
    done = 0
    curves: dict[str, dict[str, Curve]] = {}
    for name, (parameters, shared_range) in targets.items():
        cache: dict[bytes, Measurement] = {}
        curves[name] = {}
        for filter_id in filter_ids:
            lo, hi = shared_range or (float(parameters[0].detach().min()), float(parameters[0].detach().max()))
            synaptic_filter = create_filter(filter_id, lo, hi, n_thresholds)

            def step(name=name, filter_id=filter_id):
                nonlocal done
                done += 1
                if progress is not None:
                    progress(Progress(name, filter_id, done, total))

            curves[name][filter_id] = sweep_filter(model, parameters, synaptic_filter, measure, unfiltered, cache, step)
    return curves
