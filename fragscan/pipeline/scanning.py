"""The scan pipeline: config -> model and data -> adversary -> sweep -> scores -> classes -> Report."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import torch
from torch.utils.data import Dataset

from .._version import __version__
from ..base.errors import ConfigError
from ..base.plugins import Plugin, load_plugins
from ..base.runtime import resolve_device
from ..config import AdaptivePlan, AttackPart, DataPart, RuntimePart, ScanConfig, ScoringPart, SweepPart
from ..data import DATASETS, create_dataset, evaluation_tensors, sample_ranks
from ..models import Normalized, model_spec
from ..models.fitting import check_fits, model_for_data
from ..models.sanity import check_model, near_chance
from ..report import (
    ClassTriple,
    FilterCurve,
    GroupReport,
    IntervalTriple,
    LookReport,
    PackedCorrectness,
    Report,
    RunInfo,
    ScoreTriple,
)
from ..scoring import adaptive, surface
from ..scoring.adaptive import Look, history
from ..scoring.assess import References, assess, budget_references
from ..scoring.confidence import LEVEL, pack_bits
from ..scoring.evidence import judge_thresholds, summary_claim
from ..sweep import threats
from ..sweep.attacks import (
    Adversary,
    build_adversary,
    calibrate_eps,
    calibration_missed,
    check_attack,
    scan_attack,
    uses_eps,
)
from ..sweep.batching import auto_batch_size
from ..sweep.engine import Curve, Measurement, SweepEvent, analysis_mode, arithmetic, measure
from ..sweep.filters import FILTERS
from ..sweep.groups import Group, SkippedGroup, parameter_groups, unmatched_glob
from .assembly import Measuring, Samples, Scanned, Scored, Swept, assemble_report, headline
from .checkpoints import scan_checkpoints
from .executors import ExecutorOptions, Job, StoppingRule, run_targets, sweep_target, targets_of
from .resume import ResumeStore, tensor_digest

# Settings applied to the curves after the sweep: a resumed scan recomputes them from the stored curves.
# (The seed also draws the samples and seeds the attacks.)
SCORING_ONLY = {field.name for field in fields(ScoringPart)} - {"seed"}


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
        threats.check(config.attack_part)
    if model is None:
        model_spec(config.model)
    if dataset is None:
        DATASETS.entry(config.dataset)


def _filter_curve(
    curve: Curve, filter_id: str, references: References, scoring: ScoringPart, adaptive_plan: AdaptivePlan | None,
    profile: _Profile | None = None,
) -> FilterCurve:
    """One sweep scored on its own samples; adaptive sweeps at the plan's level, with their looks. A
    threat ``profile``'s curve is scored at the headline budget, with its surface beside it."""
    budgeted = None
    if profile is not None:
        budgeted = replace(curve, adversarial=threats.with_budgets(curve.adversarial, profile.resolved))
        curve = surface.at(budgeted, profile.resolved.headline)
    samples = curve.clean.shape[1]
    level = LEVEL if adaptive_plan is None else adaptive.look_levels(adaptive_plan, samples)[0]  # its last look's
    assessment = assess(curve, references.at(samples), scoring, level)
    scores, intervals = assessment.scores, assessment.intervals
    looks = None
    if adaptive_plan is not None:  # the looks by the rule the sweep stopped by: a profile's sees every budget
        looks = history(budgeted or curve, filter_id, references, scoring, adaptive_plan, profile and profile.looks)
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
            budgeted, profile.references, scoring,
            adaptive.planned_level(adaptive_plan, len(profile.references), samples),
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
class _Profile:
    """A threat profile as the scan resolved it, and the unfiltered network's reference per budget."""

    resolved: threats.Resolved
    references: list[References]
    looks: adaptive.Profile | None  # an adaptive scan's stopping rule for it; None: not adaptive, or one budget


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
    device = _device(config.runtime_part)
    samples = _prepare_data(config.data_part, inputs.dataset)
    model, weights_path = _build_model(config.data_part, inputs.model, samples)
    groups, skipped = _select_groups(config.sweep_part, model, config.model)
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
        eps, adversary, resolved = _calibrate_adversary(config.attack_part, model, samples, batch_size, warnings)
        measuring = _check_precision(config.runtime_part, model, samples, eps, batch_size, adversary, warnings)
        if resolved is not None:
            measuring = _threat_unfiltered(model, samples, measuring, resolved)
        # The adaptive plan, the unfiltered network's references and a threat profile's: made once, for the
        # sweep's stopping rule and the scoring of its curves alike.
        adaptive_plan = None if config.adaptive is None else adaptive.plan(
            config.adaptive, len(samples.indices), len(groups)
        )
        scoring = config.scoring_part
        references = References(headline(measuring), samples.ranks, scoring.bootstrap, scoring.seed)
        profile = None if measuring.threat is None else _profile(
            scoring, measuring, adaptive_plan, samples.ranks, len(groups)
        )
        stopping = None if adaptive_plan is None else StoppingRule(
            adaptive_plan, scoring, references, profile and profile.looks
        )
        swept = _sweep(config, inputs, model, groups, samples, measuring, stopping, device, loaded_plugins)
    model.cpu()
    for target in swept.targets:
        if swept.finished[target].device != device.type:
            where = swept.finished[target].device
            warnings.append(f"{target} was swept on {where}, the unfiltered network on {device.type}")
    measuring = replace(measuring, unfiltered=tuple(correct.cpu() for correct in measuring.unfiltered))
    if profile is not None:
        warnings += _profile_warnings(config.attack_part, measuring)
    warnings += _unfiltered_warnings(config.attack_part, headline(measuring), model.spec.num_classes, measuring.eps)
    scored = _score(config.sweep_part, scoring, groups, swept, references, profile)
    plugins = [p.describe() for p in loaded_plugins] + list(inputs.plugins or [])
    report = assemble_report(
        config, Scanned(model, weights_path, samples, skipped, device), measuring, swept, scored, plugins, warnings,
        RunInfo(
            started_at=started_at,
            duration_s=round(time.perf_counter() - started, 3),
            executor=inputs.executor.kind,
            resumed_targets=swept.resumed,
            continued_targets=swept.continued,
        ),
    )
    # Claims about a family over the report (threshold classes over the scan's thresholds, a profile's
    # classes over groups and budgets) need all its members: they are made on the assembled report.
    return Analysis(surface.judge_budgets(judge_thresholds(report)), model)


def _device(runtime: RuntimePart) -> torch.device:
    """The device the scan runs on; fp16 is refused on a CPU, where it is slower than exact fp32, and
    tf32, which a CPU does not have."""
    device = resolve_device(runtime.device)
    if runtime.precision == "fp16" and device.type == "cpu":
        raise ConfigError(
            "--precision fp16 runs ~20x slower than fp32 on a CPU; use --precision bf16 there (or fp32, exact)"
        )
    if runtime.precision == "tf32" and device.type == "cpu":
        raise ConfigError("--precision tf32 is CUDA's tensor-core arithmetic; use bf16 on a CPU (or fp32, exact)")
    return device


def _prepare_data(data: DataPart, dataset: Dataset | None) -> Samples:
    """The dataset (given, or loaded by name) and the evaluation samples drawn from it with the seed."""
    if dataset is None:
        dataset = create_dataset(data.dataset, root=data.data_root, split=data.split, download=data.download)
    images, labels, indices = evaluation_tensors(dataset, data.max_samples, data.seed)
    return Samples(dataset, images, labels, indices, sample_ranks(len(dataset), indices, data.seed))


def _build_model(data: DataPart, model: Normalized | None, samples: Samples) -> tuple[Normalized, Path | str | None]:
    """The model (given, or built by name and fitted to the data) and the weights file it holds, if any;
    checked to fit the samples either way."""
    weights_path = data.weights
    if model is None:
        # A model without weights keeps its initialisation: seeded, so the same scan repeats itself.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(data.seed)
            model = model_for_data(
                data.model,
                data.dataset,
                samples.dataset,
                input_size=tuple(samples.images.shape[1:]),
                weights=data.weights,
                pretrained=data.pretrained,
                stem=data.stem,
            )
        weights_path = weights_path or model.spec.default_weights
    check_fits(model, data.model, data.dataset, tuple(samples.images.shape[1:]), int(samples.labels.max()))
    return model, weights_path


