"""The scan pipeline: config -> model and data -> adversary -> sweep -> scores -> classes -> Report."""

from __future__ import annotations

import copy
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch.utils.data import Dataset

from .._version import __version__
from ..base.errors import ConfigError
from ..base.files import ensure_writable_dir, file_sha256, held, write_atomic
from ..base.plugins import Plugin, load_plugins
from ..base.runtime import library_versions, resolve_device
from ..config import AdaptivePlan, ScanConfig
from ..data import DATASETS, create_dataset, dataset_spec, evaluation_tensors, sample_ranks
from ..models import Normalized, model_spec
from ..models.fitting import check_fits, model_for_data
from ..models.sanity import check_model, near_chance
from ..outputs.masks import Mask, default_granularity, mask_bytes, mask_from_report
from ..report import (
    ClassTriple,
    DatasetInfo,
    EngineReport,
    FilterCurve,
    GroupReport,
    IntervalTriple,
    LookReport,
    ModelInfo,
    NetworkGroup,
    PackedCorrectness,
    Report,
    RunInfo,
    ScoreTriple,
    Settings,
    SkippedGroupReport,
    Threat,
    ThreatAttack,
    ThreatBudget,
    UnfilteredReport,
)
from ..report.io import report_json
from ..scoring import adaptive, surface
from ..scoring.adaptive import Look, history
from ..scoring.assess import References, assess, budget_references
from ..scoring.confidence import LEVEL, pack_bits
from ..scoring.evidence import judge
from ..sweep import threats
from ..sweep.attacks import (
    Adversary,
    build_adversary,
    calibrate_eps,
    calibration_missed,
    check_attack,
    hyperparameters,
    scan_attack,
    uses_eps,
)
from ..sweep.batching import auto_batch_size
from ..sweep.engine import Curve, Measurement, SweepEvent, analysis_mode, arithmetic, measure
from ..sweep.filters import FILTERS
from ..sweep.groups import Group, SkippedGroup, parameter_groups, unmatched_glob
from .checkpoints import scan_checkpoints
from .executors import ExecutorOptions, Job, combined_info, profile_looks, run_targets, sweep_target, targets_of
from .resume import DIRECTORY_NAME, FinishedTarget, ResumeStore, discard_if_empty, tensor_digest

# Settings applied to the curves after the sweep: a resumed scan recomputes them from the stored curves.
SCORING_ONLY = {"baseline", "normalise_by", "tau", "classify", "bootstrap", "summary_filter", "summary_score"}


def scan_fingerprint(
    config: ScanConfig, model: Normalized, images, labels, eps: float, device: torch.device,
    budgets: tuple[float, ...] | None = None,
) -> dict:
    """Everything that decides the curves, so a resume store is only ever reused for the same scan;
    ``budgets``: a threat profile's, as resolved (``auto`` calibrated)."""
    # An adaptive scan's scoring settings decide where each sweep stops, so they decide its curves too.
    settings = config.model_dump(mode="json", exclude=SCORING_ONLY if config.adaptive is None else set())
    settings.pop("device")  # "auto" and "cpu" may name the same device; the resolved type is what counts
    return {
        **settings,
        "device_type": device.type,
        "eps_used": eps,
        **({} if budgets is None else {"threat_budgets": list(budgets)}),
        "weights_sha256": tensor_digest(model.net.state_dict()),
        "samples_sha256": tensor_digest({"images": images, "labels": labels}),
        "fragscan_version": __version__,
    }


def check_names(config: ScanConfig, *, model: Normalized | None = None, dataset: Dataset | None = None) -> None:
    """Fail fast on names no registry knows, before any model or data is loaded; the model and
    dataset names only where no ``model`` or ``dataset`` object stands in for them."""
    for filter_id in config.filters:
        FILTERS.entry(filter_id)
    if config.threat is None:
        check_attack(config.attack, config.eps, config.attack_space)
    else:
        threats.check(config)
    if model is None:
        model_spec(config.model)
    if dataset is None:
        DATASETS.entry(config.dataset)


