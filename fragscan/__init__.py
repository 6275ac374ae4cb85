"""fragscan: which parameters of a trained image classifier are fragile, robust or antifragile."""

import os as _os

# Nothing is downloaded at run time unless the user asks: timm/HF lookups stay offline.
_os.environ.setdefault("HF_HUB_OFFLINE", "1")

from ._version import __version__  # noqa: E402,F401
from .audit import Policy, audit  # noqa: E402
from .compare import compare  # noqa: E402
from .config import ScanConfig  # noqa: E402
from .data import create_dataset, list_datasets, register_dataset  # noqa: E402
from .errors import FragscanError  # noqa: E402
from .filters import SynapticFilter, register_filter  # noqa: E402
from .models import Normalized, create_model, list_models, register_model  # noqa: E402
from .masks import load_mask, mask_from_report, save_mask  # noqa: E402
from .report import Report, load_report  # noqa: E402
from .retrain import RetrainConfig, retrain  # noqa: E402
from .scan import ScanOutputs, scan, scan_to  # noqa: E402

__all__ = [
    "FragscanError",
    "Normalized",
    "Policy",
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
