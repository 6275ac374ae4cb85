"""Facts about the machine a run records: the device and library versions.

On the ground floor: the scan, retraining and masks all read them, so none of those is where they live.
"""

from __future__ import annotations

import platform
from importlib import metadata

import torch

from ._version import __version__
from .errors import ConfigError

_VERSIONED = ("torch", "torchvision", "torchattacks", "timm", "numpy", "scipy", "pydantic", "safetensors")


def resolve_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise ConfigError(f"--device {requested!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but no CUDA device is visible; use --device cpu or auto")
    return device


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "fragscan": __version__}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions
