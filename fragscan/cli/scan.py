"""``fragscan scan``: run the analysis and write the report."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import typer

from ..audit import check_guards_match, check_policy_fits, load_baseline, load_policy
from ..checkpoints import checkpoint_files
from ..config import Adaptive, ScanConfig, build_config
from ..errors import ConfigError
from ..ui import stderr_console, stdout_console, sweep_progress
from ._app import absolute, app, fails_cleanly
from .audit import audit_and_write
from .summary import print_summary

_DEFAULTS = ScanConfig()
# Shared with `fragscan train` and `retrain`, which build the same networks.
STEM_HELP = "Paper built-ins: 'imagenet' (torchvision's stem) or 'cifar' (3x3 stride-1, no max-pool)."
# Shared with `fragscan retrain`, which evaluates with the same attacks.
ATTACK_SPACE_HELP = (
    "'pixel': attacks perturb [0,1] pixels and clip; 'normalized': the source's FGSM, a step of eps on the "
    "normalised input, unclipped (--attack FGSM only; eps in normalised units)."
)


@app.command()
@fails_cleanly
def scan(
    model: str = typer.Argument(_DEFAULTS.model, help="Model name (see `fragscan models`)."),
    dataset: str = typer.Argument(_DEFAULTS.dataset, help="Dataset adapter (see `fragscan datasets`)."),
    weights: list[Path] = typer.Option(
        [], help="Weights file (.safetensors preferred, or a .pt/.pth state dict); repeat to scan several checkpoints."
    ),
    checkpoints: Path | None = typer.Option(
        None, help="Directory of weights files (e.g. epochs), scanned in natural order into one report."
    ),
    data_root: Path | None = typer.Option(None, help="Directory the dataset adapter reads."),
    split: str = typer.Option(_DEFAULTS.split, help="Dataset split to evaluate on; val (held out of train) for masks."),
    pretrained: bool = typer.Option(
        False, "--pretrained", help="timm/tv models: start from ImageNet weights (--weights FILE, or the local cache; offline it fails fast)."
    ),
    stem: str = typer.Option(_DEFAULTS.stem, help=STEM_HELP),
    download: bool = typer.Option(False, "--download", help="Let the dataset adapter download missing files (needs network)."),
    plugin: list[Path] = typer.Option([], "--plugin", help="Load this plugin .py file first (repeatable)."),
    max_samples: int | None = typer.Option(
        _DEFAULTS.max_samples, help="Evaluation samples, drawn with --seed; 0 < N. Larger is slower and surer."
    ),
    all_samples: bool = typer.Option(False, "--all-samples", help="Evaluate on the whole split (overrides --max-samples)."),
    adaptive: bool = typer.Option(
        False,
        "--adaptive",
        help="Grow each sweep's samples (doubling from --initial-samples up to --max-samples) only until its classes "
        "are decided or out of reach: for CI audits and large models on CPU (docs/adaptive.md).",
    ),
    initial_samples: int | None = typer.Option(
        None, help=f"With --adaptive: samples of each sweep's first look (default {Adaptive().initial_samples})."
    ),
    batch_size: str = typer.Option(
        str(_DEFAULTS.batch_size), help="Evaluation batch size, or 'auto': the largest that fits (recorded)."
    ),
    filters: str = typer.Option(",".join(_DEFAULTS.filters), help="Comma-separated filters (see `fragscan filters`)."),
    thresholds: int = typer.Option(_DEFAULTS.thresholds, help="Thresholds per sweep (at least 3)."),
    attack: str = typer.Option(_DEFAULTS.attack, help="torchattacks class name (see `fragscan attacks`)."),
    eps: str = typer.Option(
        str(_DEFAULTS.eps), help="Perturbation budget in [0,1] pixels, or 'auto' to calibrate adv0 ≈ half of clean0."
    ),
    attack_space: str = typer.Option(_DEFAULTS.attack_space, help=ATTACK_SPACE_HELP),
    attack_mode: str = typer.Option(
        _DEFAULTS.attack_mode, help="regenerate: attack every filtered network; fixed: reuse examples from the unfiltered one."
    ),
    scope: str = typer.Option(_DEFAULTS.scope, help="local: one group at a time; global: all groups at once."),
    global_range: str = typer.Option(
        _DEFAULTS.global_range, help="Global thresholds over the pooled weight range, or 'unit' for the source's [-1, 1]."
    ),
    include: list[str] = typer.Option(
        [], help="Also analyse these parameters: a name glob, 'bias' or 'norm' (repeatable)."
    ),
    select: list[str] = typer.Option(
        [], help="Analyse only the groups whose names match this glob, e.g. 'layer4.*' (repeatable or comma-separated)."
    ),
    baseline: str = typer.Option(_DEFAULTS.baseline, help="Score baseline: 'one' (unfiltered) or 'density' (share present)."),
    normalise_by: str = typer.Option(
        _DEFAULTS.normalise_by, help="Divide curves by the 'unfiltered' accuracy or the source's 'first' threshold."
    ),
    norm_mode: str = typer.Option(
        _DEFAULTS.norm_mode, help="Normalisation layers in 'eval' mode, or the source's 'train' mode."
    ),
    tau: float = typer.Option(_DEFAULTS.tau, help="Robustness margin: |score| <= tau is robust."),
    classify: str = typer.Option(
        _DEFAULTS.classify, help="tau: robust when |score| <= tau; ci: when the 95% interval contains 0 or lies within ±tau."
    ),
    bootstrap: int = typer.Option(
        _DEFAULTS.bootstrap, help="Paired bootstrap resamples over samples for 95% score intervals (0: none)."
    ),
    summary_filter: str = typer.Option(_DEFAULTS.summary_filter, help="Filter whose class summarises a group."),
    summary_score: str = typer.Option(
        _DEFAULTS.summary_score, help="Score whose class summarises a group: clean, adversarial or difference."
    ),
    seed: int = typer.Option(_DEFAULTS.seed, help="Seed for the sample draw and attack randomness."),
    device: str = typer.Option(_DEFAULTS.device, help="auto (CUDA when present), cpu, cuda or cuda:N."),
    precision: str = typer.Option(
        _DEFAULTS.precision,
        help="fp32: exact, the obvious loop's numbers; bf16 or fp16 (CUDA): autocast, faster, checked against --precision-tolerance.",
    ),
    precision_tolerance: float = typer.Option(
        _DEFAULTS.precision_tolerance,
        help="Largest share of samples whose correctness on the unfiltered network bf16/fp16 may change; above it the sweep runs in fp32.",
    ),
    out: Path = typer.Option(Path("fragscan-out"), help="Directory for report.json, curves.csv, report.html and mask.safetensors (created if missing)."),
    resume: bool = typer.Option(
        True,
        "--resume/--no-resume",
        help="Continue an interrupted scan from the checkpoints in --out (the default); --no-resume discards them.",
    ),
    executor: str = typer.Option("local", help="Where sweeps run: 'local' (this process) or 'ray' (needs fragscan\\[ray])."),
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
    config = build_config(
        ScanConfig,
        model=model,
        dataset=dataset,
        weights=absolute(weights[0]) if len(weights) == 1 else None,
        checkpoints=absolute(
            checkpoint_files(checkpoints) if checkpoints is not None else weights if len(weights) > 1 else []
        ),
        data_root=absolute(data_root),
        split=split,
        pretrained=pretrained,
        stem=stem,
        download=download,
        plugins=absolute(plugin),
        max_samples=None if all_samples else max_samples,
        batch_size=batch_size if batch_size == "auto" else _integer(batch_size, "--batch-size"),
        filters=filters,
        thresholds=thresholds,
        attack=attack,
        eps=eps if eps == "auto" else _number(eps, "--eps"),
        attack_space=attack_space,
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
        adaptive=_adaptive(adaptive, initial_samples),
        seed=seed,
        device=device,
        precision=precision,
        precision_tolerance=precision_tolerance,
    )
    audit_policy = load_policy(policy) if policy else None
    if audit_policy is not None:  # a bad policy or baseline fails before the long work, not after
        audit_baseline = load_baseline(audit_policy)
        check_policy_fits(audit_policy, config.scope, has_baseline=audit_baseline is not None)
    # torch takes seconds to import: not before --help or an option error
    from ..executors import ExecutorOptions
    from ..resume import DIRECTORY_NAME
    from ..scan import scan_to

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
        stderr_console().print(
            f"interrupted: finished groups are kept in {out / DIRECTORY_NAME}; run the same command again to resume",
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
        audit_and_write(report, str(out / "report.json"), audit_policy, audit_baseline, out, quiet or json_output)


def _adaptive(adaptive: bool, initial_samples: int | None) -> dict | None:
    if not adaptive:
        if initial_samples is not None:
            raise ConfigError("--initial-samples sets where --adaptive starts; add --adaptive or drop it")
        return None
    return {} if initial_samples is None else {"initial_samples": initial_samples}


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