def _select_groups(
    sweep_part: SweepPart, model: Normalized, model_name: str
) -> tuple[list[Group], list[SkippedGroup]]:
    """The parameter groups to sweep (and those skipped, with why); a glob that matches nothing, or
    nothing left to sweep, is an error naming what the model (``model_name``) does have."""
    include, select = sweep_part.include, sweep_part.select
    groups, skipped = parameter_groups(model.net, include, select)
    if not groups:
        if skipped:  # the names matched: their values are what cannot be swept (a zero-initialised head)
            more = f" (+{len(skipped) - 1} more)" if len(skipped) > 1 else ""
            raise ConfigError(
                f"model {model_name!r} has nothing to sweep among the tensors selected: "
                f"{skipped[0].name!r} {skipped[0].reason}{more}; load trained weights (--weights) or select others"
            )
        every = parameter_groups(model.net, include)[0]
        if select and every:
            raise ConfigError(
                f"--select {','.join(select)} matches no analysable tensor of {model_name!r}; "
                f"its groups are named like {every[0].name!r} (see `fragscan scan --help`)"
            )
        raise ConfigError(f"model {model_name!r} has no Conv or Linear weight to analyse (see --include)")
    parameter_names = [name for name, _ in model.net.named_parameters()]
    for option, patterns, names in (
        ("--include", tuple(p for p in include if p not in ("bias", "norm")), parameter_names),
        ("--select", select, [g.name for g in (*groups, *skipped)]),
    ):
        missed = unmatched_glob(patterns, names)
        if missed is not None:
            raise ConfigError(
                f"{option} {missed!r} matches no {'parameter' if option == '--include' else 'analysable tensor'} "
                f"of {model_name!r}; its names look like {names[0]!r}"
            )
    return groups, skipped


def _to_device(model: Normalized, samples: Samples, device: torch.device) -> tuple[Normalized, Samples]:
    """The model and the evaluation samples on ``device``, where they stay for the whole sweep."""
    images, labels = samples.images, samples.labels
    if device.type == "cuda":  # pinned host memory: the one copy to the device is a direct DMA
        images, labels = images.pin_memory(), labels.pin_memory()
    images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
    return model.to(device), replace(samples, images=images, labels=labels)


def _calibrate_adversary(
    attack_part: AttackPart, model: Normalized, samples: Samples, batch_size: int, warnings: list[str]
) -> tuple[float, Adversary, threats.Resolved | None]:
    """The attack's budget (``--eps auto``: bisected to the target accuracy) and the adversary built
    with it; a budget the attack ignores is added to ``warnings``. A threat profile: its headline
    budget, its adversary (:func:`fragscan.sweep.threats.profile_adversary`) and its resolved budgets."""
    if attack_part.threat is not None:
        resolved = threats.resolve(attack_part, model, samples.images, samples.labels, batch_size)
        adversary = threats.profile_adversary(
            attack_part, model, resolved, samples.images, samples.labels, batch_size
        )
        return resolved.budgets[resolved.headline], adversary, resolved
    if attack_part.eps == "auto":
        eps = calibrate_eps(
            partial(scan_attack, attack_part, model), model, samples.images, samples.labels, batch_size,
            attack_part.seed, attack_part.eps_target,
        )
    else:
        eps = float(attack_part.eps)
        if not uses_eps(attack_part.attack):
            warnings.append(f"attack {attack_part.attack} has no eps: --eps {eps} was not used")
    return eps, build_adversary(attack_part, model, eps, samples.images, samples.labels, batch_size), None


