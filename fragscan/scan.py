"""The scan pipeline: config -> model and data -> adversary -> sweep -> scores -> classes -> Report."""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
import shutil
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch.utils.data import Dataset

from ._version import __version__
from .attacks import ADVERSARIAL_MODES, build_attack, calibrate_eps, calibration_missed, check_attack, uses_eps
from .batching import auto_batch_size
from . import adaptive
from .adaptive import Look, history
from .assess import References, assess
from .confidence import LEVEL, pack_bits
from .config import AdaptivePlan, ScanConfig
from .resume import DIRECTORY_NAME, CheckpointStore, tensor_digest
from .runtime import file_sha256, library_versions, resolve_device
from .data import DATASETS, create_dataset, dataset_spec, evaluation_tensors, sample_ranks
from .engine import Curve, Progress, analysis_mode, arithmetic, measure
from .evidence import judge
from .executors import ExecutorOptions, Job, combined_info, run_targets, sweep_target, targets_of
from .errors import ConfigError
from .files import ensure_writable_dir, write_atomic
from .filters import FILTERS
from .groups import parameter_groups, unmatched_glob
from .masks import Mask, default_policy, mask_bytes, mask_from_report
from .fitting import check_fits, model_for_data
from .models import Normalized, model_spec
from .plugins import load_plugins
from .report import (
    Baseline,
    ClassTriple,
    DatasetInfo,
    EngineReport,
    FilterCurve,
    GroupReport,
    IntervalTriple,
    ModelInfo,
    PackedCorrectness,
    Report,
    Round,
    RunInfo,
    ScoreTriple,
    Settings,
    SkippedGroupReport,
)
from .report.io import report_json
from .sanity import check_model, near_chance

# Settings applied to the curves after the sweep: a resumed scan recomputes them from the stored curves.
SCORING_ONLY = {"baseline", "normalise_by", "tau", "classify", "bootstrap", "summary_filter", "summary_score"}


def scan_fingerprint(config: ScanConfig, model: Normalized, images, labels, eps: float, device: torch.device) -> dict:
    """Everything that decides the curves, so checkpoints are only ever reused for the same scan."""
    # An adaptive scan's scoring settings decide where each sweep stops, so they decide its curves too.
    settings = config.model_dump(mode="json", exclude=SCORING_ONLY if config.adaptive is None else set())
    settings.pop("device")  # "auto" and "cpu" may name the same device; the resolved type is what counts
    return {
        **settings,
        "device_type": device.type,
        "eps_used": eps,
        "weights_sha256": tensor_digest(model.net.state_dict()),
        "samples_sha256": tensor_digest({"images": images, "labels": labels}),
        "fragscan_version": __version__,
    }


def check_names(config: ScanConfig, *, model: Normalized | None = None, dataset: Dataset | None = None) -> None:
    """Fail fast on names no registry knows, before any model or data is loaded; the model and
    dataset names only where no ``model`` or ``dataset`` object stands in for them."""
    for filter_id in config.filters:
        FILTERS.entry(filter_id)
    check_attack(config.attack, config.eps, config.attack_space)
    if model is None:
        model_spec(config.model)
    if dataset is None:
        DATASETS.entry(config.dataset)


def _filter_curve(
    curve: Curve, filter_id: str, references: References, config: ScanConfig, adaptive_plan: AdaptivePlan | None
) -> FilterCurve:
    """One sweep scored on its own samples; adaptive sweeps at the plan's level, with their looks."""
    samples = curve.clean.shape[1]
    level = LEVEL if adaptive_plan is None else adaptive_plan.filter_level
    assessment = assess(curve, references.at(samples), config, level)
    scores, intervals = assessment.scores, assessment.intervals
    looks = None if adaptive_plan is None else history(curve, filter_id, references, config, adaptive_plan)
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
        rounds=None if looks is None else [_round(look) for look in looks],
        stop=None if looks is None else looks[-1].stop,
    )


