"""The sweep: filter tensors in place, measure clean and adversarial correctness per sample.

The engine prints and writes nothing. It restores every tensor in ``finally``, evaluates each
distinct mask once (identical masks give identical networks), and reports progress through a
callback. Its numbers are, bit for bit, those of the obvious loop (``fragscan.reference``); it
gets there faster by:

- prefix reuse: per target (a group), the activations that do not depend on it are computed once
  per batch on a torch.fx trace, and only the dependent suffix runs for every filter x threshold,
  for clean data and for ``fixed`` adversarial data (``fragscan.prefix``);
- in ``regenerate`` mode with FGSM, one forward/backward gives both the clean predictions and the
  attack's gradient (torchattacks.FGSM's logits at x are the clean logits), with the backward
  going through a prefix graph kept once per batch;
- ``inference_mode`` for every forward that needs no gradient, evaluation data kept on the device.

Every shortcut is checked on the first batch against the definition before it is used; a model
that cannot be traced, or a check that fails, falls back to full forwards and says so in
:class:`EngineInfo`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from .attacks import AttackMode, predictions
from .filters import SynapticFilter, create_filter
from .groups import Group
from .prefix import Split, flop_costs, identity_split, split, trace

# Clean and adversarial correctness, one bool per evaluation sample.
Measurement = tuple[torch.Tensor, torch.Tensor]

# Reused activations (frontiers, and the prefix graphs FGSM backpropagates through) held at once.
CPU_MEMORY_BUDGET = 2 << 30
CUDA_MEMORY_SHARE = 0.25  # of the device memory free when the sweep starts
# A suffix this close to the whole model saves nothing and costs the split's overhead.
WHOLE_MODEL_SHARE = 0.95


@dataclass(frozen=True)
class Curve:
    """One sweep of one filter over one target (a group, or all groups in global scope)."""

    thresholds: list[float]
    positions: list[float]
    removed: list[int]  # entries inside the filter's band
    changed: list[int]  # of those, entries that were non-zero, i.e. really altered
    numel: int
    clean: torch.Tensor  # bool [thresholds, samples]
    adversarial: torch.Tensor  # bool [thresholds, samples]; a threat profile's: [thresholds, samples, budgets]


@dataclass(frozen=True)
class SweepEvent:
    """Progress of a sweep: ``done`` of ``total`` cells, the latest of ``filter`` on ``target``."""

    target: str
    filter: str
    done: int
    total: int


@dataclass
class EngineInfo:
    """How the sweep was computed (what was reused, what fell back and why)."""

    prefix_reuse: bool = False
    fallback: str | None = None  # why no target could reuse a prefix
    full_forward_targets: dict[str, str] = field(default_factory=dict)  # target -> why its split was not used
    fused_attack: bool = False  # clean forward shared with FGSM's gradient forward
    fused_attack_note: str | None = None
    memory_budget_bytes: int = 0
    suffix_share: dict[str, float] = field(default_factory=dict)  # target -> suffix MACs / full forward MACs
    variants: int = 0  # filtered networks evaluated (distinct masks that change something)
    cells: int = 0  # filter x threshold cells in the curves


@dataclass(frozen=True)
class SweepResult:
    curves: dict[str, dict[str, Curve]]
    unfiltered: Measurement
    info: EngineInfo


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


AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@contextmanager
def arithmetic(model: nn.Module, precision: str) -> Iterator[nn.Module]:
    """The arithmetic a sweep runs in: fp32 as the model is (exact), or bf16/fp16 autocast with the
    weights in channels-last layout (the fast kernels for reduced precision; restored on exit).

    The weight-cast cache stays off: the engine rewrites weights in place between variants.
    """
    if precision == "fp32":
        yield model
        return
    device = next(model.parameters()).device
    # Module.to changes only 4-d tensors to channels-last, and fails on 5-d ones (Conv3d).
    relayout = all(p.dim() != 5 for p in model.parameters())
    if relayout:
        model.to(memory_format=torch.channels_last)
    try:
        with torch.autocast(device.type, dtype=AUTOCAST_DTYPES[precision], cache_enabled=False):
            yield model
    finally:
        if relayout:
            model.to(memory_format=torch.contiguous_format)


def measure(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, adversary: AttackMode, batch_size: int
) -> Measurement:
    """Clean and adversarial correctness of ``model`` as it is (the unfiltered network's row)."""
    return predictions(model, images, batch_size) == labels, adversary.correct(model)


def _digest(masks: list[torch.Tensor]) -> bytes:
    hasher = hashlib.blake2b(digest_size=16)
    for mask in masks:
        hasher.update(mask.flatten().cpu().numpy().tobytes())
    return hasher.digest()


def global_range(groups: list[Group], kind: str) -> tuple[float, float]:
    if kind == "unit":
        return -1.0, 1.0
    low = min(float(g.parameter.detach().min()) for g in groups)
    return low, max(float(g.parameter.detach().max()) for g in groups)


def default_memory_budget(device: torch.device) -> int:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * CUDA_MEMORY_SHARE)
    return CPU_MEMORY_BUDGET


