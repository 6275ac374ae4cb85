"""The sweep: filter tensors in place, measure clean and adversarial correctness per sample.

The engine prints and writes nothing. It restores every tensor in ``finally``, measures each
distinct mask once (identical masks give identical networks), and reports progress through a
callback. Its numbers are, bit for bit, those of the obvious loop (``fragscan.sweep.naive``); it
gets there faster by:

- prefix reuse: per target (a group), the activations that do not depend on it are computed once
  per batch on a torch.fx trace, and only the dependent suffix runs for every filter x threshold,
  for clean data and for ``fixed`` adversarial data (``fragscan.sweep.prefix``);
- in ``regenerate`` mode with FGSM, one forward/backward gives both the clean predictions and the
  attack's gradient (torchattacks.FGSM's logits at x are the clean logits), with the backward
  going through a prefix graph kept once per batch;
- variant batching (``variant_batch`` K > 1): K filtered variants of one target run as one pass:
  the frontier repeated K times, the modules holding the target looping over the K variants' slices
  and tensors (the same operation on the same shapes as one variant at a time, so the numbers stay
  exact), every layer after them once on the K x B batch; with the fused FGSM, one forward/backward
  crafts the K attacks (:class:`_VariantSuffix`);
- ``inference_mode`` for every forward that needs no gradient, evaluation data kept on the device.

Every shortcut is checked on the first batch against the definition before it is used; a model
that cannot be traced, or a check that fails, falls back to full forwards and says so in
:class:`EngineInfo`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import fx, nn
from torch.func import functional_call

from ..base.errors import first_line
from ..base.limits import MAX_VARIANT_BATCH
from .attacks import Adversary, predictions
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
# A batch of variants holds K suffix activations at once; on CUDA K is sized to this share of the free
# memory (measured on two variants), and never past MAX_VARIANT_BATCH (fragscan.base.limits).
VARIANT_MEMORY_SHARE = 0.5
VARIANT_PROBE = 2
# Batched variants checked against one-at-a-time ones on the first batch (all K would cost K single runs).
CHECKED_VARIANTS = 4


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
    variant_batch: int = 1  # the largest number of variants evaluated in one pass (1: one at a time)
    variant_batch_note: str | None = None  # why variants ran one at a time (or fewer at once), where they did
    variant_batch_difference: float = 0.0  # largest |logit| difference batched vs one at a time in the checks


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
def cuda_arithmetic(tf32: bool) -> Iterator[None]:
    """CUDA's global switches for one sweep, restored on exit: TF32 tensor cores only when asked
    (torch allows them for convolutions by default, which would make "fp32" inexact), and cuDNN's
    deterministic kernels without autotuning, so that two runs on one GPU give the same report."""
    backends = torch.backends
    saved = (backends.cuda.matmul.allow_tf32, backends.cudnn.allow_tf32, backends.cudnn.deterministic,
             backends.cudnn.benchmark)
    backends.cuda.matmul.allow_tf32 = backends.cudnn.allow_tf32 = tf32
    backends.cudnn.deterministic, backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        (backends.cuda.matmul.allow_tf32, backends.cudnn.allow_tf32, backends.cudnn.deterministic,
         backends.cudnn.benchmark) = saved


@contextmanager
def arithmetic(model: nn.Module, precision: str) -> Iterator[nn.Module]:
    """The arithmetic a sweep runs in: fp32 as the model is (exact), TF32 tensor cores on CUDA, or
    bf16/fp16 autocast; the reduced ones with the weights in channels-last layout (their fast
    kernels; restored on exit). See :func:`cuda_arithmetic` for the switches set.

    The weight-cast cache stays off: the engine rewrites weights in place between variants.
    """
    with cuda_arithmetic(precision == "tf32"):
        if precision == "fp32":
            yield model
            return
        device = next(model.parameters()).device
        # Module.to changes only 4-d tensors to channels-last, and fails on 5-d ones (Conv3d).
        relayout = all(p.dim() != 5 for p in model.parameters())
        if relayout:
            model.to(memory_format=torch.channels_last)
        try:
            if precision == "tf32":
                yield model
            else:
                with torch.autocast(device.type, dtype=AUTOCAST_DTYPES[precision], cache_enabled=False):
                    yield model
        finally:
            if relayout:
                model.to(memory_format=torch.contiguous_format)


def measure(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, adversary: Adversary, batch_size: int
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


class _Measurer:
    """Measures filtered variants of one target batch by batch, through a split of the model."""

    def __init__(
        self, model: nn.Module, images, labels, batch_size: int, adversary: Adversary, fgsm_eps: float | None
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
        if self.fused or frontier[1] is not None:
            return tuple(logits.argmax(-1) == labels for logits in self.logits(split, k, frontier))
        # crafted on each network by the attack (or a threat profile's attacks), which judges its own examples
        with torch.inference_mode():
            clean = split.suffix(*frontier[0]).argmax(-1) == labels
        return clean, self.adversary.batch_correct(
            self.batches[k], k, self.images[self.batches[k]], labels, self.predict
        )

    def logits(self, split: Split, k: int, frontier) -> tuple[torch.Tensor, torch.Tensor]:
        """Clean and adversarial logits of batch ``k`` for the network as it is now, where the adversarial
        examples are FGSM's from the shared forward or fixed ones."""
        if self.fused:
            logits, adversarial = self.fgsm(split, k, *frontier)
            return logits, self.forward(adversarial)
        clean_frontier, adversarial_frontier = frontier
        with torch.inference_mode():
            return split.suffix(*clean_frontier), split.suffix(*adversarial_frontier)

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward(images).argmax(-1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.model(images)

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
        return logits.detach(), self.fgsm_step(leaf, grad)

    def fgsm_step(self, leaf: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """torchattacks.FGSM's last step: one signed step of eps from the input, clipped to [0, 1]."""
        with torch.no_grad():
            return torch.clamp(leaf + self.fgsm_eps * grad.sign(), min=0, max=1)

    # -- per batch and block of K variants ------------------------------------------------------
    def measure_many(self, split: Split, k: int, frontier, variants: _VariantSuffix) -> list[tuple]:
        """:meth:`measure` for the K variants whose weights ``variants`` holds, in one pass."""
        labels = self.labels[self.batches[k]]
        clean, adversarial = self.logits_many(split, k, frontier, variants)
        return list(zip(clean.argmax(-1) == labels, adversarial.argmax(-1) == labels))

    def logits_many(self, split: Split, k: int, frontier, variants: _VariantSuffix):
        """Clean and adversarial logits, [K, batch, classes]: the frontier repeated K times through
        the variants' suffix; FGSM's K x batch examples through the prefix, then that suffix."""
        if self.fused:
            logits, adversarial = self.fgsm_many(split, k, *frontier, variants)
            with torch.inference_mode():
                return logits, variants(*split.prefix(adversarial.flatten(0, 1)))
        with torch.inference_mode():
            return tuple(variants(*_repeat(f, variants.count)) for f in frontier)

    def fgsm_many(self, split: Split, k: int, leaf: torch.Tensor, frontier: tuple, variants: _VariantSuffix):
        """:meth:`fgsm` for K variants: clean logits [K, batch, classes] and examples [K, batch, ...].

        Each variant reads its own copy of the frontier and its loss is torchattacks' (the batch mean),
        so the gradient at each copy is that variant's own; the prefix graph, kept once per batch,
        takes each to the input.
        """
        labels = self.labels[self.batches[k]].clone()
        wanted = [i for i, f in enumerate(frontier) if isinstance(f, torch.Tensor) and f.requires_grad]
        inputs = list(_repeat([f.detach() if i in wanted else f for i, f in enumerate(frontier)], variants.count))
        for i in wanted:
            inputs[i].requires_grad_(True)
        with torch.enable_grad():
            logits = variants(*inputs)
            cost = sum(nn.CrossEntropyLoss()(each, labels) for each in logits)
            grads = torch.autograd.grad(cost, [inputs[i] for i in wanted])
            grads = [g.unflatten(0, (variants.count, -1)) for g in grads]
            if split.identity:
                grad = grads[0]
            else:  # per variant: a batched backward (is_grads_batched) was 60x slower on a CPU
                outputs = [frontier[i] for i in wanted]
                grad = torch.stack([
                    torch.autograd.grad(outputs, leaf, grad_outputs=[g[v] for g in grads], retain_graph=True)[0]
                    for v in range(variants.count)
                ])
        return logits.detach(), self.fgsm_step(leaf, grad)

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


def _repeat(frontier, count: int) -> tuple:
    """Each tensor of ``frontier`` ``count`` times along the batch: one copy per variant."""
    return tuple(f.repeat(count, *[1] * (f.dim() - 1)) if isinstance(f, torch.Tensor) else f for f in frontier)


class _Looped(nn.Module):
    """A module holding a target's parameters, run once per variant on that variant's slice of the
    batch with that variant's tensors: the same operation on the same shapes as one variant at a time."""

    def __init__(self, module: nn.Module, names: dict[str, int]):
        super().__init__()
        self.module, self.names = module, names  # parameter name in module -> index among the parameters
        self.weights: list[torch.Tensor] = []  # per target: the K variants' tensors, stacked

    def forward(self, *args, **kwargs):
        count = len(self.weights[0])
        parts = [a.chunk(count) if isinstance(a, torch.Tensor) else [a] * count for a in args]
        outputs = []
        for v in range(count):
            weights = {name: self.weights[i][v] for name, i in self.names.items()}
            outputs.append(functional_call(self.module, weights, tuple(p[v] for p in parts), kwargs))
        return torch.cat(outputs)


class _VariantSuffix:
    """``split.suffix`` for K variants of a target on a K x batch: the modules holding the target's
    parameters become :class:`_Looped`, everything after them runs once on the K x batch. Logits come
    back as [K, batch, classes]."""

    def __init__(self, suffix: nn.Module, parameters: list[nn.Parameter]):
        traced = suffix if isinstance(suffix, fx.GraphModule) else fx.symbolic_trace(suffix)
        index = {id(p): i for i, p in enumerate(parameters)}
        graph, env, root = fx.Graph(), {}, {}
        self.loops: list[_Looped] = []
        for node in traced.graph.nodes:
            env[node] = copied = graph.node_copy(node, lambda n: env[n])
            if node.op == "get_attr":
                owner, _, leaf = node.target.rpartition(".")
                value = getattr(traced.get_submodule(owner) if owner else traced, leaf)
                if id(value) in index:
                    raise ValueError(f"{node.target} is read outside a module: it cannot be looped over variants")
                root[node.target] = value
            elif node.op == "call_module":
                module = traced.get_submodule(node.target)
                names = {n: index[id(p)] for n, p in module.named_parameters(remove_duplicate=False) if id(p) in index}
                if names:
                    self.loops.append(_Looped(module, names))
                    copied.target = f"variant_loop_{len(self.loops)}"
                    module = self.loops[-1]
                root[copied.target] = module
        self.module = fx.GraphModule(root, graph)
        self.count = 0

    def load(self, weights: list[torch.Tensor]) -> _VariantSuffix:
        """Hold the variants' tensors (per target, stacked); they set K."""
        for loop in self.loops:
            loop.weights = weights
        self.count = len(weights[0])
        return self

    def __call__(self, *frontier) -> torch.Tensor:
        return self.module(*frontier).unflatten(0, (self.count, -1))


def _plan(
    parameters: list[nn.Parameter], originals: list[torch.Tensor], filters: dict[str, SynapticFilter]
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


def _filtered(original: torch.Tensor, variant: _Variant) -> torch.Tensor:
    return original.masked_fill(variant.synaptic_filter.removed(original, variant.alpha), 0)


def _apply(parameters, originals, variant: _Variant) -> None:
    with torch.no_grad():
        for parameter, original in zip(parameters, originals):
            parameter.copy_(_filtered(original, variant))


def _restore(parameters, originals) -> None:
    with torch.no_grad():
        for parameter, original in zip(parameters, originals):
            parameter.copy_(original)


def _stacked(originals, block: list[_Variant]) -> list[torch.Tensor]:
    """The block's filtered tensors, per target parameter stacked over the block's variants."""
    return [torch.stack([_filtered(original, variant) for variant in block]) for original in originals]


def _measure_chunk(
    parameters, originals, variants, measurer: _Measurer, split: Split, chunk: range, first, on_variant,
    at_once: int, batched: _VariantSuffix | None,
):
    """Every variant on the batches of ``chunk``, their frontiers computed once, ``at_once`` variants
    per pass (through ``batched``); ``on_variant(j)`` after each."""
    frontiers = {k: first if k == 0 and first is not None else measurer.frontier(split, k) for k in chunk}
    measured = []
    for start in range(0, len(variants), at_once):
        block = variants[start : start + at_once]
        if len(block) == 1:
            _apply(parameters, originals, block[0])
            rows = [[measurer.measure(split, k, frontiers[k])] for k in chunk]
        else:
            batched.load(_stacked(originals, block))
            rows = [measurer.measure_many(split, k, frontiers[k], batched) for k in chunk]
        for v in range(len(block)):
            measured.append(([r[v][0] for r in rows], [r[v][1] for r in rows]))
            on_variant(len(measured) - 1)
    return measured


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _check_batched(
    measurer: _Measurer, split: Split, first, parameters, originals, block: list[_Variant], batched: _VariantSuffix
):
    """Batch 0 of ``block`` in one pass against its first variants one at a time (the definition's
    path). Returns whether they agree (bit for bit on a CPU; in every prediction on CUDA, whose
    kernels may sum in another order for another shape), the largest logit difference, and the
    seconds per variant of each way (the auto probe)."""
    device = measurer.images.device
    batched.load(_stacked(originals, block))
    many = measurer.logits_many(split, 0, first, batched)
    # Timed on a second pass: the first with new shapes pays one-off costs (kernel choice, allocation)
    # that the one-at-a-time path, run before by the split's check, has already paid.
    _synchronize(device)
    began = time.perf_counter()
    measurer.logits_many(split, 0, first, batched)
    _synchronize(device)
    batched_s = (time.perf_counter() - began) / len(block)
    agree, difference = True, 0.0
    checked = block[:CHECKED_VARIANTS]
    began = time.perf_counter()
    singles = []
    try:
        for variant in checked:
            _apply(parameters, originals, variant)
            singles.append(measurer.logits(split, 0, first))
    finally:
        _restore(parameters, originals)
    _synchronize(device)
    single_s = (time.perf_counter() - began) / len(checked)
    for v, single in enumerate(singles):
        for both, one in zip(many, single):
            difference = max(difference, float((both[v].float() - one.float()).abs().max()))
            exact = device.type == "cpu"
            agree &= torch.equal(both[v], one) if exact else torch.equal(both[v].argmax(-1), one.argmax(-1))
    return agree, difference, batched_s, single_s


def _memory_sized(
    measurer: _Measurer, split: Split, first, originals, variants: list[_Variant], batched: _VariantSuffix
) -> int:
    """On CUDA: how many variants' suffix activations fit in VARIANT_MEMORY_SHARE of the free memory,
    from the peak of a pass over VARIANT_PROBE of them."""
    device = measurer.images.device
    probe = variants[:VARIANT_PROBE]
    _synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    measurer.logits_many(split, 0, first, batched.load(_stacked(originals, probe)))
    per_variant = max(1, (torch.cuda.max_memory_allocated(device) - before) // len(probe))
    free, _ = torch.cuda.mem_get_info(device)
    return int(min(MAX_VARIANT_BATCH, len(variants), free * VARIANT_MEMORY_SHARE // per_variant))


def _variant_batch(
    requested: int | str, measurer: _Measurer, split: Split, first, parameters, originals, variants: list[_Variant]
) -> tuple[int, str | None, float, _VariantSuffix | None]:
    """How many of the target's variants to evaluate in one pass, why not more, the largest logit
    difference the check saw, and the suffix that runs them. ``auto``: 1 on a CPU (measured slower
    there, docs/performance.md); on CUDA as many as fit in memory, if a probe finds them faster per
    variant than one at a time."""
    if requested == 1 or len(variants) < 2:
        return 1, None, 0.0, None
    if not (measurer.fused or measurer.adversary.crafted_once):
        return 1, "the attack runs on its own on each network (only fixed examples and FGSM are batched)", 0.0, None
    if any(m.training for m in measurer.model.modules()):
        return 1, "a module is in training mode (batch statistics): variants run one at a time", 0.0, None
    if requested == "auto" and measurer.images.device.type != "cuda":
        return 1, "auto: one at a time on a CPU, where batching variants was measured slower", 0.0, None
    try:
        batched = _VariantSuffix(split.suffix, parameters)
        size = requested
        if requested == "auto":
            size = _memory_sized(measurer, split, first, originals, variants, batched)
        size = min(size, len(variants))
        while True:
            if size < 2:
                return 1, "two variants' activations do not fit in free memory at once", 0.0, None
            try:
                agree, difference, batched_s, single_s = _check_batched(
                    measurer, split, first, parameters, originals, variants[:size], batched
                )
                break
            except torch.OutOfMemoryError:
                size //= 2
                torch.cuda.empty_cache()
    except Exception as error:  # torch.fx cannot trace it, a target read outside a module, a module's odd output
        return 1, f"variants cannot be batched here ({type(error).__name__}: {first_line(error)[:160]})", 0.0, None
    if not agree:
        return 1, f"{size} variants at once did not reproduce one at a time on the first batch", difference, None
    if requested == "auto" and batched_s >= single_s:
        note = f"auto: {size} at once took {batched_s * 1e3:.3g} ms a variant, one at a time {single_s * 1e3:.3g} ms"
        return 1, note, difference, None
    return size, None, difference, batched


def _sweep_target(
    parameters: list[nn.Parameter],
    filters: dict[str, SynapticFilter],
    measurer: _Measurer,
    split_for: Callable[[], tuple[Split, object, int]],
    unfiltered: Measurement,
    budget: int,
    on_cell: Callable[[str], None],
    info: EngineInfo,
    variant_batch: int | str = 1,
) -> tuple[dict[str, Curve], int]:
    """The target's curves, and how many distinct filtered networks were evaluated; ``info`` learns
    how many ran at once, and why not more."""
    originals = [p.detach().clone() for p in parameters]
    variants, cells = _plan(parameters, originals, filters)
    for filter_id, (_, _, which) in cells.items():
        for _ in range(which.count(None)):
            on_cell(filter_id)
    results: list[tuple[list, list]] = [([], []) for _ in variants]
    try:
        if variants:
            split, first, per_batch = split_for()
            at_once, note, difference, batched = _variant_batch(
                variant_batch, measurer, split, first, parameters, originals, variants
            )
            size = max(1, budget // max(1, per_batch))
            reported: set[int] = set()
            start, count = 0, len(measurer.batches)

            def on_variant(j: int) -> None:
                # Cells are done once the last batch is measured; a retried chunk reports nothing twice.
                if start + size >= count and j not in reported:
                    reported.add(j)
                    for filter_id, _ in variants[j].cells:
                        on_cell(filter_id)

            while start < count:
                chunk = range(start, min(start + size, count))
                try:
                    measured = _measure_chunk(
                        parameters, originals, variants, measurer, split, chunk, first, on_variant, at_once, batched
                    )
                except torch.OutOfMemoryError:
                    if at_once > 1:  # back off: fewer variants' activations at once, then fewer batches'
                        at_once //= 2
                        note = f"out of memory: {at_once} variants at once"
                    elif size == 1:
                        raise
                    else:
                        size //= 2
                    first = None
                    if torch.cuda.is_available():
                        torch.cuda.empty_cache()
                    continue
                first = None
                for j, (clean, adversarial) in enumerate(measured):
                    results[j][0].extend(clean)
                    results[j][1].extend(adversarial)
                start = chunk.stop
            info.variant_batch = max(info.variant_batch, at_once)
            info.variant_batch_note = info.variant_batch_note or note
            info.variant_batch_difference = max(info.variant_batch_difference, difference)
    finally:
        _restore(parameters, originals)
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
            numel=sum(p.numel() for p in parameters),
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
    adversary: Adversary,
    *,
    batch_size: int,
    scope: str = "local",
    range_kind: str = "pooled",
    reuse: bool = True,
    memory_budget: int | None = None,
    unfiltered: Measurement | None = None,
    progress: Callable[[SweepEvent], None] | None = None,
    variant_batch: int | str = 1,
) -> SweepResult:
    """Curves per target and filter. Local scope: one target per group, each over its own range;
    global scope: one target, ``"global"``, all groups filtered at once over a shared range.

    Call inside :func:`analysis_mode` (and :func:`arithmetic` for reduced precision).
    ``reuse=False`` computes every variant with full forwards.
    ``memory_budget`` (bytes) bounds the reused activations held at once (default: 2 GiB on CPU,
    a quarter of the free memory on CUDA); beyond one batch, what does not fit is recomputed.
    ``unfiltered`` is the unfiltered network's measurement when the caller already has it (a scan
    sweeping group by group measures it once); otherwise it is measured here.
    ``variant_batch``: filtered variants of a target evaluated in one pass (K, or ``"auto"``), each
    target's batching checked on the first batch against one variant at a time before it is used.
    """
    info = EngineInfo(memory_budget_bytes=memory_budget or default_memory_budget(images.device))
    if unfiltered is None:
        unfiltered = measure(model, images, labels, adversary, batch_size)

    fgsm_eps, info.fused_attack_note = adversary.fusable_fgsm()
    info.fused_attack = fgsm_eps is not None
    measurer = _Measurer(model, images, labels, batch_size, adversary, fgsm_eps)
    identity = identity_split(model)
    if info.fused_attack and not measurer.agrees(identity, measurer.first_frontier(identity)[0]):
        info.fused_attack = False
        info.fused_attack_note = "the shared forward did not reproduce torchattacks.FGSM bit for bit here"
        measurer = _Measurer(model, images, labels, batch_size, adversary, fgsm_eps=None)

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
                    frontier, per_batch = measurer.first_frontier(candidate)
                    if measurer.agrees(candidate, frontier):
                        info.prefix_reuse = True
                        info.suffix_share[name] = round(candidate.suffix_share, 4)
                        return candidate, frontier, per_batch
                    info.full_forward_targets[name] = "the split did not reproduce the full forward bit for bit"
            whole = identity_split(model)
            return (whole, *measurer.first_frontier(whole))

        def on_cell(filter_id: str, name=name) -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(SweepEvent(name, filter_id, done, total))

        curves[name], variants = _sweep_target(
            parameters, filters, measurer, split_for, unfiltered, info.memory_budget_bytes, on_cell, info,
            variant_batch,
        )
        info.variants += variants
    info.cells = total
    return SweepResult(curves, unfiltered, info)
