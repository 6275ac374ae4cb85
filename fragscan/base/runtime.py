"""Facts about the machine a run records: the device and library versions.

On the ground floor: the scan, retraining and masks all read them, so none of those is where they live.
"""

from __future__ import annotations

import platform
from importlib import metadata

import torch

from .._version import __version__
from .errors import ConfigError

_VERSIONED = ("torch", "torchvision", "torchattacks", "timm", "numpy", "scipy", "pydantic", "safetensors")


def resolve_device(requested: str) -> torch.device:
    """The device ``requested`` names, when this machine has it; else a ConfigError naming those it has
    (torch itself would fail later, deep inside, on a device it was not built for or that is absent)."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
        names = {str(device), device.type if device.index == 0 else f"{device.type}:{device.index or 0}"}
    except RuntimeError:
        names = set()
    if not names & set(available_devices()):
        raise ConfigError(
            f"--device {requested!r} is not a device of this machine, which has {', '.join(available_devices())}; "
            "use one of them, or auto"
        )
    return device


def available_devices() -> list[str]:
    """The devices fragscan can run on here: cpu, each visible CUDA device, and Apple's mps where torch has it."""
    found = ["cpu"] + [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    return found + ["mps"] if torch.backends.mps.is_available() else found


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "fragscan": __version__}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions
