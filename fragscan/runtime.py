"""Facts about the machine and files a run records: the device, library versions, a file's sha256.

On the ground floor: the scan, retraining and masks all read them, so none of those is where they live.
"""

from __future__ import annotations

import hashlib
import platform
from importlib import metadata
from pathlib import Path

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


def file_sha256(path: str | Path | None) -> str | None:
    if path is None:
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
