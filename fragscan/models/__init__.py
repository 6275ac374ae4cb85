"""Model registry: ``register_model`` / ``create_model`` / ``list_models`` (timm's three verbs).

Every model fragscan analyses is a :class:`Normalized` wrapper: it takes pixels in [0, 1] and does
its own normalisation, so attacks perturb pixels and clip to the valid range.

A name resolves, in order, to a registered model (built-ins and plugins), ``tv:NAME`` (torchvision),
``timm:NAME`` or a bare timm name, or a bare torchvision name. A registered spec may leave
``num_classes``, ``input_size``, ``mean`` and ``std`` open (``None``): they are then filled from the
data the model is built for (:func:`create_model`'s keyword arguments).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

import torch
from torch import nn

from ..base.errors import ConfigError, FragscanError, first_line
from ..config import Stem
from ._registry import MODELS, ModelSpec, register_model  # noqa: F401 (the public verbs live here)
from .weights import apply_state_dict, load_state_dict


class Normalized(nn.Module):
    """Pixels in [0, 1] -> logits. ``net`` is the user's network; its parameter names are kept.

    ``notes``: facts about how the network was built that a report should state (adapted weights).
    """

    def __init__(self, net: nn.Module, spec: ModelSpec, notes: list[str] | tuple[str, ...] = ()):
        super().__init__()
        if spec.input_size is None or spec.num_classes is None or spec.mean is None or spec.std is None:
            raise ConfigError(
                "Normalized needs a spec with input_size, mean, std and num_classes set (ModelSpec.fitted)"
            )
        if len(spec.mean) != spec.input_size[0] or len(spec.std) != spec.input_size[0]:
            raise ConfigError(f"mean/std need one value per input channel ({spec.input_size[0]})")
        self.net = net
        self.spec = spec
        self.notes = tuple(notes)
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, -1, 1, 1), persistent=False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.net((pixels - self.mean) / self.std)


def list_models(pattern: str = "*", *, external: bool = True) -> list[str]:
    """Registered names matching the glob, then (``external``) timm names and ``tv:`` torchvision names."""
    names = MODELS.list(pattern)
    if external:
        from .external import external_names

        names += [n for n in external_names(pattern) if n not in MODELS]
    return names


def model_spec(name: str) -> ModelSpec:
    """The registered spec of ``name``; timm and torchvision models adapt everything (an open spec)."""
    if name in MODELS:
        return MODELS.entry(name).meta["spec"]
    from .external import resolve_external

    resolve_external(name, known=MODELS.list())
    return ModelSpec()


def create_model(
    name: str,
    *,
    weights: str | Path | None = None,
    num_classes: int | None = None,
    in_chans: int | None = None,
    input_size: tuple[int, int, int] | None = None,
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
    pretrained: bool = False,
    stem: Stem = "imagenet",
    default_weights: bool = True,
    **kwargs: Any,
) -> Normalized:
    """Build a model, load weights (``weights``, or the spec's default unless ``default_weights`` is
    False: a fresh initialisation to train) and wrap it.

    ``num_classes``, ``in_chans``, ``input_size``, ``mean`` and ``std`` fill what the registered spec
    leaves open (explicit values override it, as in timm). ``pretrained`` starts from published
    ImageNet weights: from ``weights`` when given (adapted to the classes and channels), else from
    the local download cache; it fails fast when they are not there and downloads are off.
    """
    if stem not in get_args(Stem):
        raise ConfigError(f"--stem must be one of {', '.join(get_args(Stem))}, got {stem!r}")
    if stem != "imagenet" and not (name in MODELS and MODELS.entry(name).meta.get("stems")):
        # the report records --stem: it must not name a stem the network does not have
        with_stems = ", ".join(n for n in MODELS.list() if MODELS.entry(n).meta.get("stems"))
        raise ConfigError(f"--stem {stem} is for {with_stems}; {name!r} keeps its own first layers (drop --stem)")
    if name in MODELS:
        entry = MODELS.entry(name)
        spec: ModelSpec = entry.meta["spec"].fitted(
            num_classes=num_classes, in_chans=in_chans, input_size=input_size, mean=mean, std=std
        )
        if pretrained:
            raise ConfigError(
                f"--pretrained is for timm and torchvision models; {name!r} is registered by {entry.source}: "
                "pass its weights with --weights (or use tv:NAME / timm:NAME for published ImageNet weights)"
            )
        factory_options = {"num_classes": spec.num_classes, "in_chans": spec.input_size[0], **kwargs}
        if entry.meta.get("stems"):
            factory_options["stem"] = stem
        try:
            net = entry.obj(**_accepted(entry.obj, factory_options))
        except FragscanError:
            raise
        except Exception as error:  # a plugin's factory: its own bug, named with where it came from
            raise ConfigError(
                f"model {name!r} ({entry.source}) failed to build: {type(error).__name__}: {first_line(error)}"
            ) from None
        if weights is None and default_weights:
            weights = spec.default_weights
        if weights is not None:
            apply_state_dict(net, load_state_dict(weights), source=str(weights))
        return _runs_on_its_input(name, Normalized(net, spec).eval())

    from .external import build_external

    spec = ModelSpec().fitted(num_classes=num_classes, in_chans=in_chans, input_size=input_size, mean=mean, std=std)
    net, spec, notes = build_external(name, spec, weights=weights, pretrained=pretrained, known=MODELS.list(), **kwargs)
    return _runs_on_its_input(name, Normalized(net, spec, notes=notes).eval())


def _runs_on_its_input(name: str, model: Normalized) -> Normalized:
    """``model``, once two images of its spec's size have gone through it: an architecture that cannot
    take that size (a kernel or patch larger than the image, a fixed position grid) fails here in
    one line, not deep inside the first attack."""
    probe = torch.zeros(2, *model.spec.input_size)  # two: a forward that squeezes the batch axis passes with one
    try:
        with torch.no_grad():
            output = model(probe)
    except Exception as error:  # whatever the architecture raises, the cause is the input size
        size = "x".join(map(str, model.spec.input_size))
        raise ConfigError(
            f"model {name!r} cannot take {size} images ({first_line(error)}); pick a model that fits images of this "
            "size "
            "(small-cnn fits any) or resize the data"
        ) from None
    classes = model.spec.num_classes
    if not isinstance(output, torch.Tensor) or tuple(output.shape) != (2, classes):
        given = f"shape {tuple(output.shape)}" if isinstance(output, torch.Tensor) else f"a {type(output).__name__}"
        raise ConfigError(
            f"model {name!r} must return one tensor of logits, N x {classes} for {classes} classes; it returned "
            f"{given} "
            "for two images (a factory should build its classifier with num_classes=...)"
        )
    return model


def _accepted(factory: Callable[..., nn.Module], options: dict[str, Any]) -> dict[str, Any]:
    """The options ``factory`` takes: a plugin's ``def net(num_classes=10)`` need not accept ``in_chans``."""
    parameters = inspect.signature(factory).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return options
    return {key: value for key, value in options.items() if key in parameters}


def create_model_for_data(
    name: str,
    *,
    num_classes: int,
    input_size: tuple[int, int, int],
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
    **options: Any,
) -> Normalized:
    """:func:`create_model` fitted to a dataset: its facts fill only what the model's spec leaves open.

    A model with a fixed spec keeps it (its weights were made for it); a mismatch is then the
    caller's to report.
    """
    spec = model_spec(name)
    open_statistics = spec.mean is None or spec.input_size is None
    return create_model(
        name,
        num_classes=num_classes if spec.num_classes is None else None,
        input_size=tuple(input_size) if spec.input_size is None else None,
        mean=mean if open_statistics else None,
        std=std if open_statistics else None,
        **options,
    )


# Built-in architectures register themselves on import.
from . import digits, paper  # noqa: E402,F401
