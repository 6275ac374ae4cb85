"""The model registry, its decorator and the spec it records, apart from the package face so the model files
can import them (a model file importing ``fragscan.models`` itself would close a circle: the face imports them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from torch import nn

from ..base.errors import ConfigError
from ..base.registry import Registry


@dataclass(frozen=True)
class ModelSpec:
    """What the pipeline needs to know about a model's input, like timm's ``pretrained_cfg``.

    ``None`` means "whatever the data has": the spec of a built model (``Normalized.spec``) has
    every field set.
    """

    input_size: tuple[int, int, int] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    num_classes: int | None = None
    default_weights: str | None = None

    def fitted(
        self,
        *,
        num_classes: int | None = None,
        in_chans: int | None = None,
        input_size: tuple[int, int, int] | None = None,
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
    ) -> ModelSpec:
        """This spec with the open fields filled; explicit arguments win over the registered values.

        Without any statistics for the channel count, mean 0.5 / std 0.5 per channel is used [ours].
        """
        size = tuple(input_size) if input_size is not None else self.input_size
        channels = in_chans or (size[0] if size is not None else None)
        if size is not None and channels is not None and size[0] != channels:
            size = (channels, *size[1:])
        classes = num_classes if num_classes is not None else self.num_classes
        if size is None or classes is None:
            missing = "input_size" if size is None else "num_classes"
            raise ConfigError(f"the model's {missing} is open and no data was given to fill it; pass {missing}=...")

        def statistic(given, registered, fallback):
            for candidate in (given, registered):
                if candidate is not None and len(candidate) == size[0]:
                    return tuple(float(v) for v in candidate)
            return (fallback,) * size[0]

        return replace(
            self,
            input_size=size,
            num_classes=int(classes),
            mean=statistic(mean, self.mean, 0.5),
            std=statistic(std, self.std, 0.5),
        )


MODELS: Registry[Callable[..., nn.Module]] = Registry("model")


def register_model(
    name: str,
    *,
    input_size: tuple[int, int, int] | None = None,
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
    num_classes: int | None = None,
    default_weights: str | None = None,
    stems: bool = False,
    source: str | None = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register a factory ``(num_classes=K, in_chans=C, **kw) -> nn.Module`` taking normalised input.

    Leave ``num_classes`` / ``input_size`` / ``mean`` / ``std`` as ``None`` to adapt them to the data.
    ``stems=True``: the factory also takes ``stem="imagenet"|"cifar"`` (``--stem``).
    """
    spec = ModelSpec(
        tuple(input_size) if input_size is not None else None,
        tuple(mean) if mean is not None else None,
        tuple(std) if std is not None else None,
        int(num_classes) if num_classes is not None else None,
        default_weights,
    )

    def wrap(factory):
        return MODELS.register(name, factory, spec=spec, stems=stems, source=source)

    return wrap