def _filter_curve(
    curve: Curve, filter_id: str, references: References, config: ScanConfig, adaptive_plan: AdaptivePlan | None,
    profile: _Profile | None = None,
) -> FilterCurve:
    """One sweep scored on its own samples; adaptive sweeps at the plan's level, with their looks. A
    threat ``profile``'s curve is scored at the headline budget, with its surface beside it."""
    budgeted = None
    if profile is not None:
        budgeted = replace(curve, adversarial=threats.with_budgets(curve.adversarial, profile.resolved))
        curve = surface.at(budgeted, profile.resolved.headline)
    samples = curve.clean.shape[1]
    level = LEVEL if adaptive_plan is None else adaptive_plan.filter_level
    assessment = assess(curve, references.at(samples), config, level)
    scores, intervals = assessment.scores, assessment.intervals
    looks = None
    if adaptive_plan is not None:  # the looks by the rule the sweep stopped by: a profile's sees every budget
        looks = history(budgeted or curve, filter_id, references, config, adaptive_plan, profile and profile.looks)
    return FilterCurve(
        label=FILTERS.entry(filter_id).meta["label"],
        thresholds=curve.thresholds,
        positions=curve.positions,
        removed=curve.removed,
        changed=curve.changed,
        samples=samples,
        clean=assessment.clean,
        adversarial=assessment.adversarial,
        scores=ScoreTriple(clean=scores.clean, adversarial=scores.adversarial, difference=scores.difference),
        intervals=None
        if intervals is None
        else IntervalTriple(clean=intervals.clean, adversarial=intervals.adversarial, difference=intervals.difference),
        classes=ClassTriple(**assessment.classes),
        correct=PackedCorrectness(clean=pack_bits(curve.clean), adversarial=pack_bits(curve.adversarial)),
        looks=None if looks is None else [_look_report(look) for look in looks],
        stop=None if looks is None else looks[-1].stop,
        surface=None if budgeted is None else surface.surface(
            budgeted, profile.references, config, adaptive.planned_level(adaptive_plan, len(profile.references))
        ),
    )


def _look_report(look: Look) -> LookReport:
    return LookReport(
        samples=look.samples,
        classes=ClassTriple(**look.classes),
        intervals=IntervalTriple(**look.intervals),  # an adaptive scan always has a bootstrap (evidence rule)
        summary_class=None if look.summary is None else look.summary[0],
        summary_interval=None if look.summary is None else look.summary[1],
    )


@dataclass(frozen=True)
class Analysis:
    """A finished scan: its report, and the model it analysed (on the CPU, weights as scanned)."""

    report: Report
    model: Normalized


@dataclass(frozen=True)
class ScanInputs:
    """What a scan takes besides its config; the keyword arguments of :func:`scan` and :func:`scan_to`."""

    model: Normalized | None = None  # the model to scan, instead of building config.model
    dataset: Dataset | None = None  # (pixels in [0,1], label) samples, instead of loading config.dataset
    progress: Callable[[SweepEvent], None] | None = None  # called as sweep cells finish
    plugins: list[str] | None = None  # lines added to the report's list of plugins
    resume_dir: str | Path | None = None  # where finished targets are kept (a ResumeStore); None: nowhere
    resume: bool = True  # read back the finished targets in resume_dir; False: discard them
    executor: ExecutorOptions = ExecutorOptions()  # where the sweeps run; never changes a number
    check_groups: Callable[[list[str]], None] | None = None  # sees the group names before the sweep


@dataclass(frozen=True)
class _Samples:
    """The evaluation samples: the dataset, the ones drawn from it, their indices and seeded ranks."""

    dataset: Dataset
    images: torch.Tensor
    labels: torch.Tensor
    indices: list[int]
    ranks: torch.Tensor  # each sample's place in the seeded order (adaptive sampling's prefixes)


@dataclass(frozen=True)
class _Profile:
    """A threat profile as the scan resolved it, and the unfiltered network's reference per budget."""

    resolved: threats.Resolved
    references: list[References]
    looks: adaptive.Profile | None  # an adaptive scan's stopping rule for it; None: not adaptive, or one budget


@dataclass(frozen=True)
class _Measuring:
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
class _Swept:
    """Every target's finished sweep, and how many were read back from the resume store."""

    targets: list[str]
    finished: dict[str, FinishedTarget]
    resumed: int
    continued: int  # adaptive targets that went on from their saved looks
    adaptive_plan: AdaptivePlan | None