@dataclass(frozen=True)
class _Variant:
    """One distinct filtered network: a filter at a threshold, and the cells that share it."""

    synaptic_filter: SynapticFilter
    alpha: float
    cells: list[tuple[str, int]]


class _Evaluator:
    """Measures filtered variants of one target batch by batch, through a split of the model."""

    def __init__(
        self, model: nn.Module, images, labels, batch_size: int, adversary: AttackMode, fgsm_eps: float | None
    ):
        self.model, self.images, self.labels, self.adversary = model, images, labels, adversary
        self.fgsm_eps = fgsm_eps  # set: the clean forward also gives FGSM's gradient (fused)
        self._reference: tuple[torch.Tensor, torch.Tensor | None] | None = None
        self.batches = [slice(s, s + batch_size) for s in range(0, len(images), batch_size)]

    @property
    def fused(self) -> bool:
        return self.fgsm_eps is not None

    # -- per batch, once per target -------------------------------------------------------------
    def frontier(self, split: Split, k: int):
        batch = self.batches[k]
        x = self.images[batch]
        if self.fused:
            leaf = x.clone().detach().requires_grad_(True)
            with torch.enable_grad():
                return leaf, split.prefix(leaf)
        with torch.inference_mode():
            clean = split.prefix(x)
            adversarial = None
            if self.adversary.crafted_once:
                adversarial = split.prefix(self.adversary.examples(batch, k, x, self.labels[batch]))
        return clean, adversarial

    # -- per batch and variant ------------------------------------------------------------------
    def measure(self, split: Split, k: int, frontier) -> tuple[torch.Tensor, torch.Tensor]:
        labels = self.labels[self.batches[k]]
        if self.fused:
            logits, adversarial = self.fgsm(split, k, *frontier)
            return logits.argmax(1) == labels, self.predict(adversarial) == labels
        clean_frontier, adversarial_frontier = frontier
        with torch.inference_mode():
            clean = split.suffix(*clean_frontier).argmax(1) == labels
            if adversarial_frontier is not None:
                return clean, split.suffix(*adversarial_frontier).argmax(1) == labels
        return clean, self.adversary.batch_correct(
            self.batches[k], k, self.images[self.batches[k]], labels, self.predict
        )

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.model(images).argmax(1)

    def fgsm(self, split: Split, k: int, leaf: torch.Tensor, frontier: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        """Clean logits and torchattacks.FGSM's examples from one suffix forward and one backward."""
        labels = self.labels[self.batches[k]].clone()  # as torchattacks does: a normal tensor, even from inference mode
        inputs = [
            f.detach().requires_grad_(True) if isinstance(f, torch.Tensor) and f.requires_grad else f for f in frontier
        ]
        wanted = [i for i, f in enumerate(inputs) if isinstance(f, torch.Tensor) and f.requires_grad]
        with torch.enable_grad():
            logits = split.suffix(*inputs)
            cost = nn.CrossEntropyLoss()(logits, labels)
            grads = torch.autograd.grad(cost, [inputs[i] for i in wanted], allow_unused=True)
            if split.identity:
                grad = grads[0]
            else:
                pairs = [(frontier[i], g) for i, g in zip(wanted, grads) if g is not None]
                grad = torch.autograd.grad(
                    [f for f, _ in pairs], leaf, grad_outputs=[g for _, g in pairs], retain_graph=True
                )[0]
        with torch.no_grad():
            adversarial = torch.clamp(leaf + self.fgsm_eps * grad.sign(), min=0, max=1)
        return logits.detach(), adversarial

    # -- checks against the definition, on the first batch with the unfiltered weights -----------
    def reference_first_batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The definition's values on batch 0 (clean logits; FGSM's examples or the fixed examples'
        logits), computed once: every check runs with the unfiltered weights."""
        if self._reference is None:
            batch = self.batches[0]
            x, labels = self.images[batch], self.labels[batch]
            with torch.inference_mode():
                clean = self.model(x)
                adversarial = None
                if self.adversary.crafted_once:
                    adversarial = self.model(self.adversary.examples(batch, 0, x, labels))
            if self.fused:
                adversarial = self.adversary.examples(batch, 0, x, labels)
            self._reference = clean, adversarial
        return self._reference

    def first_frontier(self, split: Split) -> tuple[object, int]:
        """Batch 0's frontier, and the memory one batch's reused activations hold (frontier, and
        the prefix graph's saved tensors when fused)."""
        saved = 0

        def pack(tensor):
            nonlocal saved
            saved += tensor.numel() * tensor.element_size()
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            frontier = self.frontier(split, 0)
        if split.identity:
            return frontier, 0
        tensors = [t for part in frontier if part is not None for t in (part if isinstance(part, tuple) else [part])]
        return frontier, saved + sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor))

    def agrees(self, split: Split, frontier) -> bool:
        clean, adversarial = self.reference_first_batch()
        if self.fused:
            logits, crafted = self.fgsm(split, 0, *frontier)
            return torch.equal(logits, clean) and torch.equal(crafted, adversarial)
        clean_frontier, adversarial_frontier = frontier
        with torch.inference_mode():
            if not torch.equal(split.suffix(*clean_frontier), clean):
                return False
            return adversarial_frontier is None or torch.equal(split.suffix(*adversarial_frontier), adversarial)


