"""A scan's outputs on disk: :func:`scan_to` runs the scan (:mod:`fragscan.pipeline.scanning`),
resumable from the output directory, and writes its report, curves, page and retrain mask there."""

from __future__ import annotations

import shutil
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ..base.files import ensure_writable_dir, held, write_atomic
from ..base.plugins import load_plugins
from ..config import ScanConfig
from ..outputs.masks import Mask, default_granularity, mask_bytes, mask_from_report
from ..report import Report
from ..report.io import report_json
from .resume import DIRECTORY_NAME, discard_if_empty
from .scanning import ScanInputs, analyse, check_names


def write_scan_outputs(report: Report, directory: Path, mask: Mask | None = None) -> list[Path]:
    """Everything a scan leaves in its output directory, each written atomically: report.json,
    curves.csv (tidy long curves) and report.html, rendered from the report, and, given ``mask``
    (built from the weight values, which the report does not hold), mask.safetensors; without
    one, an earlier scan's mask.safetensors there is removed."""
    from ..report.html import render_html
    from ..report.tables import curves_csv

    directory = ensure_writable_dir(directory)
    # Render everything before writing anything: a rendering failure leaves no partial set.
    outputs = {
        directory / "report.json": report_json(report),
        directory / "curves.csv": curves_csv(report).encode(),
        directory / "report.html": render_html(report).encode(),
    }
    if mask is not None:
        outputs[directory / "mask.safetensors"] = mask_bytes(mask)
    for path, data in outputs.items():
        write_atomic(path, data)
    if mask is None:  # an earlier scan's mask would pass for this report's
        (directory / "mask.safetensors").unlink(missing_ok=True)
    return list(outputs)


class ScanOutputs(BaseModel):
    """What :func:`scan_to` wrote."""

    model_config = ConfigDict(frozen=True)

    report: Report
    written: list[Path] = Field(
        description="report.json, curves.csv, report.html and, when there is one, mask.safetensors"
    )
    no_mask: str | None = Field(description="why no mask.safetensors was written; None when one was")


def scan_to(config: ScanConfig | None, out: str | Path, **inputs) -> ScanOutputs:
    """:func:`scan`, then write its outputs into the directory ``out`` (created if missing):
    report.json, curves.csv, report.html and the default retrain mask, mask.safetensors, each
    atomically (:func:`write_scan_outputs`). ``inputs`` are :class:`ScanInputs` but ``resume_dir``.

    Names and ``out`` are checked before any model or data is loaded. Finished sweep targets are
    kept under ``out/.fragscan-checkpoints`` as they complete, so the same call after an
    interruption resumes (``resume=False`` discards them); they are removed once the outputs are
    written. The mask is built from the model the scan analysed, as it held it in memory.
    """
    config = config or ScanConfig()
    load_plugins(config.plugins)  # before the name checks, so plugin names are known
    check_names(config, model=inputs.get("model"), dataset=inputs.get("dataset"))
    directory = ensure_writable_dir(Path(out))
    resume_dir = directory / DIRECTORY_NAME
    with held(directory):  # a second scan into `out` would remove the resume store from under this one
        try:
            analysis = analyse(config, ScanInputs(**inputs, resume_dir=resume_dir))
        except BaseException:
            discard_if_empty(resume_dir)  # refused after opening it (Ray unreachable, say): nothing to resume
            raise
        report = analysis.report
        # A mask is for retraining the scanned weights, which `fragscan retrain` loads from a file.
        granularity = default_granularity(report)
        if report.model.weights is None:
            no_mask = "the model was scanned without a weights file"
        elif granularity is None:
            no_mask = "a global-scope scan without the pulse filter has no classes to mask by"
        else:
            no_mask = None
        mask = None if no_mask else mask_from_report(report, analysis.model.net, policy=granularity)
        written = write_scan_outputs(report, directory, mask=mask)
        shutil.rmtree(resume_dir, ignore_errors=True)  # the report now holds everything it did
    return ScanOutputs(report=report, written=written, no_mask=no_mask)
