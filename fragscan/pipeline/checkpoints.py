"""Several checkpoints (e.g. training epochs) scanned into one report (method §8).

Each checkpoint is an ordinary scan with its own weights (and, with ``--eps auto``, its own ε, as
the source tuned ε per model; pass a fixed ``--eps`` to hold it constant). The report's body is the
last checkpoint's full scan, so single-checkpoint readers work unchanged; ``checkpoints`` adds every
checkpoint's baseline, scores, intervals and classes in order.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from ..base.errors import InputError
from ..config import ScanConfig
from ..report import CheckpointGroup, CheckpointReport, CheckpointScores, Report, UnfilteredReport

if TYPE_CHECKING:
    from ..sweep.engine import SweepEvent

# scanning.Analysis (a report and the model it analysed) and scanning.ScanInputs (a frozen dataclass);
# the scan passes its own function in, as scanning imports this module.
Analysis = TypeVar("Analysis")
Inputs = TypeVar("Inputs")

WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth")


def checkpoint_files(directory: str | Path) -> list[Path]:
    """Weights files in ``directory``, in natural order (epoch2 before epoch10)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"--checkpoints {str(directory)!r} is not a directory of weights files")
    files = [p for p in directory.iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES]
    if not files:
        raise InputError(f"--checkpoints {str(directory)!r} holds no {', '.join(WEIGHT_SUFFIXES)} files")

    def natural(path: Path):
        return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]

    return sorted(files, key=natural)


def _labels(paths: tuple[Path, ...]) -> list[str]:
    """Each file's stem, or ``folder/stem`` where stems repeat (run1/epoch10, run2/epoch10), so the
    columns of the HTML heatmap can be told apart."""
    stems = [Path(p).stem for p in paths]
    return [f"{Path(p).parent.name}/{stem}" if stems.count(stem) > 1 else stem for p, stem in zip(paths, stems)]


def _summary(report: Report, label: str) -> CheckpointReport:
    return CheckpointReport(
        label=label,
        weights=report.model.weights,
        weights_sha256=report.model.weights_sha256,
        eps_used=report.settings.eps_used,
        precision_used=report.settings.precision_used,
        precision_disagreement=report.settings.precision_disagreement,
        baseline=UnfilteredReport(
            clean=report.baseline.clean, adversarial=report.baseline.adversarial, samples=report.baseline.samples
        ),
        groups=[
            CheckpointGroup(
                name=group.name,
                filters={
                    f: CheckpointScores(scores=c.scores, intervals=c.intervals, classes=c.classes)
                    for f, c in group.filters.items()
                },
                summary_class=group.summary_class,
            )
            for group in report.groups
        ],
    )


def _labelled(progress: Callable[[SweepEvent], None] | None, label: str) -> Callable[[SweepEvent], None] | None:
    """Progress events naming the checkpoint in flight: each checkpoint sweeps the same groups again."""
    if progress is None:
        return None
    return lambda event: progress(replace(event, target=f"{label} · {event.target}"))


def scan_checkpoints(config: ScanConfig, analyse: Callable[[ScanConfig, Inputs], Analysis], inputs: Inputs) -> Analysis:
    """Each weights file scanned in turn by ``analyse`` (:func:`fragscan.pipeline.scanning.analyse`) with ``inputs``
    (weights file k's finished groups are kept in ``inputs.resume_dir/weights-k``), merged into one report."""
    from ..models.weights import load_state_dict

    for path in config.checkpoints:  # a missing or unreadable file fails now, not after the ones before it were scanned
        if not Path(path).is_file():
            raise InputError(f"checkpoint {str(path)!r} not found; pass existing weights files")
        load_state_dict(path)
    reports = []
    labels = _labels(config.checkpoints)
    for k, path in enumerate(config.checkpoints):
        # Only the last model is kept: it is the one the report's body analysed.
        analysis = analyse(
            config.model_copy(update={"checkpoints": (), "weights": path}),
            replace(
                inputs,
                resume_dir=None if inputs.resume_dir is None else Path(inputs.resume_dir) / f"weights-{k}",
                progress=_labelled(inputs.progress, f"{labels[k]} ({k + 1}/{len(labels)})"),
            ),
        )
        reports.append(analysis.report)
    last = reports[-1]
    report = last.model_copy(
        update={
            "settings": last.settings.model_copy(update={"checkpoints": config.checkpoints, "weights": None}),
            "checkpoints": [_summary(r, label) for r, label in zip(reports, labels)],
            "warnings": [f"{Path(p).name}: {w}" for p, r in zip(config.checkpoints, reports) for w in r.warnings],
            "run": last.run.model_copy(
                update={
                    "started_at": reports[0].run.started_at,
                    "duration_s": round(sum(r.run.duration_s for r in reports), 3),
                    "resumed_targets": sum(r.run.resumed_targets for r in reports),
                    "continued_targets": sum(r.run.continued_targets for r in reports),
                }
            ),
        }
    )
    return replace(analysis, report=report)
