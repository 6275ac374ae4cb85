"""``fragscan scan``: run the analysis and write the report."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import typer

from ..base.errors import ConfigError
from ..config import Adaptive, ScanConfig, build_config
from ..outputs.auditing import (
    check_guards_match,
    check_policy_budget,
    check_policy_fits,
    load_policy,
    load_previous_report,
)
from ..pipeline.checkpoints import checkpoint_files
from ._app import app, fails_cleanly
from ._options import PLUGIN_HELP, argument, option
from .audit import audit_and_write
from .summary import print_summary
from .ui import stderr_console, stdout_console, sweep_progress


@app.command()
@fails_cleanly
def scan(
    model: str = argument(ScanConfig, "model"),
    dataset: str = argument(ScanConfig, "dataset"),
    weights: list[Path] = typer.Option(
        [], help="Weights file (.safetensors preferred, or a .pt/.pth state dict); repeat to scan several checkpoints."
    ),
    checkpoints: Path | None = typer.Option(
        None, help="Directory of weights files (e.g. epochs), scanned in natural order into one report."
    ),
    data_root: Path | None = option(ScanConfig, "data_root"),
    split: str = option(ScanConfig, "split"),
    pretrained: bool = option(ScanConfig, "pretrained", "--pretrained"),
    stem: str = option(ScanConfig, "stem"),
    download: bool = option(ScanConfig, "download", "--download"),
    plugin: list[Path] = typer.Option([], "--plugin", help=PLUGIN_HELP),
    max_samples: int | None = option(ScanConfig, "max_samples"),
    all_samples: bool = typer.Option(
        False, "--all-samples", help="Evaluate on the whole split (overrides --max-samples)."
    ),
    adaptive: bool = typer.Option(
        False,
        "--adaptive",
        help="Grow each sweep's samples (from --initial-samples by --look-ratio per look up to --max-samples) only "
        "until its classes are decided or out of reach: for CI audits and large models on CPU (docs/adaptive.md).",
    ),
    initial_samples: int | None = option(
        Adaptive, "initial_samples", default=None, show_default=str(Adaptive().initial_samples)
    ),
    look_ratio: float | None = option(Adaptive, "look_ratio", default=None, show_default=str(Adaptive().look_ratio)),
    batch_size: str = option(ScanConfig, "batch_size", text=True),
    variant_batch: str = option(ScanConfig, "variant_batch", text=True),
    filters: str = option(ScanConfig, "filters", text=True),
    thresholds: int = option(ScanConfig, "thresholds"),
    attack: str = option(ScanConfig, "attack"),
    eps: str = option(ScanConfig, "eps", text=True),
    attack_space: str = option(ScanConfig, "attack_space"),
    threat: str | None = option(ScanConfig, "threat"),
    headline_eps: float | None = option(ScanConfig, "headline_eps"),
    attack_mode: str = option(ScanConfig, "attack_mode"),
    scope: str = option(ScanConfig, "scope"),
    global_range: str = option(ScanConfig, "global_range"),
    include: list[str] = option(ScanConfig, "include"),
    select: list[str] = option(ScanConfig, "select"),
    baseline: str = option(ScanConfig, "baseline"),
    normalise_by: str = option(ScanConfig, "normalise_by"),
    norm_mode: str = option(ScanConfig, "norm_mode"),
    tau: float = option(ScanConfig, "tau"),
    classify: str = option(ScanConfig, "classify"),
    bootstrap: int = option(ScanConfig, "bootstrap"),
    summary_filter: str = option(ScanConfig, "summary_filter"),
    summary_score: str = option(ScanConfig, "summary_score"),
    seed: int = option(ScanConfig, "seed"),
    device: str = option(ScanConfig, "device"),
    precision: str = option(ScanConfig, "precision"),
    precision_tolerance: float = option(ScanConfig, "precision_tolerance"),
    out: Path = typer.Option(
        Path("fragscan-out"),
        help="Directory for report.json, curves.csv, report.html and mask.safetensors (created if missing).",
    ),
    resume: bool = typer.Option(
        True,
        "--resume/--no-resume",
        help="Continue an interrupted scan from the resume store in --out (the default); --no-resume discards it.",
    ),
    executor: str = typer.Option(
        "local", help="Where sweeps run: 'local' (this process) or 'ray' (needs fragscan\\[ray])."
    ),
    ray_address: str | None = typer.Option(
        None, help="Ray cluster to join, e.g. 'auto' or 'ray://head:10001'; default: start a local Ray instance."
    ),
    ray_gpus_per_worker: float | None = typer.Option(
        None, help="GPUs per Ray worker; default 1 when this machine sees CUDA, else 0."
    ),
    json_output: bool = typer.Option(False, "--json", help="Also print the report JSON to stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
    policy: Path | None = typer.Option(
        None, help="Then audit the report against this policy file (see `fragscan audit`); exit 1 if violated."
    ),
) -> None:
    """Sweep synaptic filters over every Conv/Linear weight, score and classify each group."""
    _known_filters(filters, summary_filter)
    config = build_config(
        ScanConfig,
        model=model,
        dataset=dataset,
        weights=weights[0] if len(weights) == 1 else None,
        checkpoints=checkpoint_files(checkpoints) if checkpoints is not None else weights if len(weights) > 1 else [],
        data_root=data_root,
        split=split,
        pretrained=pretrained,
        stem=stem,
        download=download,
        plugins=plugin,
        max_samples=None if all_samples else max_samples,
        batch_size=batch_size if batch_size == "auto" else _integer(batch_size, "--batch-size"),
        variant_batch=variant_batch if variant_batch == "auto" else _integer(variant_batch, "--variant-batch"),
        filters=filters,
        thresholds=thresholds,
        attack=attack,
        eps=eps if eps == "auto" else _number(eps, "--eps"),
        attack_space=attack_space,
        threat=threat,
        headline_eps=headline_eps,
        attack_mode=attack_mode,
        scope=scope,
        global_range=global_range,
        include=include,
        select=select,
        baseline=baseline,
        normalise_by=normalise_by,
        norm_mode=norm_mode,
        tau=tau,
        classify=classify,
        bootstrap=bootstrap,
        summary_filter=summary_filter,
        summary_score=summary_score,
        adaptive=_adaptive(adaptive, initial_samples, look_ratio),
        seed=seed,
        device=device,
        precision=precision,
        precision_tolerance=precision_tolerance,
    )
    audit_policy = load_policy(policy) if policy else None
    if audit_policy is not None:  # a bad policy or previous report fails before the long work, not after
        previous_report = load_previous_report(audit_policy)
        check_policy_fits(audit_policy, config.scope, has_previous_report=previous_report is not None)
        check_policy_budget(audit_policy, config.threat, config.eps)
    # torch takes seconds to import: not before --help or an option error
    from ..pipeline.executors import ExecutorOptions
    from ..pipeline.resume import DIRECTORY_NAME
    from ..pipeline.writing import scan_to

    # A guard glob that matches no group fails before the sweep, not after it.
    guards = None
    if audit_policy is not None:
        guards = partial(check_guards_match, audit_policy.must_not_be_fragile, where="the model")
    console = stderr_console(quiet)
    try:
        with sweep_progress(console) as progress:
            outputs = scan_to(
                config,
                out,
                progress=progress,
                resume=resume,
                executor=ExecutorOptions(executor, ray_address, ray_gpus_per_worker),
                check_groups=guards,
            )
    except KeyboardInterrupt:
        kept = "finished groups and looks" if config.adaptive is not None else "finished groups"
        stderr_console().print(
            f"interrupted: {kept} are kept in {out / DIRECTORY_NAME}; run the same command again to resume",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(130) from None
    report = outputs.report
    if outputs.no_mask:
        console.print(f"no mask.safetensors: {outputs.no_mask}", highlight=False, soft_wrap=True)
    print_summary(report, console)
    for path in outputs.written:
        console.print(f"wrote {path}", highlight=False)
    if json_output:
        stdout_console().out(report.model_dump_json(indent=1), highlight=False)
    if audit_policy is not None:
        audit_and_write(report, str(out / "report.json"), audit_policy, previous_report, out, quiet or json_output)


def _adaptive(adaptive: bool, initial_samples: int | None, look_ratio: float | None) -> dict | None:
    given = {"initial_samples": initial_samples, "look_ratio": look_ratio}
    given = {name: value for name, value in given.items() if value is not None}
    if not adaptive:
        if given:
            option = "--" + next(iter(given)).replace("_", "-")
            raise ConfigError(f"{option} sets how --adaptive looks; add --adaptive or drop it")
        return None
    return given


def _number(text: str, option: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{option} must be a number or 'auto', got {text!r}") from None


def _integer(text: str, option: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{option} must be a whole number or 'auto', got {text!r}") from None


def _known_filters(filters: str, summary_filter: str) -> None:
    """An unknown --filters name explains more than the summary filter's absence from the list, which the
    settings refuse next (they cannot look names up: the filter registry lives in the sweep stage)."""
    names = [name.strip() for name in filters.split(",") if name.strip()]
    if summary_filter not in names:
        from ..sweep.filters import FILTERS

        for name in names:
            FILTERS.entry(name)
