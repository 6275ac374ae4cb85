"""fragscan: which parameters of a trained image classifier are fragile, robust or antifragile."""

import os as _os

# Nothing is downloaded at run time unless the user asks: timm/HF lookups stay offline.
_os.environ.setdefault("HF_HUB_OFFLINE", "1")

from ._version import __version__  # noqa: E402,F401

# The public API, imported on first use (PEP 562): most of it needs torch, which takes seconds to
# import, and `fragscan --help` or a bad option should not wait for it.
_EXPORTS = {
    ".base.errors": ("ConfigError", "FragscanError", "InputError"),
    ".config": ("RetrainConfig", "ScanConfig"),
    ".data": ("create_dataset", "list_datasets", "register_dataset"),
    ".models": ("Normalized", "create_model", "list_models", "register_model"),
    ".outputs.auditing": ("AuditPolicy", "audit"),
    ".outputs.comparison": ("compare",),
    ".outputs.masks": ("load_mask", "mask_from_report", "save_mask"),
    ".outputs.retraining": ("retrain",),
    ".pipeline.scanning": ("scan",),
    ".pipeline.writing": ("ScanOutputs", "scan_to"),
    ".report": ("Report", "load_report"),
    ".sweep.filters": ("SynapticFilter", "register_filter"),
}
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module 'fragscan' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(_HOME[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOME])


__all__ = [
    "AuditPolicy",
    "ConfigError",
    "FragscanError",
    "InputError",
    "Normalized",
    "Report",
    "RetrainConfig",
    "ScanConfig",
    "ScanOutputs",
    "SynapticFilter",
    "audit",
    "compare",
    "create_dataset",
    "create_model",
    "list_datasets",
    "list_models",
    "load_mask",
    "load_report",
    "mask_from_report",
    "register_dataset",
    "register_filter",
    "register_model",
    "retrain",
    "save_mask",
    "scan",
    "scan_to",
]