def _plan(
    targets: list[nn.Parameter], originals: list[torch.Tensor], filters: dict[str, SynapticFilter]
) -> tuple[list[_Variant], dict[str, tuple[list[int], list[int], list[int | None]]]]:
    """Distinct variants, and per filter: removed and changed counts and each cell's variant index
    (``None``: nothing changed, the unfiltered network). Two cells share a variant when they zero
    the same non-zero entries: masks that differ only on entries already zero give one network."""
    variants: list[_Variant] = []
    index_of: dict[bytes, int] = {}
    cells = {}
    for filter_id, synaptic_filter in filters.items():
        removed, changed, which = [], [], []
        for i, alpha in enumerate(synaptic_filter.thresholds().tolist()):
            masks = [synaptic_filter.removed(w, alpha) for w in originals]
            altered = [m & (w != 0) for m, w in zip(masks, originals)]
            removed.append(sum(int(m.sum()) for m in masks))
            changed.append(sum(int(a.sum()) for a in altered))
            if changed[-1] == 0:
                which.append(None)
                continue
            key = _digest(altered)
            if key not in index_of:
                index_of[key] = len(variants)
                variants.append(_Variant(synaptic_filter, alpha, []))
            variants[index_of[key]].cells.append((filter_id, i))
            which.append(index_of[key])
        cells[filter_id] = (removed, changed, which)
    return variants, cells