def _round(look: Look) -> Round:
    return Round(
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


def scan(
    config: ScanConfig | None = None,
    *,
    model: Normalized | None = None,
    dataset: Dataset | None = None,
    progress: Callable[[Progress], None] | None = None,
    plugins: list[str] | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = True,
    executor: ExecutorOptions | None = None,
) -> Report:
    """Run the analysis ``config`` describes and return the report.

    With ``config.checkpoints``, each is scanned in turn into one report (see :mod:`fragscan.checkpoints`).
    ``model`` and ``dataset`` may be given as objects (a :class:`Normalized` model, a dataset of
    (pixels in [0,1], label)); otherwise they are built from the names in ``config``, the model
    fitted to the data (classes, channels, size) where its spec leaves them open. Plugins
    (entry points, ./plugins/, ``config.plugins``) are loaded first; ``plugins`` adds lines to
    the report's list.

    Nothing is written unless ``checkpoint_dir`` is given: then each finished target is saved
    there as it completes, and a later call with the same settings (``resume=True``) reads them
    back instead of sweeping again; settings that differ raise a ConfigError. ``executor`` picks
    where the sweeps run (in this process, or on Ray workers); it never changes a number.
    """
    return analyse(
        config,
        model=model,
        dataset=dataset,
        progress=progress,
        plugins=plugins,
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        executor=executor,
    ).report


def analyse(
    config: ScanConfig | None = None,
    *,
    model: Normalized | None = None,
    dataset: Dataset | None = None,
    progress: Callable[[Progress], None] | None = None,
    plugins: list[str] | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = True,
    executor: ExecutorOptions | None = None,
    check_groups: Callable[[list[str]], None] | None = None,
) -> Analysis:
    """:func:`scan`, also handing out the model it analysed (for a multi-checkpoint scan, the
    last checkpoint's, whose scan is the report's body): what outputs built from the weight
    values (masks) need, without loading the weights a second time. ``check_groups`` sees the
    group names before the sweep (an audit policy's globs), so a problem costs no sweep."""
    config = config or ScanConfig()
    loaded_plugins = load_plugins(config.plugins)
    check_names(config, model=model, dataset=dataset)
    if config.checkpoints:
        if model is not None:
            raise ConfigError("a multi-checkpoint scan builds its model per checkpoint; pass no model object")
        from .checkpoints import scan_checkpoints

        return scan_checkpoints(
            config, analyse, dataset=dataset, progress=progress, plugins=plugins, checkpoint_dir=checkpoint_dir,
            resume=resume, executor=executor, check_groups=check_groups,
        )
    started = time.perf_counter()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    device = resolve_device(config.device)
    if config.precision == "fp16" and device.type == "cpu":
        raise ConfigError("--precision fp16 runs ~20x slower than fp32 on a CPU; use --precision bf16 there (or fp32, exact)")

    spec_dataset = dataset_spec(config.dataset) if config.dataset in DATASETS else None
    if dataset is None:
        dataset = create_dataset(config.dataset, root=config.data_root, split=config.split, download=config.download)
    images, labels, indices = evaluation_tensors(dataset, config.max_samples, config.seed)
    ranks = sample_ranks(len(dataset), indices, config.seed)
    weights_path = config.weights
    if model is None:
        model = model_for_data(
            config.model,
            config.dataset,
            dataset,
            input_size=tuple(images.shape[1:]),
            weights=config.weights,
            pretrained=config.pretrained,
            stem=config.stem,
        )
        weights_path = weights_path or model.spec.default_weights
    check_fits(model, config.model, config.dataset, tuple(images.shape[1:]), int(labels.max()))  # a model passed in too

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
    if check_groups is not None:
        check_groups([g.name for g in groups])
    model = model.to(device)
    if device.type == "cuda":  # pinned host memory: the one copy to the device is a direct DMA
        images, labels = images.pin_memory(), labels.pin_memory()
    images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)

    warnings: list[str] = [f"plugin {p.describe()}" for p in loaded_plugins if not p.loaded]
    warnings += list(getattr(model, "notes", ()))
    executor = executor or ExecutorOptions()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), analysis_mode(
        model, config.norm_mode
    ):
        batch_size = auto_batch_size(model, images, labels) if config.batch_size == "auto" else config.batch_size
        warnings += check_model(model, images, labels, batch_size)

        def make_attack(eps: float):
            return build_attack(config.attack, model, eps, model.spec.num_classes, config.norm_mode, config.attack_space)

        if config.eps == "auto":
            eps = calibrate_eps(make_attack, model, images, labels, batch_size, config.seed, config.eps_target)
        else:
            eps = float(config.eps)
            if not uses_eps(config.attack):
                warnings.append(f"attack {config.attack} has no eps: --eps {eps} was not used")
        adversary = ADVERSARIAL_MODES[config.attack_mode](make_attack(eps), images, labels, batch_size, config.seed)
        unfiltered = measure(model, images, labels, adversary, batch_size)
        precision, precision_disagreement = config.precision, None
        if precision != "fp32":
            with arithmetic(model, precision):
                reduced = measure(model, images, labels, adversary, batch_size)
            precision_disagreement = (
                ((reduced[0] != unfiltered[0]) | (reduced[1] != unfiltered[1])).double().mean().item()
            )
            if precision_disagreement > config.precision_tolerance:
                warnings.append(
                    f"--precision {precision} changed the clean or adversarial correctness of "
                    f"{precision_disagreement:.1%} of samples on the unfiltered network, above "
                    f"--precision-tolerance {config.precision_tolerance:.1%}: the sweep ran in fp32"
                )
                precision = "fp32"
            else:
                unfiltered = reduced  # the curves' own arithmetic, so unchanged cells match the rest
        targets = targets_of(config, groups)
        adaptive_plan = None if config.adaptive is None else adaptive.plan(config.adaptive, len(indices), len(groups))
        store = None
        if checkpoint_dir is not None:
            fingerprint = scan_fingerprint(config, model, images, labels, eps, device)
            store = CheckpointStore(checkpoint_dir, fingerprint, resume=resume)
        finished = {t: store.load(t) for t in targets if store is not None and t in store}
        resumed_targets = len(finished)
        steps_per_target = len(config.filters) * config.thresholds * (adaptive_plan.looks if adaptive_plan else 1)
        finished |= run_targets(
            [t for t in targets if t not in finished],
            local=lambda target, forward: sweep_target(
                model, groups, target, config, images, labels, adversary, batch_size, forward, unfiltered, precision,
                ranks,
            ),
            job=lambda: Job(
                config=config,
                model=copy.deepcopy(model).cpu(),
                images=images.cpu(),
                labels=labels.cpu(),
                eps=eps,
                batch_size=batch_size,
                precision=precision,
                plugins=tuple(p for p in loaded_plugins if p.loaded),
                unfiltered=tuple(c.cpu() for c in unfiltered),
                ranks=ranks,
            ),
            options=executor,
            store=store,
            progress=progress,
            steps_per_target=steps_per_target,
            total_steps=len(targets) * steps_per_target,
            done_steps=len(finished) * steps_per_target,
        )
        curves = {t: finished[t].curves for t in targets}
    model.cpu()
    engine_info = combined_info([finished[t].info for t in targets])

    for target in targets:
        if finished[target].device != device.type:
            warnings.append(f"{target} was swept on {finished[target].device}, the baseline on {device.type}")

    clean0 = unfiltered[0].double().mean().item()
    adversarial0 = unfiltered[1].double().mean().item()
    if adversarial0 == 0:
        warnings.append("the attack defeats every sample of the unfiltered network: adversarial scores are undefined; lower --eps")
    chance = near_chance(clean0, model.spec.num_classes)
    if chance:
        warnings.append(chance)
    if config.eps == "auto":
        warnings += filter(None, [calibration_missed(clean0, adversarial0, config.eps_target, config.attack)])

    unfiltered = tuple(correct.cpu() for correct in unfiltered)
    references = References(unfiltered, ranks, config.bootstrap, config.seed)

    def filter_curves(target: str) -> dict[str, FilterCurve]:
        return {f: _filter_curve(curves[target][f], f, references, config, adaptive_plan) for f in config.filters}

    group_reports = []
    if config.scope == "local":
        for group in groups:
            per_filter = filter_curves(group.name)
            summary_curve = per_filter[config.summary_filter]
            summary_class = (
                getattr(summary_curve.classes, config.summary_score)
                if adaptive_plan is None
                else summary_curve.rounds[-1].summary_class  # at the plan's summary level
            )
            group_reports.append(
                GroupReport(
                    name=group.name,
                    module_type=group.module_type,
                    numel=group.parameter.numel(),
                    shape=list(group.shape),
                    filters=per_filter,
                    samples=max(curve.samples for curve in per_filter.values()),
                    summary_class=summary_class,
                )
            )

    spec = model.spec
    report = Report(
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
            **{**config.model_dump(), "adaptive": adaptive_plan},
            eps_used=eps,
            batch_size_used=batch_size,
            device_used=str(device),
            precision_used=precision,
            precision_disagreement=precision_disagreement,
            versions=library_versions(),
        ),
        baseline=Baseline(
            clean=clean0,
            adversarial=adversarial0,
            samples=len(indices),
            correct=PackedCorrectness(clean=pack_bits(unfiltered[0]), adversarial=pack_bits(unfiltered[1])),
        ),
        groups=group_reports,
        skipped=[SkippedGroupReport(name=s.name, reason=s.reason) for s in skipped],
        global_=filter_curves("global") if config.scope == "global" else None,
        plugins=[p.describe() for p in loaded_plugins] + list(plugins or []),
        warnings=warnings,
        engine=EngineReport(**{k: v for k, v in asdict(engine_info).items() if k in EngineReport.model_fields}),
        run=RunInfo(
            started_at=started_at,
            duration_s=round(time.perf_counter() - started, 3),
            executor=executor.kind,
            resumed_targets=resumed_targets,
        ),
    )
    # Claims about a family (summary classes over the groups, threshold classes over the scan's
    # thresholds) need all its members: they are made on the assembled report.
    return Analysis(judge(report), model)