def scan(config: ScanConfig | None = None, **inputs) -> Report:
    """Run the analysis ``config`` describes and return the report; ``inputs`` are :class:`ScanInputs`.

    With ``config.checkpoints``, each is scanned in turn into one report (see :mod:`fragscan.pipeline.checkpoints`).
    ``model`` and ``dataset`` may be given as objects (a :class:`Normalized` model, a dataset of
    (pixels in [0,1], label)); otherwise they are built from the names in ``config``, the model
    fitted to the data (classes, channels, size) where its spec leaves them open. Plugins
    (entry points, ./plugins/, ``config.plugins``) are loaded first; ``plugins`` adds lines to
    the report's list.

    Nothing is written unless ``resume_dir`` is given: then each finished target is saved
    there as it completes, and a later call with the same settings (``resume=True``) reads them
    back instead of sweeping again; settings that differ raise a ConfigError. ``executor`` picks
    where the sweeps run (in this process, or on Ray workers); it never changes a number.
    """
    return analyse(config, ScanInputs(**inputs)).report


def analyse(config: ScanConfig | None = None, inputs: ScanInputs = ScanInputs()) -> Analysis:
    """:func:`scan`, also handing out the model it analysed (for a multi-checkpoint scan, the
    last checkpoint's, whose scan is the report's body): what outputs built from the weight
    values (masks) need, without loading the weights a second time. ``inputs.check_groups`` sees
    the group names before the sweep (an audit policy's globs), so a problem costs no sweep."""
    config = config or ScanConfig()
    loaded_plugins = load_plugins(config.plugins)
    check_names(config, model=inputs.model, dataset=inputs.dataset)
    if config.checkpoints:
        if inputs.model is not None:
            raise ConfigError("a multi-checkpoint scan builds its model per checkpoint; pass no model object")
        return scan_checkpoints(config, analyse, inputs)
    started = time.perf_counter()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    device = _device(config)
    samples = _prepare_data(config, inputs.dataset)
    model, weights_path = _build_model(config, inputs.model, samples)
    groups, skipped = _select_groups(config, model)
    if inputs.check_groups is not None:
        inputs.check_groups([g.name for g in groups])
    model, samples = _to_device(model, samples, device)

    warnings: list[str] = [f"plugin {p.describe(digest=False)}" for p in loaded_plugins if not p.loaded]
    warnings += list(getattr(model, "notes", ()))
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), analysis_mode(
        model, config.norm_mode
    ):
        batch_size = config.batch_size
        if batch_size == "auto":
            batch_size = auto_batch_size(model, samples.images, samples.labels)
        warnings += check_model(model, samples.images, samples.labels, batch_size)
        eps, adversary, resolved = _calibrate_adversary(config, model, samples, batch_size, warnings)
        measuring = _check_precision(config, model, samples, eps, batch_size, adversary, warnings)
        if resolved is not None:
            measuring = _threat_unfiltered(model, samples, measuring, resolved)
        swept = _sweep(config, inputs, model, groups, samples, measuring, device, loaded_plugins)
    model.cpu()
    for target in swept.targets:
        if swept.finished[target].device != device.type:
            warnings.append(f"{target} was swept on {swept.finished[target].device}, the baseline on {device.type}")
    measuring = replace(measuring, unfiltered=tuple(correct.cpu() for correct in measuring.unfiltered))
    profile = None
    if measuring.threat is not None:
        clean0, worst0 = measuring.unfiltered[0], threats.with_budgets(measuring.unfiltered[1], measuring.threat)
        looks = None if swept.adaptive_plan is None else profile_looks(
            config, swept.adaptive_plan, measuring.threat, (clean0, worst0), samples.ranks, len(groups)
        )
        profile = _Profile(measuring.threat, budget_references(clean0, worst0, samples.ranks, config), looks)
        warnings += _profile_warnings(config, measuring, worst0)
    warnings += _unfiltered_warnings(config, _headline(measuring), model.spec.num_classes, measuring.eps)
    references = References(_headline(measuring), samples.ranks, config.bootstrap, config.seed)
    group_reports, global_curves = _score(config, groups, swept, references, profile)
    report = _assemble_report(
        config, inputs, model, weights_path, samples, skipped, measuring, swept, group_reports, global_curves,
        device, loaded_plugins, warnings,
        RunInfo(
            started_at=started_at,
            duration_s=round(time.perf_counter() - started, 3),
            executor=inputs.executor.kind,
            resumed_targets=swept.resumed,
            continued_targets=swept.continued,
        ),
    )
    # Claims about a family (summary classes over the groups, threshold classes over the scan's
    # thresholds, a profile's classes over groups and budgets) need all its members: they are made
    # on the assembled report.
    return Analysis(surface.judge_budgets(judge(report)), model)


