"""Prefix reuse: split a traced model at a parameter group.

Filtering group g leaves every activation that does not depend on g unchanged, so per batch the
*prefix* (the graph up to the activations the group's dependents read, the frontier) runs once and
only the dependent *suffix* runs for every filter x threshold. The split is made on a torch.fx
trace of the model; the suffix executes the same operations on the same values as a full forward,
so its outputs are bit-identical (checked on real data before use, see ``engine``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import fx, nn

from ..base.errors import first_line


@dataclass(frozen=True)
class Split:
    """``suffix(*prefix(x)) == model(x)``; ``prefix`` runs once per batch, ``suffix`` per variant.

    ``identity`` marks the trivial split (prefix returns the input, suffix is the whole model),
    used when the model could not be traced.
    """

    prefix: Callable[[torch.Tensor], tuple]
    suffix: Callable[..., torch.Tensor]
    identity: bool
    suffix_share: float | None  # share of the model's nodes' FLOPs proxy in the suffix, when known
    unsafe: str | None = None  # why reusing the prefix would give wrong numbers (then it is not used)


def identity_split(model: nn.Module) -> Split:
    return Split(prefix=lambda x: (x,), suffix=model, identity=True, suffix_share=1.0)


def trace(model: nn.Module) -> tuple[fx.GraphModule | None, str | None]:
    """A torch.fx trace of ``model``, or ``None`` and the reason it cannot be traced."""
    try:
        return fx.symbolic_trace(model), None
    except Exception as error:  # tracing fails in many ways (control flow on values, unsupported ops)
        return None, f"torch.fx cannot trace the model ({type(error).__name__}: {first_line(error)[:160]})"


def _uses(traced: fx.GraphModule, node: fx.Node, ids: set[int]) -> bool:
    if node.op == "call_module":
        return any(id(p) in ids for p in traced.get_submodule(node.target).parameters())
    if node.op == "get_attr":
        owner, _, leaf = node.target.rpartition(".")
        value = getattr(traced.get_submodule(owner) if owner else traced, leaf)
        return id(value) in ids
    return False


def _written(traced: fx.GraphModule, node: fx.Node) -> fx.Node | None:
    """The node whose tensor ``node`` overwrites in place (``x.add_(y)``, ``relu(x, inplace=True)``,
    ``out=x``), if any."""
    target = node.args[0] if node.args and isinstance(node.args[0], fx.Node) else None
    if node.op == "call_module":
        return target if getattr(traced.get_submodule(node.target), "inplace", False) else None
    if node.op == "call_method":
        return target if node.target.endswith("_") and not node.target.startswith("__") else None
    if node.op == "call_function":
        if isinstance(node.kwargs.get("out"), fx.Node):
            return node.kwargs["out"]
        name = getattr(node.target, "__name__", "")
        in_place = node.kwargs.get("inplace") is True or (name.endswith("_") and not name.startswith("__"))
        return target if in_place or name in _IN_PLACE_OPERATORS else None
    return None


_IN_PLACE_OPERATORS = {
    "iadd", "isub", "imul", "itruediv", "ifloordiv", "imod", "ipow", "iand", "ior", "ixor", "setitem",
}


def split(traced: fx.GraphModule, parameters: Sequence[nn.Parameter], cost: Callable[[fx.Node], float]) -> Split:
    """Split ``traced`` into the part independent of ``parameters`` and the dependent suffix.

    ``cost`` weighs nodes (e.g. by FLOPs) to report the suffix's share of a full forward.
    """
    ids = {id(p) for p in parameters}
    nodes = list(traced.graph.nodes)
    dependent: set[fx.Node] = set()
    for node in nodes:
        if node.op == "output" or _uses(traced, node, ids) or any(n in dependent for n in node.all_input_nodes):
            dependent.add(node)
    frontier = [
        node
        for node in nodes
        if node not in dependent and node.op != "get_attr" and any(user in dependent for user in node.users)
    ]

    # The frontier is computed once and read by every variant: a suffix write into it would leak
    # from one variant into the next, and a prefix write would reach suffix reads that, in the
    # model's own order, came before it.
    order = {node: i for i, node in enumerate(nodes)}
    unsafe = None
    for node in nodes:
        written = _written(traced, node)
        if written is None or written in dependent:
            continue
        if node in dependent or any(user in dependent and order[user] < order[node] for user in written.users):
            unsafe = f"{node.name} writes in place to {written.name}, an activation the split would reuse"
            break

    prefix_graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for node in nodes:
        if node not in dependent:
            env[node] = prefix_graph.node_copy(node, lambda n: env[n])
    prefix_graph.output(tuple(env[n] for n in frontier))
    prefix = fx.GraphModule(traced, prefix_graph)
    prefix.graph.eliminate_dead_code()
    prefix.recompile()

    suffix_graph = fx.Graph()
    env = {node: suffix_graph.placeholder(f"frontier_{i}") for i, node in enumerate(frontier)}
    for node in nodes:
        if node in dependent or (node.op == "get_attr" and any(user in dependent for user in node.users)):
            env[node] = suffix_graph.node_copy(node, lambda n: env[n])

    total = sum(cost(n) for n in nodes) or 1.0
    return Split(
        prefix=prefix,
        suffix=fx.GraphModule(traced, suffix_graph),
        identity=False,
        suffix_share=sum(cost(n) for n in nodes if n in dependent) / total,
        unsafe=unsafe,
    )


def flop_costs(traced: fx.GraphModule, example: torch.Tensor) -> dict[fx.Node, float]:
    """Multiply-accumulates of each Conv/Linear node on one ``example`` batch (0 for other nodes).

    A proxy for the suffix's share of a forward: convolutions and matrix products dominate.
    """
    costs: dict[fx.Node, float] = {}

    class Recorder(fx.Interpreter):
        def run_node(self, node):
            result = super().run_node(node)
            costs[node] = 0.0
            if node.op == "call_module" and isinstance(result, torch.Tensor):
                module = traced.get_submodule(node.target)
                if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
                    costs[node] = result.numel() * module.weight[0].numel()
                elif isinstance(module, nn.Linear):
                    costs[node] = result.numel() * module.in_features
            return result

    with torch.inference_mode():
        Recorder(traced).run(example)
    return costs
