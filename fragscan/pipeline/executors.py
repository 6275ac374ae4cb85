"""Where the sweeps run: in this process (default) or on Ray workers; both give the same curves.

The unit of work is one *target*: one parameter group (local scope) or all groups at once
(``"global"``), swept by :func:`fragscan.sweep.engine.sweep`. A target's curves do not depend on any
other target (the engine's mask cache is per target), so targets can run in any order, on any
worker, or be read back from the resume store, and the report is the same.

An adaptive target's unit of resuming is its look: in this process each finished look is
kept in the resume store (:meth:`fragscan.pipeline.resume.ResumeStore.save_look`) and an interrupted
target goes on at its next look. A Ray worker keeps its looks there too when it can reach the
driver's resume directory (:meth:`~fragscan.pipeline.resume.ResumeStore.reach`: the same machine, or a
filesystem shared at the same path); elsewhere only the finished target, sent back to the
driver, is kept. Either way a worker starts a target from the looks the driver read back.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, get_args

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..base.errors import ConfigError, FragscanError
from ..base.plugins import Plugin, load_again
from ..config import AdaptivePlan, ScanConfig, ScoringPart, SweepPart
from ..scoring import adaptive
from ..scoring.assess import References
from ..sweep import threats
from ..sweep.attacks import Adversary, build_adversary
from ..sweep.engine import EngineInfo, Measurement, SweepEvent, analysis_mode, arithmetic, sweep
from ..sweep.groups import Group, parameter_groups
from ..sweep.threats import Crafted, Resolved
from .resume import FinishedTarget, ResumeStore, SavedLook

Executor = Literal["local", "ray"]
EXECUTORS = get_args(Executor)


@dataclass(frozen=True)
class StoppingRule:
    """An adaptive scan's stopping rule, made once for every target (and sent to Ray workers): the
    planned looks, the scoring whose classes a look waits for, the unfiltered network's reference at
    the headline budget, and a threat profile's rule (None: a plain scan, or a one-attack, one-budget
    profile, stopped as one)."""

    adaptive_plan: AdaptivePlan
    scoring: ScoringPart
    references: References
    profile: adaptive.Profile | None = None


def sweep_target(
    model, groups: list[Group], target: str, sweep_part: SweepPart, images, labels, adversary: Adversary,
    batch_size: int, progress: Callable[[SweepEvent], None] | None = None, unfiltered: Measurement | None = None,
    precision: str = "fp32", stopping: StoppingRule | None = None,
    saved_look: SavedLook | None = None, keep_look: Callable[[SavedLook], None] | None = None,
) -> FinishedTarget:
    """One target's curves (inside ``analysis_mode``), in the ``precision`` the scan settled on;
    the engine backs off on out-of-memory itself. An adaptive scan's (``stopping``): each filter's
    curve grows over the samples' seeded order against the ``unfiltered`` network's bits, until its
    classes are decided (:mod:`fragscan.scoring.adaptive`): from the ``saved_look`` when given, handing
    its state after each look to ``keep_look``; a threat profile's sweeps stop once every budget's
    classes have (:func:`fragscan.scoring.adaptive.profile_look`)."""
    chosen = groups if target == "global" else [g for g in groups if g.name == target]

    def run(filter_ids, images, labels, adversary, unfiltered, progress):
        with arithmetic(model, precision):
            return sweep(
                model, chosen, filter_ids, sweep_part.thresholds, images, labels, adversary,
                batch_size=batch_size, scope=sweep_part.scope, range_kind=sweep_part.global_range,
                unfiltered=unfiltered, progress=progress, variant_batch=sweep_part.variant_batch,
            )

    device = str(images.device.type)
    if stopping is None:
        result = run(sweep_part.filters, images, labels, adversary, unfiltered, progress)
        return FinishedTarget(result.curves[target], batch_size, device, result.info)

    def measure(filter_ids: tuple[str, ...], columns: torch.Tensor, forward) -> adaptive.Measured:
        new = columns.to(images.device)
        unfiltered_new = tuple(correct[new] for correct in unfiltered)
        result = run(filter_ids, images[new], labels[new], adversary.subset(new), unfiltered_new, forward)
        return adaptive.Measured(result.curves[target], result.info)

    if saved_look is not None and device not in saved_look.device.split("+"):
        device = f"{saved_look.device}+{device}"  # its earlier looks ran elsewhere: the report warns

    def on_look(state: adaptive.LookState) -> None:
        keep_look(SavedLook(state, device))

    curves, infos = adaptive.grow(
        sweep_part, measure, stopping.references, stopping.scoring, stopping.adaptive_plan, progress, target,
        start=None if saved_look is None else saved_look.state, on_look=None if keep_look is None else on_look,
        profile=stopping.profile,
    )
    # The first look sweeps every filter: its variants are the distinct networks, its cells the curves'.
    info = replace(combined_info(infos), variants=infos[0].variants, cells=infos[0].cells)
    return FinishedTarget(curves, batch_size, device, info)


def combined_info(infos: list[EngineInfo]) -> EngineInfo:
    """One account of how the sweep was computed, from the per-target sweeps' accounts."""
    combined = EngineInfo(
        prefix_reuse=any(i.prefix_reuse for i in infos),
        fused_attack=bool(infos) and all(i.fused_attack for i in infos),
        fused_attack_note=next((i.fused_attack_note for i in infos if i.fused_attack_note), None),
        memory_budget_bytes=max((i.memory_budget_bytes for i in infos), default=0),
        variants=sum(i.variants for i in infos),
        cells=sum(i.cells for i in infos),
        variant_batch=max((i.variant_batch for i in infos), default=1),
        variant_batch_note=next((i.variant_batch_note for i in infos if i.variant_batch_note), None),
        variant_batch_difference=max((i.variant_batch_difference for i in infos), default=0.0),
    )
    if not combined.prefix_reuse:
        combined.fallback = next((i.fallback for i in infos if i.fallback), None)
    for info in infos:
        combined.full_forward_targets.update(info.full_forward_targets)
        combined.suffix_share.update(info.suffix_share)
    return combined


def targets_of(sweep_part: SweepPart, groups: list[Group]) -> list[str]:
    return [g.name for g in groups] if sweep_part.scope == "local" else ["global"]


class ExecutorOptions(BaseModel):
    """How to run the sweeps. None of this changes a number in the report."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Executor = Field("local", description="where the sweeps run: this process, or Ray workers")
    ray_address: str | None = Field(None, description="the Ray cluster to join; None: start one on this machine")
    ray_gpus_per_worker: float | None = Field(
        None, description="GPUs per Ray task, in [0, 64]; None: 1 when this machine sees CUDA, else 0"
    )

    def __init__(self, kind: str = "local", ray_address: str | None = None, ray_gpus_per_worker: float | None = None):
        # Positional too: the CLI builds it as ExecutorOptions(executor, address, gpus).
        super().__init__(kind=kind, ray_address=ray_address, ray_gpus_per_worker=ray_gpus_per_worker)

    @model_validator(mode="before")
    @classmethod
    def _one_line_errors(cls, values: dict) -> dict:
        """Checked before pydantic's own checks: the CLI builds these options directly, so each problem
        must already be the one-line ConfigError it prints."""
        kind, address, gpus = (values.get(name) for name in ("kind", "ray_address", "ray_gpus_per_worker"))
        if kind not in EXECUTORS:
            raise ConfigError(f"--executor must be one of {', '.join(EXECUTORS)}, got {kind!r}")
        if gpus is not None and not 0 <= gpus <= 64:
            raise ConfigError(f"--ray-gpus-per-worker must lie in [0, 64], got {gpus}")
        if kind != "ray" and (address is not None or gpus is not None):
            given = "--ray-address" if address is not None else "--ray-gpus-per-worker"
            raise ConfigError(
                f"{given} is for --executor ray; add --executor ray, or drop {given} to scan in this process"
            )
        return values


@dataclass(frozen=True)
class Job:
    """What a Ray worker needs to repeat the evaluation: settings, the model (on the CPU: models
    fitted to the data, timm's and plugins' cannot always be rebuilt from a name), samples, eps,
    what the scan measured and made once (the fixed mode's examples, the unfiltered network's bits, an
    adaptive scan's stopping rule), and the plugins the scan loaded (the report's list), which the
    worker loads again."""

    config: ScanConfig
    model: object
    images: torch.Tensor
    labels: torch.Tensor
    eps: float
    crafted: Crafted | None  # the fixed mode's examples, crafted once; None: each network is attacked afresh
    batch_size: int
    precision: str  # what the scan settled on (fp32 when the reduced one broke the tolerance)
    plugins: tuple[Plugin, ...]
    unfiltered: Measurement  # the unfiltered network's bits on every sample, measured once
    stopping: StoppingRule | None  # an adaptive scan's, as the driver made it; None: every sweep uses every sample
    saved_looks: dict[str, SavedLook] = field(default_factory=dict)  # adaptive targets' looks read back
    resume_dir: str | None = None  # the driver's resume store (absolute), where workers that reach it keep looks
    fingerprint: dict | None = None  # the store's fingerprint: a worker keeps looks only in that very store
    threat: Resolved | None = None  # a threat profile as the driver resolved it (auto budgets calibrated)


def run_targets(
    pending: list[str],
    *,
    local: Callable[[str, Callable[[SweepEvent], None] | None], FinishedTarget],
    job: Callable[[], Job],
    options: ExecutorOptions,
    store: ResumeStore | None,
    progress: Callable[[SweepEvent], None] | None,
    steps_per_target: int,
    total_steps: int,
    done_steps: int,
) -> dict[str, FinishedTarget]:
    """Sweep the ``pending`` targets with the chosen executor, storing each in ``store`` as it finishes."""
    finished: dict[str, FinishedTarget] = {}

    def keep(target: str, result: FinishedTarget) -> None:
        finished[target] = result
        if store is not None:
            store.save(target, result)

    if options.kind == "local":
        for target in pending:
            offset = done_steps

            def forward(event: SweepEvent, offset=offset) -> None:
                progress(replace(event, done=offset + event.done, total=total_steps))

            keep(target, local(target, forward if progress else None))
            done_steps += steps_per_target
        return finished
    for target, result in _ray_results(pending, job(), options):
        keep(target, result)
        done_steps += steps_per_target
        if progress is not None:
            progress(SweepEvent(target, "all filters (ray)", done_steps, total_steps))
    return finished


def _ray_results(pending: list[str], job: Job, options: ExecutorOptions) -> Iterable[tuple[str, FinishedTarget]]:
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray: pip install 'fragscan[ray]'") from None
    if not ray.is_initialized():
        source_root = str(Path(__file__).resolve().parent.parent)
        try:
            if options.ray_address:
                ray.init(address=options.ray_address, logging_level="ERROR", log_to_driver=False)
            else:  # workers import this very fragscan, not whatever else is installed
                ray.init(
                    include_dashboard=False, logging_level="ERROR", log_to_driver=False,
                    runtime_env={"env_vars": {"PYTHONPATH": source_root}},
                )
        except Exception as error:
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise ConfigError(f"cannot start or reach Ray ({options.ray_address or 'local'}): {reason}") from None
    gpus = options.ray_gpus_per_worker
    if gpus is None:
        gpus = 1 if torch.cuda.is_available() else 0
    remote = ray.remote(num_gpus=gpus, num_cpus=1, max_retries=2)(sweep_in_worker)
    _pickle_plugin_files_by_value(job.plugins)
    job_ref = ray.put(job)
    waiting = {remote.remote(job_ref, target): target for target in pending}
    try:
        while waiting:
            ready, _ = ray.wait(list(waiting), num_returns=1)
            target = waiting.pop(ready[0])
            try:
                yield target, ray.get(ready[0])
            except ray.exceptions.RayTaskError as error:
                if isinstance(error.cause, FragscanError):  # the worker's own error, not Ray's traceback text
                    raise error.cause from None
                why = (str(error.cause).strip().splitlines() or [""])[0]
                raise FragscanError(f"a Ray worker failed on {target}: {type(error.cause).__name__}: {why}") from None
    finally:
        for reference in waiting:
            ray.cancel(reference, force=True)


def _pickle_plugin_files_by_value(plugins: tuple[Plugin, ...]) -> None:
    """Ray unpickles a task's arguments before the task runs, so a class defined in a plugin file
    (imported under a made-up module name) could not be found by name on a worker: Ray's
    cloudpickle sends such modules' classes and functions by value instead."""
    from ray import cloudpickle

    for plugin in plugins:
        module = sys.modules.get(plugin.file_module) if plugin.file_module else None
        if module is not None:
            cloudpickle.register_pickle_by_value(module)