def _device(config: ScanConfig) -> torch.device:
    """The device the scan runs on; fp16 is refused on a CPU, where it is slower than exact fp32, and
    tf32, which a CPU does not have."""
    device = resolve_device(config.device)
    if config.precision == "fp16" and device.type == "cpu":
        raise ConfigError(
            "--precision fp16 runs ~20x slower than fp32 on a CPU; use --precision bf16 there (or fp32, exact)"
        )
    if config.precision == "tf32" and device.type == "cpu":
        raise ConfigError("--precision tf32 is CUDA's tensor-core arithmetic; use bf16 on a CPU (or fp32, exact)")
    return device


def _prepare_data(config: ScanConfig, dataset: Dataset | None) -> _Samples:
    """The dataset (given, or loaded by name) and the evaluation samples drawn from it with the seed."""
    if dataset is None:
        dataset = create_dataset(config.dataset, root=config.data_root, split=config.split, download=config.download)
    images, labels, indices = evaluation_tensors(dataset, config.max_samples, config.seed)
    return _Samples(dataset, images, labels, indices, sample_ranks(len(dataset), indices, config.seed))


def _build_model(
    config: ScanConfig, model: Normalized | None, samples: _Samples
) -> tuple[Normalized, Path | str | None]:
    """The model (given, or built by name and fitted to the data) and the weights file it holds, if any;
    checked to fit the samples either way."""
    weights_path = config.weights
    if model is None:
        # A model without weights keeps its initialisation: seeded, so the same scan repeats itself.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            model = model_for_data(
                config.model,
                config.dataset,
                samples.dataset,
                input_size=tuple(samples.images.shape[1:]),
                weights=config.weights,
                pretrained=config.pretrained,
                stem=config.stem,
            )
        weights_path = weights_path or model.spec.default_weights
    check_fits(model, config.model, config.dataset, tuple(samples.images.shape[1:]), int(samples.labels.max()))
    return model, weights_path


def _select_groups(config: ScanConfig, model: Normalized) -> tuple[list[Group], list[SkippedGroup]]:
    """The parameter groups to sweep (and those skipped, with why); a glob that matches nothing, or
    nothing left to sweep, is an error naming what the model does have."""
    groups, skipped = parameter_groups(model.net, config.include, config.select)
    if not groups:
        if skipped:  # the names matched: their values are what cannot be swept (a zero-initialised head)
            more = f" (+{len(skipped) - 1} more)" if len(skipped) > 1 else ""
            raise ConfigError(
                f"model {config.model!r} has nothing to sweep among the tensors selected: "
                f"{skipped[0].name!r} {skipped[0].reason}{more}; load trained weights (--weights) or select others"
            )
        every = parameter_groups(model.net, config.include)[0]
        if config.select and every:
            raise ConfigError(
                f"--select {','.join(config.select)} matches no analysable tensor of {config.model!r}; "
                f"its groups are named like {every[0].name!r} (see `fragscan scan --help`)"
            )
        raise ConfigError(f"model {config.model!r} has no Conv or Linear weight to analyse (see --include)")
    parameter_names = [name for name, _ in model.net.named_parameters()]
    for option, patterns, names in (
        ("--include", tuple(p for p in config.include if p not in ("bias", "norm")), parameter_names),
        ("--select", config.select, [g.name for g in (*groups, *skipped)]),
    ):
        missed = unmatched_glob(patterns, names)
        if missed is not None:
            raise ConfigError(
                f"{option} {missed!r} matches no {'parameter' if option == '--include' else 'analysable tensor'} "
                f"of {config.model!r}; its names look like {names[0]!r}"
            )
    return groups, skipped


