"""``fragscan retrain``: fine-tune under a mask; compare with a random mask and no mask, repeated, with a verdict."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ..config import build_config
from ..plugins import load_plugins
from ..files import ensure_writable_dir, write_atomic
from ..ui import stderr_console, stdout_console
from ._app import app, fails_cleanly
from .scan import ATTACK_SPACE_HELP, STEM_HELP, _number

if TYPE_CHECKING:
    from ..retrain import Estimate


@app.command("retrain")
@fails_cleanly
def retrain_command(
    model: str = typer.Argument(..., help="Model name (see `fragscan models`)."),
    dataset: str = typer.Argument(..., help="Dataset adapter (see `fragscan datasets`)."),
    mask: Path = typer.Option(..., help="Retrain mask (mask.safetensors from a scan or `fragscan mask`)."),
    weights: Path | None = typer.Option(None, help="Weights to start from; default: the model's own."),
    plugin: list[Path] = typer.Option([], "--plugin", help="Load this plugin .py file first (repeatable)."),
    stem: str = typer.Option("imagenet", help=STEM_HELP),
    epochs: int = typer.Option(5, help="Fine-tuning epochs (every arm gets the same)."),
    adversarial: bool = typer.Option(False, "--adversarial", help="Fine-tune on adversarial examples (same attack and eps)."),
    controls: str = typer.Option(
        "unmasked,random", help="Control arms, comma-separated: unmasked, random (same count per parameter), or none."
    ),
    repeats: int = typer.Option(3, help="Runs per arm (data order seeded seed, seed + 1, ...)."),
    bootstrap: int = typer.Option(2000, help="Bootstrap resamples for the intervals (over test samples and repeats)."),
    attack: str = typer.Option("FGSM", help="torchattacks class for evaluation and --adversarial."),
    eps: str = typer.Option("auto", help="Budget in [0,1] pixels, or 'auto' (adversarial ≈ half of clean before training)."),
    attack_space: str = typer.Option("pixel", help=ATTACK_SPACE_HELP),
    data_root: Path | None = typer.Option(None, help="Directory the dataset adapter reads."),
    train_split: str = typer.Option("train", help="Split to fine-tune on (train: the training data less val)."),
    eval_split: str = typer.Option("test", help="Split to judge on; refused if the mask was scanned on it."),
    max_samples: int | None = typer.Option(1000, help="Evaluation samples (seeded draw)."),
    train_samples: int | None = typer.Option(None, help="Fine-tuning samples (seeded draw); default: the whole split."),
    lr: float = typer.Option(1e-3, help="Adam learning rate."),
    batch_size: int = typer.Option(100, help="Training batch size."),
    weight_decay: float = typer.Option(0.0, help="Adam weight decay (frozen elements stay bit-identical)."),
    seed: int = typer.Option(0, help="Seeds data order, evaluation draw and attacks."),
    device: str = typer.Option("auto", help="auto (CUDA when present), cpu, cuda or cuda:N."),
    out: Path = typer.Option(Path("retrain-out"), help="Directory for weights, unmasked weights, retrain.json/html."),
    json_output: bool = typer.Option(False, "--json", help="Also print the result JSON to stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No summary."),
) -> None:
    """Fine-tune only the mask's trainable elements, against a random mask and no mask; end in a verdict."""
    # torch and torchattacks take seconds to import: not before --help or an option error
    from ..attacks import budget
    from ..models.weights import safetensors_bytes
    from ..retrain import RetrainConfig, retrain
    from ..retrain_html import render_html

    config = build_config(
        RetrainConfig,
        model=model, dataset=dataset, weights=weights, stem=stem, mask=mask, data_root=data_root, train_split=train_split,
        eval_split=eval_split, max_samples=max_samples, train_samples=train_samples, epochs=epochs, lr=lr,
        batch_size=batch_size, weight_decay=weight_decay, adversarial=adversarial, attack=attack,
        attack_space=attack_space, eps=eps if eps == "auto" else _number(eps, "--eps"),
        controls=() if controls.strip() == "none" else tuple(c.strip() for c in controls.split(",") if c.strip()),
        repeats=repeats, bootstrap=bootstrap, seed=seed, device=device,
    )
    ensure_writable_dir(out)
    load_plugins(plugin)  # before the dataset and model names are looked up
    console = stderr_console(quiet)
    with console.status(f"fine-tuning {len(config.controls) + 1} arm(s) x {config.repeats} repeat(s)"):
        done = retrain(config)
    result = done.result
    written = [out / "weights.safetensors"]
    write_atomic(written[0], safetensors_bytes(done.weights["selective"], {"model": model, "mask": str(mask)}))
    if "unmasked" in done.weights:
        written.append(out / "unmasked.safetensors")
        unmasked = safetensors_bytes(done.weights["unmasked"], {"model": model, "mask": "none (unmasked control)"})
        write_atomic(written[-1], unmasked)
    else:  # an earlier run's control would pass for this result's
        (out / "unmasked.safetensors").unlink(missing_ok=True)
    written.append(out / "retrain.json")
    write_atomic(written[-1], result.model_dump_json(indent=1).encode())
    written.append(out / "retrain.html")
    write_atomic(written[-1], render_html(result).encode())
    if result.mask_split is None:
        console.print("[yellow]the mask does not say which split its scan ran on: leakage cannot be ruled out[/]")
    console.print(f"{budget(config.attack, result.eps_used)}; judged on {result.samples} {eval_split} samples", highlight=False)
    if result.arms["selective"].trainable_share == 0:
        console.print(
            "[yellow]warning:[/yellow] the mask freezes every element, so nothing was retrained; "
            "derive one that leaves some trainable (fragscan mask REPORT --others train, or another --policy)",
            highlight=False,
        )
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
    for path in written:
        console.print(f"wrote {path}", highlight=False)
    if json_output:
        stdout_console().out(result.model_dump_json(indent=1), highlight=False)


def _estimate(value: Estimate, sign: str = "") -> str:
    low, high = value.interval
    return f"{value.estimate:{sign}.4f} [{low:{sign}.4f}, {high:{sign}.4f}]"
