"""timm and torchvision models by name: ``timm:NAME`` or a bare timm name, ``tv:NAME`` or a bare torchvision name.

Nothing is downloaded unless ``pretrained`` is asked for and downloads are allowed
(``HF_HUB_OFFLINE`` is not ``1``); otherwise ``pretrained`` fails at once, naming where the weights
would have to be.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from torch import nn

from ..base.errors import ConfigError, InputError, UnknownNameError, first_line
from ._registry import ModelSpec
from .weights import adapt_pretrained, apply_state_dict, load_state_dict, require_weights_file

TIMM_PREFIX = "timm:"
TV_PREFIX = "tv:"


def _timm_names() -> list[str]:
    import timm

    return timm.list_models()


def _tv_names() -> list[str]:
    from torchvision import models

    return models.list_models(module=models)


def external_names(pattern: str = "*") -> list[str]:
    """timm names (bare) and torchvision names (``tv:``) matching the glob."""
    import timm

    timm_names = timm.list_models(pattern.removeprefix(TIMM_PREFIX))
    tv_names = [
        TV_PREFIX + n for n in _tv_names() if fnmatch.fnmatch(TV_PREFIX + n, pattern) or fnmatch.fnmatch(n, pattern)
    ]
    return timm_names + tv_names


def resolve_external(name: str, *, known: list[str]) -> tuple[str, str]:
    """``(library, architecture)`` for a timm or torchvision name, or an error naming the closest ones."""
    import timm

    if name.startswith(TV_PREFIX):
        architecture = name.removeprefix(TV_PREFIX)
        if architecture in _tv_names():
            return "torchvision", architecture
        raise UnknownNameError("model", name, [TV_PREFIX + n for n in _tv_names()])
    if name.startswith(TIMM_PREFIX):
        architecture = name.removeprefix(TIMM_PREFIX)
        if timm.is_model(architecture):
            return "timm", architecture
        raise UnknownNameError("model", name, [TIMM_PREFIX + n for n in _timm_names()])
    if timm.is_model(name):
        return "timm", name
    if name in _tv_names():
        return "torchvision", name
    raise UnknownNameError("model", name, [*known, *_timm_names(), *(TV_PREFIX + n for n in _tv_names())])


def downloads_allowed() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("1", "true", "True", "ON")


def build_external(
    name: str,
    spec: ModelSpec,
    *,
    weights: str | Path | None,
    pretrained: bool,
    known: list[str],
    **kwargs: Any,
) -> tuple[nn.Module, ModelSpec, list[str]]:
    """The network for ``name`` fitted to ``spec``, the spec (pretrained weights bring their mean/std) and notes
    on how pretrained weights were adapted."""
    library, architecture = resolve_external(name, known=known)
    build = _timm if library == "timm" else _torchvision
    return build(architecture, spec, weights=weights, pretrained=pretrained, **kwargs)


def _pretrained_statistics(spec: ModelSpec, mean: tuple[float, ...], std: tuple[float, ...]) -> ModelSpec:
    """Pretrained RGB statistics, averaged over channels when the data has one channel (as the conv is summed)."""
    channels = spec.input_size[0]
    if channels == len(mean):
        return replace(spec, mean=tuple(mean), std=tuple(std))
    return replace(spec, mean=(sum(mean) / len(mean),) * channels, std=(sum(std) / len(std),) * channels)


def _timm(
    architecture: str, spec: ModelSpec, *, weights, pretrained: bool, **kwargs
) -> tuple[nn.Module, ModelSpec, list[str]]:
    import timm
    from timm.models import get_pretrained_cfg

    options = {"num_classes": spec.num_classes, "in_chans": spec.input_size[0], **kwargs}
    published = get_pretrained_cfg(architecture)
    if published is not None and published.fixed_input_size and tuple(published.input_size[1:]) != spec.input_size[1:]:
        options.setdefault("img_size", spec.input_size[1:])  # a ViT's patch grid is built for one size: the data's
    if not pretrained:
        net = timm.create_model(architecture, pretrained=False, **options)
        if weights is not None:
            apply_state_dict(net, load_state_dict(weights), source=str(weights))
        return net, spec, []
    if weights is not None:
        require_weights_file(weights)
        # timm's own path: it loads the file (weights_only), adapts the input conv and the classifier.
        options["pretrained_cfg_overlay"] = {"file": str(weights)}
    try:  # offline, timm's hub client answers from its cache or fails at once
        net = timm.create_model(architecture, pretrained=True, **options)
    except Exception as error:  # hub, network or file errors: say which model and why, in one line
        # with --weights FILE the file is what failed; the download cache was never asked
        where = (
            ""
            if downloads_allowed() or weights is not None
            else " (downloads are off: HF_HUB_OFFLINE=1 and the weights are not cached)"
        )
        raise InputError(
            f"--pretrained: cannot load weights for timm model {architecture!r}{where}: {first_line(error)}; "
            "pass the file with --weights FILE"
        ) from None
    config = net.pretrained_cfg
    notes = []
    if config.get("num_classes") not in (None, spec.num_classes):
        notes.append(
            f"pretrained classifier has {config['num_classes']} classes, the data {spec.num_classes}: "
            f"timm initialised {config.get('classifier', 'the classifier')} afresh (train it before scanning)"
        )
    return net, _pretrained_statistics(spec, config.get("mean", spec.mean), config.get("std", spec.std)), notes


def _replace_input_conv(net: nn.Module, in_chans: int) -> None:
    """Give the first Conv2d ``in_chans`` inputs (torchvision models have no in_chans option)."""
    for module_name, module in net.named_modules():
        if isinstance(module, nn.Conv2d):
            if module.in_channels == in_chans:
                return
            parent_name, _, child = module_name.rpartition(".")
            parent = net.get_submodule(parent_name) if parent_name else net
            setattr(
                parent,
                child,
                nn.Conv2d(
                    in_chans,
                    module.out_channels,
                    module.kernel_size,
                    module.stride,
                    module.padding,
                    module.dilation,
                    module.groups,
                    module.bias is not None,
                ),
            )
            return
    raise ConfigError("the torchvision model has no Conv2d to take the data's channels")


def _torchvision(
    architecture: str, spec: ModelSpec, *, weights, pretrained: bool, **kwargs
) -> tuple[nn.Module, ModelSpec, list[str]]:
    from torchvision import models

    try:
        net = models.get_model(architecture, weights=None, num_classes=spec.num_classes, **kwargs)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"torchvision model {architecture!r} cannot be built: {first_line(error)}") from None
    _replace_input_conv(net, spec.input_size[0])
    if not pretrained:
        if weights is not None:
            apply_state_dict(net, load_state_dict(weights), source=str(weights))
        return net, spec, []
    published = models.get_model_weights(architecture).DEFAULT
    state = load_state_dict(weights) if weights is not None else _torchvision_download(architecture, published.url)
    fresh = adapt_pretrained(net, state, source=str(weights or published.url))
    notes = (
        [f"pretrained weights do not fit {', '.join(fresh)}: initialised afresh (train before scanning)"]
        if fresh
        else []
    )
    transforms = published.transforms()
    return net, _pretrained_statistics(spec, tuple(transforms.mean), tuple(transforms.std)), notes


def _torchvision_download(architecture: str, url: str):
    import torch

    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
    if not cached.is_file() and not downloads_allowed():
        raise InputError(
            f"--pretrained: downloads are off (HF_HUB_OFFLINE=1) and the torchvision weights for {architecture!r} are "
            f"not in {str(cached)!r}; put the file there or pass it with --weights FILE"
        )
    try:
        return torch.hub.load_state_dict_from_url(url, map_location="cpu", weights_only=True)
    except Exception as error:
        raise InputError(
            f"--pretrained: cannot fetch torchvision weights for {architecture!r}: {first_line(error)}"
        ) from None