def _to_device(model: Normalized, samples: _Samples, device: torch.device) -> tuple[Normalized, _Samples]:
    """The model and the evaluation samples on ``device``, where they stay for the whole sweep."""
    images, labels = samples.images, samples.labels
    if device.type == "cuda":  # pinned host memory: the one copy to the device is a direct DMA
        images, labels = images.pin_memory(), labels.pin_memory()
    images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
    return model.to(device), replace(samples, images=images, labels=labels)


def _calibrate_adversary(
    config: ScanConfig, model: Normalized, samples: _Samples, batch_size: int, warnings: list[str]
) -> tuple[float, Adversary, threats.Resolved | None]:
    """The attack's budget (``--eps auto``: bisected to the target accuracy) and the adversary built
    with it; a budget the attack ignores is added to ``warnings``. A threat profile: its headline
    budget, its adversary (:func:`fragscan.sweep.threats.profile_adversary`) and its resolved budgets."""
    if config.threat is not None:
        resolved = threats.resolve(config, model, samples.images, samples.labels, batch_size)
        adversary = threats.profile_adversary(config, model, resolved, samples.images, samples.labels, batch_size)
        return resolved.budgets[resolved.headline], adversary, resolved
    if config.eps == "auto":
        eps = calibrate_eps(
            partial(scan_attack, config, model), model, samples.images, samples.labels, batch_size, config.seed,
            config.eps_target,
        )
    else:
        eps = float(config.eps)
        if not uses_eps(config.attack):
            warnings.append(f"attack {config.attack} has no eps: --eps {eps} was not used")
    return eps, build_adversary(config, model, eps, samples.images, samples.labels, batch_size), None


def _threat_unfiltered(model: Normalized, samples: _Samples, measuring: _Measuring, resolved: threats.Resolved):
    """``measuring`` with the profile and each of its attacks' accuracy alone on the unfiltered network
    (in the sweep's arithmetic); a one-attack profile's is its measurement already."""
    if resolved.single:
        accuracies = (measuring.unfiltered[1].double().mean().item(),)
    else:
        with arithmetic(model, measuring.precision):
            each = measuring.adversary.each(model)
        accuracies = tuple(correct.double().mean().item() for per_budget in each for correct in per_budget)
    return replace(measuring, threat=resolved, attack_accuracies=accuracies)


def _headline(measuring: _Measuring) -> Measurement:
    """The unfiltered network's measurement at the headline budget (a plain scan's as it is)."""
    if measuring.threat is None:
        return measuring.unfiltered
    clean, adversarial = measuring.unfiltered
    return clean, threats.with_budgets(adversarial, measuring.threat)[:, measuring.threat.headline]


def _check_precision(
    config: ScanConfig, model: Normalized, samples: _Samples, eps: float, batch_size: int, adversary: Adversary,
    warnings: list[str],
) -> _Measuring:
    """The unfiltered network measured in fp32, and in the reduced ``--precision`` when asked: that
    one is used unless it changes more samples' correctness than the tolerance (then a warning)."""
    images, labels = samples.images, samples.labels
    with arithmetic(model, "fp32"):
        unfiltered = measure(model, images, labels, adversary, batch_size)
    precision, disagreement = config.precision, None
    if precision != "fp32":
        with arithmetic(model, precision):
            reduced = measure(model, images, labels, adversary, batch_size)
        # a threat profile's adversarial bits are [samples, budgets]: a sample differs at any budget
        changed = (reduced[1] != unfiltered[1]).reshape(len(unfiltered[0]), -1).any(1)
        disagreement = ((reduced[0] != unfiltered[0]) | changed).double().mean().item()
        if disagreement > config.precision_tolerance:
            warnings.append(
                f"--precision {precision} changed the clean or adversarial correctness of "
                f"{disagreement:.1%} of samples on the unfiltered network, above "
                f"--precision-tolerance {config.precision_tolerance:.1%}: the sweep ran in fp32"
            )
            precision = "fp32"
        else:
            unfiltered = reduced  # the curves' own arithmetic, so unchanged cells match the rest
    return _Measuring(eps, batch_size, adversary, unfiltered, precision, disagreement)


