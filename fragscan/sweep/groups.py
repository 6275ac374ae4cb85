"""Which tensors are analysed: by default the weight of every Conv and Linear module (method §1)."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from torch import nn

_FILTERED_MODULES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_NORM_MODULES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


@dataclass(frozen=True)
class Group:
    """One analysed tensor, named as in the user's network (without the wrapper prefix)."""

    name: str
    parameter: nn.Parameter
    module_type: str

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.parameter.shape)


@dataclass(frozen=True)
class SkippedGroup:
    name: str
    reason: str


def _wanted(name: str, module: nn.Module, leaf: str, include: tuple[str, ...]) -> bool:
    if leaf == "weight" and isinstance(module, _FILTERED_MODULES):
        return True
    if leaf == "bias" and isinstance(module, _FILTERED_MODULES) and "bias" in include:
        return True
    if isinstance(module, _NORM_MODULES) and "norm" in include:
        return True
    return any(fnmatch.fnmatch(name, pattern) for pattern in include if pattern not in ("bias", "norm"))


def parameter_groups(
    net: nn.Module, include: tuple[str, ...] = (), select: tuple[str, ...] = ()
) -> tuple[list[Group], list[SkippedGroup]]:
    """Groups in module order, and the selected tensors that cannot be swept, each with why.

    ``include`` widens the default tensors (see module doc); ``select``, when given, keeps only
    the names matching one of its globs. Tied tensors (one Parameter under several names) form
    one group under its first name.
    """
    groups: list[Group] = []
    skipped: list[SkippedGroup] = []
    seen: set[int] = set()
    for module_name, module in net.named_modules():
        for leaf, parameter in module.named_parameters(recurse=False):
            name = f"{module_name}.{leaf}" if module_name else leaf
            if not _wanted(name, module, leaf, include):
                continue
            if select and not any(fnmatch.fnmatch(name, pattern) for pattern in select):
                continue
            if id(parameter) in seen:
                continue
            seen.add(id(parameter))
            if parameter.numel() == 0:
                skipped.append(SkippedGroup(name, "empty tensor"))
            elif not parameter.is_floating_point():
                skipped.append(SkippedGroup(name, f"not a floating-point tensor ({parameter.dtype})"))
            elif float(parameter.detach().min()) == float(parameter.detach().max()):
                skipped.append(SkippedGroup(name, "all entries are equal: no value band to sweep"))
            else:
                groups.append(Group(name, parameter, type(module).__name__))
    return groups, skipped


def unmatched_glob(patterns: tuple[str, ...], names: list[str]) -> str | None:
    """The first of ``patterns`` that matches none of ``names``: a typo that would silently do nothing."""
    return next((p for p in patterns if not any(fnmatch.fnmatch(name, p) for name in names)), None)