def _apply(targets, originals, variant: _Variant) -> None:
    with torch.no_grad():
        for parameter, original in zip(targets, originals):
            parameter.copy_(original.masked_fill(variant.synaptic_filter.removed(original, variant.alpha), 0))


def _measure_chunk(targets, originals, variants, evaluator: _Evaluator, split: Split, chunk: range, first, on_variant):
    """Every variant on the batches of ``chunk``, their frontiers computed once; ``on_variant(j)``
    after each."""
    frontiers = {k: first if k == 0 and first is not None else evaluator.frontier(split, k) for k in chunk}
    measured = []
    for variant in variants:
        _apply(targets, originals, variant)
        rows = [evaluator.measure(split, k, frontiers[k]) for k in chunk]
        measured.append(([r[0] for r in rows], [r[1] for r in rows]))
        on_variant(len(measured) - 1)
    return measured


def _sweep_target(
    targets: list[nn.Parameter],
    filters: dict[str, SynapticFilter],
    evaluator: _Evaluator,
    split_for: Callable[[], tuple[Split, object, int]],
    unfiltered: Measurement,
    budget: int,
    on_cell: Callable[[str], None],
) -> tuple[dict[str, Curve], int]:
    """The target's curves, and how many distinct filtered networks were evaluated."""
    originals = [p.detach().clone() for p in targets]
    variants, cells = _plan(targets, originals, filters)
    for filter_id, (_, _, which) in cells.items():
        for _ in range(which.count(None)):
            on_cell(filter_id)
    results: list[tuple[list, list]] = [([], []) for _ in variants]
    try:
        if variants:
            split, first, per_batch = split_for()
            size = max(1, budget // max(1, per_batch))
            reported: set[int] = set()
            start, count = 0, len(evaluator.batches)

            def on_variant(j: int) -> None:
                # Cells are done once the last batch is measured; a retried chunk reports nothing twice.
                if start + size >= count and j not in reported:
                    reported.add(j)
                    for filter_id, _ in variants[j].cells:
                        on_cell(filter_id)

            while start < count:
                chunk = range(start, min(start + size, count))
                try:
                    measured = _measure_chunk(targets, originals, variants, evaluator, split, chunk, first, on_variant)
                except torch.OutOfMemoryError:
                    if size == 1:
                        raise
                    size //= 2  # back off: hold fewer batches' activations at once
                    first = None
                    if torch.cuda.is_available():
                        torch.cuda.empty_cache()
                    continue
                first = None
                for j, (clean, adversarial) in enumerate(measured):
                    results[j][0].extend(clean)
                    results[j][1].extend(adversarial)
                start = chunk.stop
    finally:
        with torch.no_grad():
            for parameter, original in zip(targets, originals):
                parameter.copy_(original)
    measured = [(torch.cat(clean), torch.cat(adversarial)) for clean, adversarial in results]
    curves = {}
    for filter_id, synaptic_filter in filters.items():
        removed, changed, which = cells[filter_id]
        rows = [unfiltered if j is None else measured[j] for j in which]
        curves[filter_id] = Curve(
            thresholds=synaptic_filter.thresholds().tolist(),
            positions=synaptic_filter.positions().tolist(),
            removed=removed,
            changed=changed,
            numel=sum(p.numel() for p in targets),
            clean=torch.stack([r[0] for r in rows]).cpu(),
            adversarial=torch.stack([r[1] for r in rows]).cpu(),
        )
    return curves, len(variants)


def sweep(
    model: nn.Module,
    groups: list[Group],
    filter_ids: tuple[str, ...],
    n_thresholds: int,
    images: torch.Tensor,
    labels: torch.Tensor,
    adversary: AttackMode,
    *,
    batch_size: int,
    scope: str = "local",
    range_kind: str = "pooled",
    reuse: bool = True,
    memory_budget: int | None = None,
    unfiltered: Measurement | None = None,
    progress: Callable[[SweepEvent], None] | None = None,
) -> SweepResult:
    """Curves per target and filter. Local scope: one target per group, each over its own range;
    global scope: one target, ``"global"``, all groups filtered at once over a shared range.

    Call inside :func:`analysis_mode` (and :func:`arithmetic` for reduced precision).
    ``reuse=False`` computes every variant with full forwards.
    ``memory_budget`` (bytes) bounds the reused activations held at once (default: 2 GiB on CPU,
    a quarter of the free memory on CUDA); beyond one batch, what does not fit is recomputed.
    ``unfiltered`` is the unfiltered network's measurement when the caller already has it (a scan
    sweeping group by group measures it once); otherwise it is measured here.
    """
    info = EngineInfo(memory_budget_bytes=memory_budget or default_memory_budget(images.device))
    if unfiltered is None:
        unfiltered = measure(model, images, labels, adversary, batch_size)

    fgsm_eps, info.fused_attack_note = adversary.fusable_fgsm()
    info.fused_attack = fgsm_eps is not None
    evaluator = _Evaluator(model, images, labels, batch_size, adversary, fgsm_eps)
    identity = identity_split(model)
    if info.fused_attack and not evaluator.agrees(identity, evaluator.first_frontier(identity)[0]):
        info.fused_attack = False
        info.fused_attack_note = "the shared forward did not reproduce torchattacks.FGSM bit for bit here"
        evaluator = _Evaluator(model, images, labels, batch_size, adversary, fgsm_eps=None)

    traced, info.fallback = trace(model) if reuse else (None, "prefix reuse switched off")
    if traced is not None and any(m.training for m in model.modules()):
        traced, info.fallback = None, "a module is in training mode (batch statistics): full forwards"
    costs = flop_costs(traced, images[:1]) if traced is not None else {}

    if scope == "local":
        targets = {g.name: ([g.parameter], None) for g in groups}
    else:
        targets = {"global": ([g.parameter for g in groups], global_range(groups, range_kind))}
    total = len(targets) * len(filter_ids) * n_thresholds
    done = 0
    curves: dict[str, dict[str, Curve]] = {}
    for name, (parameters, shared_range) in targets.items():
        filters = {}
        for filter_id in filter_ids:
            lo, hi = shared_range or (float(parameters[0].detach().min()), float(parameters[0].detach().max()))
            filters[filter_id] = create_filter(filter_id, lo, hi, n_thresholds)

        def split_for(name=name, parameters=parameters) -> tuple[Split, object, int]:
            """The target's split (checked), batch 0's frontier through it, and its bytes per batch."""
            if traced is not None:
                candidate = split(traced, parameters, lambda node: costs.get(node, 0.0))
                if candidate.suffix_share >= WHOLE_MODEL_SHARE:
                    info.full_forward_targets[name] = "nothing to reuse: the group's suffix is the whole model"
                elif candidate.unsafe:
                    info.full_forward_targets[name] = f"not split: {candidate.unsafe}"
                else:
                    frontier, per_batch = evaluator.first_frontier(candidate)
                    if evaluator.agrees(candidate, frontier):
                        info.prefix_reuse = True
                        info.suffix_share[name] = round(candidate.suffix_share, 4)
                        return candidate, frontier, per_batch
                    info.full_forward_targets[name] = "the split did not reproduce the full forward bit for bit"
            whole = identity_split(model)
            return (whole, *evaluator.first_frontier(whole))

        def on_cell(filter_id: str, name=name) -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(SweepEvent(name, filter_id, done, total))

        curves[name], variants = _sweep_target(
            parameters, filters, evaluator, split_for, unfiltered, info.memory_budget_bytes, on_cell
        )
        info.variants += variants
    info.cells = total
    return SweepResult(curves, unfiltered, info)