def _sweep(
    config: ScanConfig, inputs: ScanInputs, model: Normalized, groups: list[Group], samples: _Samples,
    measuring: _Measuring, device: torch.device, plugins: list[Plugin],
) -> _Swept:
    """Every target's curves: read back from the resume store where finished, the rest swept by the
    executor (in this process, or on Ray workers that receive what was measured here once); an
    adaptive target interrupted after some looks goes on from the looks the store kept."""
    targets = targets_of(config, groups)
    adaptive_plan = None
    if config.adaptive is not None:
        adaptive_plan = adaptive.plan(config.adaptive, len(samples.indices), len(groups))
    images, labels, batch_size = samples.images, samples.labels, measuring.batch_size
    store, fingerprint = None, None
    if inputs.resume_dir is not None:
        fingerprint = scan_fingerprint(
            config, model, images, labels, measuring.eps, device,
            None if measuring.threat is None else measuring.threat.budgets,
        )
        store = ResumeStore(inputs.resume_dir, fingerprint, resume=inputs.resume)
    finished = {t: store.load(t) for t in targets if store is not None and t in store}
    resumed = len(finished)
    pending = [t for t in targets if t not in finished]
    # Read (and checked) before any sweep, so that a damaged file costs no work.
    saved_looks = {}
    if store is not None and adaptive_plan is not None:
        loaded = {t: store.load_look(t, config.filters, adaptive_plan.schedule) for t in pending}
        saved_looks = {t: p for t, p in loaded.items() if p is not None}
    steps_per_target = len(config.filters) * config.thresholds * (adaptive_plan.looks if adaptive_plan else 1)
    adversary = measuring.adversary
    finished |= run_targets(
        pending,
        local=lambda target, forward: sweep_target(
            model, groups, target, config, images, labels, adversary, batch_size, forward, measuring.unfiltered,
            measuring.precision, samples.ranks, saved_look=saved_looks.get(target),
            keep_look=None if store is None else partial(store.save_look, target), threat=measuring.threat,
        ),
        job=lambda: Job(
            config=config,
            model=copy.deepcopy(model).cpu(),
            images=images.cpu(),
            labels=labels.cpu(),
            eps=measuring.eps,
            crafted=threats.crafted_once(adversary, images, labels),
            batch_size=batch_size,
            precision=measuring.precision,
            plugins=tuple(p for p in plugins if p.loaded),
            unfiltered=tuple(c.cpu() for c in measuring.unfiltered),
            ranks=samples.ranks,
            saved_looks=saved_looks,
            resume_dir=None if store is None else str(store.directory.resolve()),
            fingerprint=fingerprint,
            threat=measuring.threat,
        ),
        options=inputs.executor,
        store=store,
        progress=inputs.progress,
        steps_per_target=steps_per_target,
        total_steps=len(targets) * steps_per_target,
        done_steps=len(finished) * steps_per_target,
    )
    return _Swept(targets, finished, resumed, len(saved_looks), adaptive_plan)


def _unfiltered_warnings(config: ScanConfig, unfiltered: Measurement, num_classes: int, eps: float) -> list[str]:
    """What the unfiltered network's accuracy says about the scan: an attack that defeats every sample,
    a network near chance, an ``--eps auto`` that missed its target."""
    clean, adversarial = (correct.double().mean().item() for correct in unfiltered)
    warnings = []
    if adversarial == 0:
        warnings.append(
            "the attack defeats every sample of the unfiltered network: adversarial scores are undefined; lower --eps"
        )
    warnings += filter(None, [near_chance(clean, num_classes)])
    if config.eps == "auto" and config.threat is None:  # a profile's auto budgets: _profile_warnings
        warnings += filter(None, [calibration_missed(clean, adversarial, config.eps_target, config.attack, eps)])
    return warnings


def _profile_warnings(config: ScanConfig, measuring: _Measuring, worst0: torch.Tensor) -> list[str]:
    """What a threat profile's unfiltered accuracies say: an ``auto`` budget that missed its target
    (judged by its attack alone, as it was calibrated), a budget other than the headline that defeats
    every sample (the headline's is the baseline warning)."""
    resolved, clean = measuring.threat, measuring.unfiltered[0].double().mean().item()
    alone = dict(zip(resolved.entries(), measuring.attack_accuracies))
    warnings = [
        missed for name, eps in resolved.calibrated
        if (missed := calibration_missed(clean, alone[(name, eps)], config.eps_target, name, eps)) is not None
    ]
    return warnings + [
        f"the threat profile defeats every sample at ε={eps:g}: adversarial scores there are undefined"
        for i, eps in enumerate(resolved.budgets)
        if i != resolved.headline and not worst0[:, i].any()
    ]