def _threat_unfiltered(model: Normalized, samples: Samples, measuring: Measuring, resolved: threats.Resolved):
    """``measuring`` with the profile and each of its attacks' accuracy alone on the unfiltered network
    (in the sweep's arithmetic); a one-attack profile's is its measurement already."""
    if resolved.single:
        accuracies = (measuring.unfiltered[1].double().mean().item(),)
    else:
        with arithmetic(model, measuring.precision):
            each = measuring.adversary.each(model)
        accuracies = tuple(correct.double().mean().item() for per_budget in each for correct in per_budget)
    return replace(measuring, threat=resolved, attack_accuracies=accuracies)


def _profile(
    scoring: ScoringPart, measuring: Measuring, adaptive_plan: AdaptivePlan | None, ranks: torch.Tensor, groups: int
) -> _Profile:
    """The scan's threat profile with the unfiltered network's reference per budget and, for an adaptive
    scan of more than one attack or budget, the stopping rule that waits for every budget's classes."""
    resolved = measuring.threat
    worst0 = threats.with_budgets(measuring.unfiltered[1], resolved)
    references = budget_references(measuring.unfiltered[0], worst0, ranks, scoring)
    looks = None
    if adaptive_plan is not None and not resolved.single:
        looks = adaptive.profile(adaptive_plan, references, resolved.headline, groups)
    return _Profile(resolved, references, looks)


def _check_precision(
    runtime: RuntimePart, model: Normalized, samples: Samples, eps: float, batch_size: int, adversary: Adversary,
    warnings: list[str],
) -> Measuring:
    """The unfiltered network measured in fp32, and in the reduced ``--precision`` when asked: that
    one is used unless it changes more samples' correctness than the tolerance (then a warning)."""
    images, labels = samples.images, samples.labels
    with arithmetic(model, "fp32"):
        unfiltered = measure(model, images, labels, adversary, batch_size)
    precision, disagreement = runtime.precision, None
    if precision != "fp32":
        with arithmetic(model, precision):
            reduced = measure(model, images, labels, adversary, batch_size)
        # a threat profile's adversarial bits are [samples, budgets]: a sample differs at any budget
        changed = (reduced[1] != unfiltered[1]).reshape(len(unfiltered[0]), -1).any(1)
        disagreement = ((reduced[0] != unfiltered[0]) | changed).double().mean().item()
        if disagreement > runtime.precision_tolerance:
            warnings.append(
                f"--precision {precision} changed the clean or adversarial correctness of "
                f"{disagreement:.1%} of samples on the unfiltered network, above "
                f"--precision-tolerance {runtime.precision_tolerance:.1%}: the sweep ran in fp32"
            )
            precision = "fp32"
        else:
            unfiltered = reduced  # the curves' own arithmetic, so unchanged cells match the rest
    return Measuring(eps, batch_size, adversary, unfiltered, precision, disagreement)