def load_worker_plugins(plugins: tuple[Plugin, ...]) -> None:
    """A Ray worker is a fresh process: load exactly the plugins the scan loaded (the same entry
    points and files, by the same resolved paths; nothing from the worker's own directory) before
    the registries are used. One that loaded on the driver but fails here is an error: the worker
    would not evaluate what the driver asked for; so is a file whose content differs (sha256)."""
    for driver, worker in zip(plugins, load_again(plugins)):
        if not worker.loaded:
            raise ConfigError(
                f"plugin {worker.describe(digest=False)} on a Ray worker (it loaded on the driver): "
                "install it, or put the file at the same path, on every Ray node"
            )
        if driver.sha256 != worker.sha256:
            raise ConfigError(
                f"plugin file {worker.location!r} on a Ray worker is not the driver's (sha256 differs): "
                "put the same file at the same path on every Ray node"
            )


def sweep_in_worker(job: Job, target: str) -> FinishedTarget:
    """Runs on a Ray worker: load the scan's plugins (its filters and attacks are looked up by
    name), rebuild from ``job`` how networks are measured (the adversary around the worker's model, with the
    scan's examples in fixed mode), sweep one target: an adaptive one from its latest saved looks
    (the driver's resume store where this worker reaches it, else the looks the driver read back),
    keeping each new look there."""
    from ..base.runtime import resolve_device

    load_worker_plugins(job.plugins)
    config = job.config
    device = resolve_device(config.device)
    model = job.model.to(device)
    images, labels = job.images.to(device), job.labels.to(device)
    groups, _ = parameter_groups(model.net, config.include, config.select)
    crafted = None if job.crafted is None else _to(job.crafted, device)
    devices = [device] if device.type == "cuda" else []
    store, saved_look = None, job.saved_looks.get(target)
    if job.resume_dir is not None and job.stopping is not None:
        store = ResumeStore.reach(job.resume_dir, job.fingerprint)
    if store is not None:  # Ray's retry of a task whose worker died goes on from that worker's looks
        saved_look = store.load_look(target, config.filters, job.stopping.adaptive_plan.schedule) or saved_look

    def keep_look(saved: SavedLook) -> None:
        nonlocal store
        try:
            if store is not None:
                store.save_look(target, saved)
        except OSError:  # reachable but not writable from here (a read-only mount): the driver keeps the target
            store = None

    with torch.random.fork_rng(devices=devices), analysis_mode(model, config.norm_mode):
        attack_part = config.attack_part
        if job.threat is None:
            adversary = build_adversary(attack_part, model, job.eps, images, labels, job.batch_size, crafted)
        else:
            adversary = threats.profile_adversary(
                attack_part, model, job.threat, images, labels, job.batch_size, crafted
            )
        return sweep_target(
            model, groups, target, config.sweep_part, images, labels, adversary, job.batch_size,
            unfiltered=tuple(c.to(device) for c in job.unfiltered), precision=job.precision, stopping=job.stopping,
            saved_look=saved_look, keep_look=None if store is None else keep_look,
        )


def _to(crafted: Crafted, device: torch.device) -> Crafted:
    if isinstance(crafted, torch.Tensor):
        return crafted.to(device)
    return [[examples.to(device) for examples in each] for each in crafted]