def _score(
    config: ScanConfig, groups: list[Group], swept: _Swept, references: References, profile: _Profile | None
) -> tuple[list[GroupReport], dict[str, FilterCurve] | None]:
    """The curves scored and classed against the unfiltered ``references``: per group (local scope), or
    the one global target's curves; a threat ``profile``'s at its headline budget, with their surfaces."""

    def filter_curves(target: str) -> dict[str, FilterCurve]:
        curves = swept.finished[target].curves
        return {
            f: _filter_curve(curves[f], f, references, config, swept.adaptive_plan, profile) for f in config.filters
        }

    if config.scope == "global":
        return [], filter_curves("global")
    group_reports = []
    for group in groups:
        per_filter = filter_curves(group.name)
        group_reports.append(
            GroupReport(
                name=group.name,
                module_type=group.module_type,
                numel=group.parameter.numel(),
                shape=list(group.shape),
                filters=per_filter,
                samples=max(curve.samples for curve in per_filter.values()),
                # provisional: the group claim is made by evidence.judge, at the level simultaneous
                # over the groups (and an adaptive scan's looks), once every group is scored
                summary_class=getattr(per_filter[config.summary_filter].classes, config.summary_score),
            )
        )
    return group_reports, None


def _assemble_report(
    config: ScanConfig, inputs: ScanInputs, model: Normalized, weights_path: Path | str | None, samples: _Samples,
    skipped: list[SkippedGroup], measuring: _Measuring, swept: _Swept, group_reports: list[GroupReport],
    global_curves: dict[str, FilterCurve] | None, device: torch.device, plugins: list[Plugin], warnings: list[str],
    run: RunInfo,
) -> Report:
    """The report: what was scanned (model, data, settings as used), the baseline, the scored curves."""
    spec, dataset, indices, unfiltered = model.spec, samples.dataset, samples.indices, _headline(measuring)
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
            attack_parameters=None if config.threat else hyperparameters(scan_attack(config, model, measuring.eps)),
            batch_size_used=measuring.batch_size,
            device_used=str(device),
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
        groups=group_reports,
        skipped=[SkippedGroupReport(name=s.name, reason=s.reason) for s in skipped],
        network=_network(config, model),
        global_=global_curves,
        plugins=[p.describe() for p in plugins] + list(inputs.plugins or []),
        warnings=warnings,
        engine=EngineReport(**{k: v for k, v in asdict(engine_info).items() if k in EngineReport.model_fields}),
        threat=None if measuring.threat is None else _threat_report(config, model, measuring),
        run=run,
    )


def _network(config: ScanConfig, model: Normalized) -> list[NetworkGroup] | None:
    """With ``--select``, every analysable tensor of the whole network, so that a comparison by role
    (first conv, relative depth) places the selected groups in the network, not in the selection."""
    if not config.select:
        return None
    every = parameter_groups(model.net, config.include)[0]
    return [NetworkGroup(name=g.name, module_type=g.module_type) for g in every]


def _threat_report(config: ScanConfig, model: Normalized, measuring: _Measuring) -> Threat:
    resolved = measuring.threat
    worst = threats.with_budgets(measuring.unfiltered[1], resolved)
    return Threat(
        spec=resolved.spec,
        budgets=list(resolved.budgets),
        headline=resolved.budgets[resolved.headline],
        attacks=[
            ThreatAttack(
                attack=name, eps=eps, adversarial=accuracy,
                parameters=hyperparameters(scan_attack(config, model, eps, name)),
            )
            for (name, eps), accuracy in zip(resolved.entries(), measuring.attack_accuracies)
        ],
        worst=[
            ThreatBudget(eps=eps, adversarial=worst[:, i].double().mean().item(), correct=pack_bits(worst[:, i]))
            for i, eps in enumerate(resolved.budgets)
        ],
    )


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