def write_scan_outputs(report: Report, directory: Path, mask: Mask | None = None) -> list[Path]:
    """Everything a scan leaves in its output directory, each written atomically: report.json,
    curves.csv (tidy long curves) and report.html, rendered from the report, and, given ``mask``
    (built from the weight values, which the report does not hold), mask.safetensors; without
    one, an earlier scan's mask.safetensors there is removed."""
    from .report.html import render_html
    from .report.tables import curves_csv

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
    written: list[Path] = Field(description="report.json, curves.csv, report.html and, when there is one, mask.safetensors")
    no_mask: str | None = Field(description="why no mask.safetensors was written; None when one was")


def scan_to(
    config: ScanConfig | None,
    out: str | Path,
    *,
    model: Normalized | None = None,
    dataset: Dataset | None = None,
    progress: Callable[[Progress], None] | None = None,
    plugins: list[str] | None = None,
    resume: bool = True,
    executor: ExecutorOptions | None = None,
    check_groups: Callable[[list[str]], None] | None = None,
) -> ScanOutputs:
    """:func:`scan`, then write its outputs into the directory ``out`` (created if missing):
    report.json, curves.csv, report.html and the default retrain mask, mask.safetensors, each
    atomically (:func:`write_scan_outputs`).

    Names and ``out`` are checked before any model or data is loaded. Finished sweep targets are
    checkpointed under ``out/.fragscan-checkpoints`` as they complete, so the same call after an
    interruption resumes (``resume=False`` discards them); they are removed once the outputs are
    written. The mask is built from the model the scan analysed, as it held it in memory.
    """
    config = config or ScanConfig()
    load_plugins(config.plugins)  # before the name checks, so plugin names are known
    check_names(config, model=model, dataset=dataset)
    directory = ensure_writable_dir(Path(out))
    checkpoints = directory / DIRECTORY_NAME
    analysis = analyse(
        config,
        model=model,
        dataset=dataset,
        progress=progress,
        plugins=plugins,
        checkpoint_dir=checkpoints,
        resume=resume,
        executor=executor,
        check_groups=check_groups,
    )
    report = analysis.report
    # A mask is for retraining the scanned weights, which `fragscan retrain` loads from a file.
    policy = default_policy(report)
    if report.model.weights is None:
        no_mask = "the model was scanned without a weights file"
    elif policy is None:
        no_mask = "a global-scope scan without the pulse filter has no classes to mask by"
    else:
        no_mask = None
    mask = None if no_mask else mask_from_report(report, analysis.model.net, policy=policy)
    written = write_scan_outputs(report, directory, mask=mask)
    shutil.rmtree(checkpoints, ignore_errors=True)  # the report now holds everything they did
    return ScanOutputs(report=report, written=written, no_mask=no_mask)
