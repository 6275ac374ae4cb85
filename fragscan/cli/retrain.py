"""``fragscan retrain``: fine-tune under a mask; compare with a random mask and no mask, repeated, with a verdict."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ..base.plugins import load_plugins
from ..config import RetrainConfig, build_config
from ._app import app, fails_cleanly
from ._options import PLUGIN_HELP, argument, option
from .scan import _number
from .ui import stderr_console, stdout_console

if TYPE_CHECKING:
    from ..report.retrain_model import Estimate


@app.command("retrain")
@fails_cleanly
def retrain_command(
    model: str = argument(RetrainConfig, "model", default=...),
    dataset: str = argument(RetrainConfig, "dataset", default=...),
    mask: Path = option(RetrainConfig, "mask"),
    weights: Path | None = option(RetrainConfig, "weights"),
    plugin: list[Path] = typer.Option([], "--plugin", help=PLUGIN_HELP),
    stem: str = option(RetrainConfig, "stem"),
    epochs: int = option(RetrainConfig, "epochs"),
    adversarial: bool = option(RetrainConfig, "adversarial", "--adversarial"),
    controls: str = option(RetrainConfig, "controls", text=True),
    repeats: int = option(RetrainConfig, "repeats"),
    bootstrap: int = option(RetrainConfig, "bootstrap"),
    attack: str = option(RetrainConfig, "attack"),
    eps: str = option(RetrainConfig, "eps", text=True),
    attack_space: str = option(RetrainConfig, "attack_space"),
    threat: str | None = option(RetrainConfig, "threat"),
    headline_eps: float | None = option(RetrainConfig, "headline_eps"),
    data_root: Path | None = option(RetrainConfig, "data_root"),
    train_split: str = option(RetrainConfig, "train_split"),
    eval_split: str = option(RetrainConfig, "eval_split"),
    max_samples: int | None = option(RetrainConfig, "max_samples"),
    train_samples: int | None = option(RetrainConfig, "train_samples"),
    lr: float = option(RetrainConfig, "lr"),
    batch_size: int = option(RetrainConfig, "batch_size"),
    weight_decay: float = option(RetrainConfig, "weight_decay"),
    seed: int = option(RetrainConfig, "seed"),
    device: str = option(RetrainConfig, "device"),
    out: Path = typer.Option(Path("retrain-out"), help="Directory for weights, unmasked weights, retrain.json/html."),
    json_output: bool = typer.Option(False, "--json", help="Also print the result JSON to stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No summary."),
) -> None:
    """Fine-tune only the mask's trainable elements, against a random mask and no mask; end in a verdict."""
    # torch and torchattacks take seconds to import: not before --help or an option error
    from ..outputs.retraining.writing import retrain_to
    from ..sweep.attacks import budget

    config = build_config(
        RetrainConfig,
        model=model, dataset=dataset, weights=weights, stem=stem, mask=mask, data_root=data_root,
        train_split=train_split, eval_split=eval_split, max_samples=max_samples, train_samples=train_samples,
        epochs=epochs, lr=lr, batch_size=batch_size, weight_decay=weight_decay, adversarial=adversarial, attack=attack,
        attack_space=attack_space, eps=eps if eps == "auto" else _number(eps, "--eps"), threat=threat,
        headline_eps=headline_eps,
        controls=() if controls.strip() == "none" else tuple(c.strip() for c in controls.split(",") if c.strip()),
        repeats=repeats, bootstrap=bootstrap, seed=seed, device=device,
    )
    load_plugins(plugin)  # before the dataset and model names are looked up
    console = stderr_console(quiet)
    with console.status(f"fine-tuning {len(config.controls) + 1} arm(s) x {config.repeats} repeat(s)"):
        outputs = retrain_to(config, out)
    result = outputs.result
    judged_by = budget(config.attack, result.eps_used) if result.threat is None else (
        f"worst case of --threat {result.threat.spec} at ε={result.eps_used:g} "
        f"(budgets {', '.join(f'{b:g}' for b in result.threat.budgets)})"
    )
    console.print(f"{judged_by}; judged on {result.samples} {eval_split} samples", highlight=False)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    for arm, summary in {"before": result.before, **result.arms}.items():
        console.print(
            f"  {arm:<10} clean {_estimate(summary.clean)}  adversarial {_estimate(summary.adversarial)}"
            f"  ({summary.trainable_share:.1%} trainable, {len(summary.runs)} run(s))",
            highlight=False,
        )
    for name, difference in result.comparison.items():
        console.print(
            f"  {name.replace('_', ' ')}: adversarial {_estimate(difference.adversarial, '+')}"
            f"  clean {_estimate(difference.clean, '+')}",
            highlight=False,
        )
    console.print(f"frozen elements bit-identical: {'yes' if result.frozen_bit_identical else 'NO'}", highlight=False)
    console.print(result.verdict, style="bold", highlight=False, markup=False)
    for path in outputs.written:
        console.print(f"wrote {path}", highlight=False)
    if json_output:
        stdout_console().out(result.model_dump_json(indent=1), highlight=False)


def _estimate(value: Estimate, sign: str = "") -> str:
    low, high = value.interval
    return f"{value.estimate:{sign}.4f} [{low:{sign}.4f}, {high:{sign}.4f}]"
