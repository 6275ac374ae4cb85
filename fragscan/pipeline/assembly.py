"""A scan's report assembled from what the pipeline (:mod:`fragscan.pipeline.scanning`) measured and
scored: what was scanned, how every network was measured, the sweeps and their scored curves."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from .._version import __version__
from ..base.files import file_sha256
from ..base.runtime import library_versions
from ..config import AdaptivePlan, AttackPart, ScanConfig, SweepPart
from ..data import DATASETS, dataset_spec
from ..models import Normalized
from ..report import (
    DatasetInfo,
    EngineReport,
    FilterCurve,
    GroupReport,
    ModelInfo,
    NetworkGroup,
    PackedCorrectness,
    Report,
    RunInfo,
    Settings,
    SkippedGroupReport,
    Threat,
    ThreatAttack,
    ThreatBudget,
    UnfilteredReport,
)
from ..scoring.confidence import pack_bits
from ..sweep import threats
from ..sweep.attacks import Adversary, hyperparameters, scan_attack
from ..sweep.engine import Measurement
from ..sweep.groups import SkippedGroup, parameter_groups
from .executors import combined_info
from .resume import FinishedTarget


@dataclass(frozen=True)
class Samples:
    """The evaluation samples: the dataset, the ones drawn from it, their indices and seeded ranks."""

    dataset: Dataset
    images: torch.Tensor
    labels: torch.Tensor
    indices: list[int]
    ranks: torch.Tensor  # each sample's place in the seeded order (adaptive sampling's prefixes)


@dataclass(frozen=True)
class Measuring:
    """How every network is measured (budget, batch size, adversary, ``precision``), and the
    unfiltered network's measurement so."""

    eps: float
    batch_size: int
    adversary: Adversary
    unfiltered: Measurement  # a threat profile's adversarial correctness is [samples, budgets]
    precision: str  # what the scan settled on: fp32 when the reduced precision broke the tolerance
    precision_disagreement: float | None
    threat: threats.Resolved | None = None
    attack_accuracies: tuple[float, ...] = ()  # a threat profile's: each entry's attack alone, entries' order


@dataclass(frozen=True)
class Swept:
    """Every target's finished sweep, and how many were read back from the resume store."""

    targets: list[str]
    finished: dict[str, FinishedTarget]
    resumed: int
    continued: int  # adaptive targets that went on from their saved looks
    adaptive_plan: AdaptivePlan | None  # the looks every sweep was planned with; None: all samples at once


@dataclass(frozen=True)
class Scanned:
    """What was scanned: the model (and the weights file it holds, if any) on ``device``, the samples,
    and the groups left out, with why."""

    model: Normalized
    weights_path: Path | str | None
    samples: Samples
    skipped: list[SkippedGroup]
    device: torch.device


@dataclass(frozen=True)
class Scored:
    """The sweeps' curves scored and classed: per group (local scope), or the global target's."""

    groups: list[GroupReport]
    global_: dict[str, FilterCurve] | None


def headline(measuring: Measuring) -> Measurement:
    """The unfiltered network's measurement at the headline budget (a plain scan's as it is)."""
    if measuring.threat is None:
        return measuring.unfiltered
    clean, adversarial = measuring.unfiltered
    return clean, threats.with_budgets(adversarial, measuring.threat)[:, measuring.threat.headline]


def assemble_report(
    config: ScanConfig, scanned: Scanned, measuring: Measuring, swept: Swept, scored: Scored, plugins: list[str],
    warnings: list[str], run: RunInfo,
) -> Report:
    """The report: what was scanned (model, data, settings as used), the unfiltered network's measurement,
    the scored curves."""
    model, weights_path, samples = scanned.model, scanned.weights_path, scanned.samples
    spec, dataset, indices, unfiltered = model.spec, samples.dataset, samples.indices, headline(measuring)
    spec_dataset = dataset_spec(config.dataset) if config.dataset in DATASETS else None
    engine_info = combined_info([swept.finished[t].info for t in swept.targets])
    return Report(
        fragscan_version=__version__,
        model=ModelInfo(
            name=config.model,
            weights=None if weights_path is None else str(weights_path),
            weights_sha256=file_sha256(weights_path),
            input_size=list(spec.input_size),
            mean=list(spec.mean),
            std=list(spec.std),
            num_classes=spec.num_classes,
            parameters=sum(p.numel() for p in model.parameters()),
        ),
        dataset=DatasetInfo(
            name=config.dataset,
            split=config.split,
            root=None if config.data_root is None else str(config.data_root),
            size=len(dataset),
            samples=len(indices),
            selection="all samples in order"
            if len(indices) == len(dataset)
            else f"{len(indices)} drawn without replacement by torch.randperm(seed={config.seed}), sorted",
            # the held-out validation split says how it was drawn (fragscan.data.hold_out_val)
            description="; ".join(
                filter(None, [spec_dataset.description if spec_dataset else "", getattr(dataset, "holdout", "")])
            ),
        ),
        settings=Settings(
            **{**config.model_dump(), "adaptive": swept.adaptive_plan},
            eps_used=measuring.eps,
            attack_parameters=None if config.threat else hyperparameters(
                scan_attack(config.attack_part, model, measuring.eps)
            ),
            batch_size_used=measuring.batch_size,
            device_used=str(scanned.device),
            precision_used=measuring.precision,
            precision_disagreement=measuring.precision_disagreement,
            versions=library_versions(),
        ),
        baseline=UnfilteredReport(
            clean=unfiltered[0].double().mean().item(),
            adversarial=unfiltered[1].double().mean().item(),
            samples=len(indices),
            correct=PackedCorrectness(clean=pack_bits(unfiltered[0]), adversarial=pack_bits(unfiltered[1])),
        ),
        groups=scored.groups,
        skipped=[SkippedGroupReport(name=s.name, reason=s.reason) for s in scanned.skipped],
        network=_network(config.sweep_part, model),
        global_=scored.global_,
        plugins=plugins,
        warnings=warnings,
        engine=EngineReport(**{k: v for k, v in asdict(engine_info).items() if k in EngineReport.model_fields}),
        threat=None if measuring.threat is None else _threat_report(config.attack_part, model, measuring),
        run=run,
    )


def _network(sweep_part: SweepPart, model: Normalized) -> list[NetworkGroup] | None:
    """With ``--select``, every analysable tensor of the whole network, so that a comparison by role
    (first conv, relative depth) places the selected groups in the network, not in the selection."""
    if not sweep_part.select:
        return None
    every = parameter_groups(model.net, sweep_part.include)[0]
    return [NetworkGroup(name=g.name, module_type=g.module_type) for g in every]


def _threat_report(attack_part: AttackPart, model: Normalized, measuring: Measuring) -> Threat:
    resolved = measuring.threat
    worst = threats.with_budgets(measuring.unfiltered[1], resolved)
    return Threat(
        spec=resolved.spec,
        budgets=list(resolved.budgets),
        headline=resolved.budgets[resolved.headline],
        attacks=[
            ThreatAttack(
                attack=name, eps=eps, adversarial=accuracy,
                parameters=hyperparameters(scan_attack(attack_part, model, eps, name)),
            )
            for (name, eps), accuracy in zip(resolved.entries(), measuring.attack_accuracies)
        ],
        worst=[
            ThreatBudget(eps=eps, adversarial=worst[:, i].double().mean().item(), correct=pack_bits(worst[:, i]))
            for i, eps in enumerate(resolved.budgets)
        ],
    )