def _sweep(
    config: ScanConfig, inputs: ScanInputs, model: Normalized, groups: list[Group], samples: Samples,
    measuring: Measuring, stopping: StoppingRule | None, device: torch.device, plugins: list[Plugin],
) -> Swept:
    """Every target's curves: read back from the resume store where finished, the rest swept by the
    executor (in this process, or on Ray workers that receive what was measured here once); an
    adaptive target (``stopping``) interrupted after some looks goes on from the looks the store kept."""
    sweep_part = config.sweep_part
    targets = targets_of(sweep_part, groups)
    adaptive_plan = None if stopping is None else stopping.adaptive_plan
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
        loaded = {t: store.load_look(t, sweep_part.filters, adaptive_plan.schedule) for t in pending}
        saved_looks = {t: p for t, p in loaded.items() if p is not None}
    steps_per_target = len(sweep_part.filters) * sweep_part.thresholds * (adaptive_plan.looks if adaptive_plan else 1)
    adversary = measuring.adversary
    finished |= run_targets(
        pending,
        local=lambda target, forward: sweep_target(
            model, groups, target, sweep_part, images, labels, adversary, batch_size, forward, measuring.unfiltered,
            measuring.precision, stopping, saved_look=saved_looks.get(target),
            keep_look=None if store is None else partial(store.save_look, target),
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
            stopping=stopping,
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
    return Swept(targets, finished, resumed, len(saved_looks), adaptive_plan)


def _unfiltered_warnings(attack_part: AttackPart, unfiltered: Measurement, num_classes: int, eps: float) -> list[str]:
    """What the unfiltered network's accuracy says about the scan: an attack that defeats every sample,
    a network near chance, an ``--eps auto`` that missed its target."""
    clean, adversarial = (correct.double().mean().item() for correct in unfiltered)
    warnings = []
    if adversarial == 0:
        warnings.append(
            "the attack defeats every sample of the unfiltered network: adversarial scores are undefined; lower --eps"
        )
    warnings += filter(None, [near_chance(clean, num_classes)])
    if attack_part.eps == "auto" and attack_part.threat is None:  # a profile's auto budgets: _profile_warnings
        warnings += filter(
            None, [calibration_missed(clean, adversarial, attack_part.eps_target, attack_part.attack, eps)]
        )
    return warnings


def _profile_warnings(attack_part: AttackPart, measuring: Measuring) -> list[str]:
    """What a threat profile's unfiltered accuracies say: an ``auto`` budget that missed its target
    (judged by its attack alone, as it was calibrated), a budget other than the headline that defeats
    every sample (the headline's is in :func:`_unfiltered_warnings`)."""
    resolved, clean = measuring.threat, measuring.unfiltered[0].double().mean().item()
    worst0 = threats.with_budgets(measuring.unfiltered[1], resolved)
    alone = dict(zip(resolved.entries(), measuring.attack_accuracies))
    warnings = [
        missed for name, eps in resolved.calibrated
        if (missed := calibration_missed(clean, alone[(name, eps)], attack_part.eps_target, name, eps)) is not None
    ]
    return warnings + [
        f"the threat profile defeats every sample at ε={eps:g}: adversarial scores there are undefined"
        for i, eps in enumerate(resolved.budgets)
        if i != resolved.headline and not worst0[:, i].any()
    ]


def _score(
    sweep_part: SweepPart, scoring: ScoringPart, groups: list[Group], swept: Swept, references: References,
    profile: _Profile | None,
) -> Scored:
    """The curves scored and classed against the unfiltered ``references``: per group (local scope),
    with the group's claim at the level simultaneous over the groups (and an adaptive scan's looks), or
    the one global target's curves; a threat ``profile``'s at its headline budget, with their surfaces."""

    def filter_curves(target: str) -> dict[str, FilterCurve]:
        curves = swept.finished[target].curves
        return {
            f: _filter_curve(curves[f], f, references, scoring, swept.adaptive_plan, profile)
            for f in sweep_part.filters
        }

    if sweep_part.scope == "global":
        return Scored([], filter_curves("global"))
    group_reports = []
    for group in groups:
        per_filter = filter_curves(group.name)
        numel = group.parameter.numel()
        group_reports.append(
            GroupReport(
                name=group.name,
                module_type=group.module_type,
                numel=numel,
                shape=list(group.shape),
                filters=per_filter,
                samples=max(curve.samples for curve in per_filter.values()),
                **summary_claim(
                    per_filter[scoring.summary_filter], numel, references, scoring, swept.adaptive_plan, len(groups)
                ),
            )
        )
    return Scored(group_reports, None)


