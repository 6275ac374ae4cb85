"""Retrain masks (method §6-7): a Report and the weights it analysed -> one uint8 tensor per parameter.

1 = may be trained (robust or antifragile), 0 = frozen (fragile, or a class that measured nothing);
``inconclusive`` follows ``inconclusive`` (default ``freeze``: train only what the evidence supports).
``band`` (default) works per element: the pulse filter removed one value band per threshold, each
band's class is the report's threshold class of the accuracy change it caused (method §6), and each
element inherits its band's class. ``layer`` gives every element of a group the group's class under
the chosen filter(s) and score (the summary class for the summary filter and score).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import torch
from torch import nn

from .._version import __version__
from ..base.errors import ConfigError, InputError, first_line
from ..base.files import file_sha256, write_atomic
from ..base.plugins import Plugin, load_plugins
from ..config import SCORES, Score
from ..report import Report, report_digest
from ..report.model import Class
from ..scoring.evidence import group_class
from ..sweep.filters import FILTERS, Pulse
from ..sweep.groups import parameter_groups

# What a mask chooses trainable elements by: value bands within a parameter, or whole parameters (the
# option and metadata key that name it are `policy`).
MaskGranularity = Literal["band", "layer"]
Others = Literal["train", "freeze"]
Inconclusive = Literal["freeze", "train"]
GRANULARITIES: tuple[MaskGranularity, ...] = get_args(MaskGranularity)
TRAINABLE: frozenset[Class] = frozenset({"robust", "antifragile"})
# Elements between two pulse bands (the bands are narrower than the threshold spacing) take the
# class of the band whose threshold is nearest [ours].
BAND_GAPS = "nearest-threshold"


@dataclass(frozen=True)
class Mask:
    """Mask tensors by parameter name (the names of ``Normalized.net``) and their metadata."""

    tensors: dict[str, torch.Tensor]
    metadata: dict[str, str]

    def trainable_share(self) -> float:
        total = sum(t.numel() for t in self.tensors.values())
        return sum(int(t.sum()) for t in self.tensors.values()) / max(total, 1)


def element_classes(weight: torch.Tensor, thresholds: list[float], classes: list[Class]) -> torch.Tensor:
    """Index into ``classes`` for every element of ``weight``: the pulse band it falls in, rebuilt
    from the recorded thresholds with :class:`Pulse` itself; elements in no band take the nearest."""
    pulse = Pulse(thresholds[0], thresholds[-1], len(thresholds))
    values = weight.detach().cpu()
    alphas = torch.tensor(thresholds, dtype=torch.float64)
    band = torch.bucketize(values.double(), (alphas[1:] + alphas[:-1]) / 2)  # nearest threshold, for the gaps
    for i, alpha in enumerate(thresholds):
        band[pulse.removed(values, alpha)] = i  # the band exactly as the sweep removed it
    return band


def _trainable(classes: list[Class], inconclusive: Inconclusive) -> torch.Tensor:
    trainable = TRAINABLE | ({"inconclusive"} if inconclusive == "train" else set())
    return torch.tensor([c in trainable for c in classes], dtype=torch.uint8)


def build_mask(
    report: Report,
    net: nn.Module,
    *,
    policy: MaskGranularity = "band",
    score: Score | None = None,
    filters: tuple[str, ...] | None = None,
    others: Others = "train",
    inconclusive: Inconclusive = "freeze",
) -> Mask:
    """The mask ``report`` implies for ``net`` (the user's network with the weights it analysed).

    ``score`` defaults to the report's summary score; ``filters`` to ``("pulse",)`` for ``band``
    and to the report's summary filter for ``layer`` (several filters: trainable under all of them).
    """
    if policy not in GRANULARITIES:
        raise ConfigError(f"--policy must be one of {', '.join(GRANULARITIES)}, got {policy!r}")
    if others not in ("train", "freeze"):
        raise ConfigError(f"--others must be 'train' or 'freeze', got {others!r}")
    if inconclusive not in ("freeze", "train"):
        raise ConfigError(f"--inconclusive must be 'freeze' or 'train', got {inconclusive!r}")
    score = score or report.settings.summary_score
    if score not in SCORES:
        raise ConfigError(f"--score must be clean, adversarial or difference, got {score!r}")
    if filters is None:
        filters = ("pulse",) if policy == "band" else (report.settings.summary_filter,)
    for filter_id in filters:
        FILTERS.entry(filter_id)
    if policy == "band" and tuple(filters) != ("pulse",):
        raise ConfigError(
            "--policy band needs --filters pulse (only the pulse filter removes one value band at a time)"
        )
    missing = [f for f in filters if f not in report.settings.filters]
    if missing:
        raise ConfigError(
            f"the report has no {missing[0]!r} sweep (it swept {','.join(report.settings.filters)}); rescan with it or "
            "pick another filter"
        )

    parameters = dict(net.named_parameters())
    tensors = {name: torch.full(p.shape, int(others == "train"), dtype=torch.uint8) for name, p in parameters.items()}
    if report.settings.scope == "local":
        for group in report.groups:
            if group.name not in parameters:
                raise InputError(
                    f"the report's group {group.name!r} is not a parameter of the model; wrong model for this report"
                )
            weight = parameters[group.name]
            if list(weight.shape) != group.shape:
                raise InputError(
                    f"{group.name!r} has shape {list(weight.shape)} in the model but {group.shape} in the report"
                )
            if policy == "layer":
                classes = [group_class(report, group, f, score) for f in filters]
                keep = bool(_trainable(classes, inconclusive).all())
                tensors[group.name] = torch.full(weight.shape, int(keep), dtype=torch.uint8)
            else:
                tensors[group.name] = _band_mask(weight, group.filters["pulse"], score, inconclusive)
    else:
        if policy == "layer":
            raise ConfigError("a global-scope report has no per-group classes; use --policy band")
        curve = report.global_["pulse"]
        for group in parameter_groups(net, report.settings.include, report.settings.select)[0]:
            tensors[group.name] = _band_mask(group.parameter, curve, score, inconclusive)

    metadata = {
        "fragscan_version": __version__,
        "model": report.model.name,
        "weights_sha256": report.model.weights_sha256 or "",
        "report_sha256": report_digest(report),  # with `mask --eps`: of the report restated at that budget
        "eps": repr(report.settings.eps_used),  # a threat profile's: the budget the classes were stated at
        "split": report.dataset.split,  # retrain refuses to judge on it (method §7, no leakage)
        "policy": policy,
        "score": score,
        "filter": ",".join(filters),
        "tau": repr(report.settings.tau),
        "rule": report.settings.classify,
        "inconclusive": inconclusive,
        "others": others,
        "band_gaps": BAND_GAPS if policy == "band" else "",
    }
    return Mask({k: v.contiguous() for k, v in tensors.items()}, metadata)


def _band_mask(weight: torch.Tensor, curve, score: Score, inconclusive: Inconclusive) -> torch.Tensor:
    if curve.threshold_classes is None:
        raise InputError("the report has no threshold classes (no per-sample correctness); rescan to build a band mask")
    classes = getattr(curve.threshold_classes, score)
    return _trainable(classes, inconclusive)[element_classes(weight, curve.thresholds, classes)]


def reported_network(
    report: Report, weights: str | Path | None = None, plugins: Sequence[str | Path] = ()
) -> nn.Module:
    """The user's network with the weights ``report`` analysed, checked against its sha256.

    ``weights`` overrides the recorded path (the file moved); its digest must still match. Plugins
    load as :func:`reported_plugins` says: never because the report names them.
    """
    from ..models import create_model

    path = weights or report.model.weights
    if path is None:
        raise InputError(
            f"the report names no weights file for {report.model.name!r}; pass --weights with the file the scan used"
        )
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"weights {str(path)!r} named by the report not found; pass --weights with the file the scan used"
        )
    if report.model.weights_sha256 and file_sha256(path) != report.model.weights_sha256:
        raise InputError(
            f"weights {str(path)!r} are not the ones the report analysed (sha256 differs); pass the scanned file with "
            "--weights"
        )
    reported_plugins(report, plugins)
    built = report.model  # the network as the scan built it: fitted to its data, with its stem
    return create_model(
        built.name, weights=path, num_classes=built.num_classes, input_size=tuple(built.input_size),
        mean=tuple(built.mean), std=tuple(built.std), stem=report.settings.stem,
        pretrained=report.settings.pretrained,
    ).net


def reported_plugins(report: Report, plugins: Sequence[str | Path] = ()) -> list[Plugin]:
    """Load the plugins this process may run, and return those that loaded: the installed entry points,
    ``./plugins/`` and the ``plugins`` files the user names. A report is data, so the plugin files it
    records are never loaded because it names them (whoever can write a report and a file would run
    code on the machine that reads it): where the report's model was registered by one of those files
    and is not registered now, a one-line InputError names the file and ``--plugin``."""
    from ..models import MODELS

    loaded = [plugin for plugin in load_plugins(plugins) if plugin.loaded]
    name = report.model.name
    if name not in MODELS:
        described = (Plugin.from_description(line) for line in report.plugins)
        source = next((p for p in described if p is not None and f"model:{name}" in p.registered), None)
        if source is not None and source.route != "entry-point":
            raise InputError(
                f"model {name!r} comes from plugin file {source.location!r}, which the report names; a report "
                f"never makes fragscan run code: pass --plugin {source.location!r} (or its new path) to load it"
            )
    return loaded


def default_granularity(report: Report) -> MaskGranularity | None:
    """The granularity (``policy``) a scan's own mask uses: ``band`` when the pulse filter was swept, else ``layer``
    (local scope only); None when the report supports neither (global scope without pulse)."""
    if "pulse" in report.settings.filters:
        return "band"
    return "layer" if report.settings.scope == "local" else None


def mask_from_report(report: Report, net: nn.Module | None = None, **options) -> Mask:
    """:func:`build_mask` on ``net``, or on the network the report names (sha256 verified)."""
    return build_mask(report, net if net is not None else reported_network(report), **options)


def mask_bytes(mask: Mask) -> bytes:
    from ..models.weights import safetensors_bytes

    return safetensors_bytes(mask.tensors, mask.metadata)


def save_mask(mask: Mask, path: str | Path) -> Path:
    write_atomic(Path(path), mask_bytes(mask))
    return Path(path)


def load_mask(path: str | Path, net: nn.Module) -> Mask:
    """Read a mask file and check it fits ``net``; the first problem is a one-line InputError."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise InputError(f"mask {str(path)!r} not found; pass the mask.safetensors a scan or `fragscan mask` wrote")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = dict(sorted((handle.metadata() or {}).items()))  # safetensors reads it in hash-map order
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except Exception as error:  # the parser's own words say what is wrong
        raise InputError(f"cannot read mask {str(path)!r}: {first_line(error)}") from None
    validate_mask(tensors, net, source=str(path))
    return Mask(tensors, metadata)


def validate_mask(tensors: dict[str, torch.Tensor], net: nn.Module, *, source: str) -> None:
    prefix = f"mask {source!r} does not fit the model:"
    parameters = dict(net.named_parameters())
    for name in parameters:
        if name not in tensors:
            raise InputError(f"{prefix} no tensor for parameter {name!r}")
    for name in tensors:
        if name not in parameters:
            raise InputError(f"{prefix} {name!r} is not a parameter of the model")
    for name, parameter in parameters.items():
        tensor = tensors[name]
        if tuple(tensor.shape) != tuple(parameter.shape):
            raise InputError(
                f"{prefix} {name!r} has shape {tuple(tensor.shape)}, the parameter has {tuple(parameter.shape)}"
            )
        if tensor.is_floating_point() and bool(torch.isnan(tensor).any()):
            raise InputError(f"{prefix} {name!r} contains NaN")
        if tensor.dtype != torch.uint8:
            raise InputError(f"{prefix} {name!r} has dtype {str(tensor.dtype).removeprefix('torch.')}, masks are uint8")
        if bool((tensor > 1).any()):
            raise InputError(f"{prefix} {name!r} has values other than 0 and 1")


def describe(mask: Mask) -> list[tuple[str, int, int]]:
    """(name, trainable elements, elements) per tensor, for summaries."""
    return [(name, int(t.sum()), t.numel()) for name, t in mask.tensors.items()]
