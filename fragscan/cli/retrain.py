"""``fragscan retrain``: fine-tune under a mask, compare with an unmasked control."""

from __future__ import annotations

from pathlib import Path

import typer

from ..config import build_config
from ..models.weights import safetensors_bytes
from ..files import ensure_writable_dir, write_atomic
from ..retrain import RetrainConfig, retrain
from ..retrain_html import render_html
from ..ui import stderr_console, stdout_console
from ._app import app, fails_cleanly
from .scan import ATTACK_SPACE_HELP, STEM_HELP, _number


@app.command("retrain")
@fails_cleanly
def retrain_command(
    model: str = typer.Argument(..., help="Model name (see `fragscan models`)."),
    dataset: str = typer.Argument(..., help="Dataset adapter (see `fragscan datasets`)."),
    mask: Path = typer.Option(..., help="Retrain mask (mask.safetensors from a scan or `fragscan mask`)."),
    weights: Path | None = typer.Option(None, help="Weights to start from; default: the model's own."),
    stem: str = typer.Option("imagenet", help=STEM_HELP),
    epochs: int = typer.Option(5, help="Fine-tuning epochs (the control gets the same)."),
    adversarial: bool = typer.Option(False, "--adversarial", help="Fine-tune on adversarial examples (same attack and eps)."),
    no_control: bool = typer.Option(False, "--no-control", help="Skip the unmasked control run."),
    attack: str = typer.Option("FGSM", help="torchattacks class for evaluation and --adversarial."),
    eps: str = typer.Option("auto", help="Budget in [0,1] pixels, or 'auto' (adversarial ≈ half of clean before training)."),
    attack_space: str = typer.Option("pixel", help=ATTACK_SPACE_HELP),
    data_root: Path | None = typer.Option(None, help="Directory the dataset adapter reads."),
    train_split: str = typer.Option("train", help="Split to fine-tune on."),
    eval_split: str = typer.Option("test", help="Split to evaluate on."),
    max_samples: int | None = typer.Option(1000, help="Evaluation samples (seeded draw)."),
    lr: float = typer.Option(1e-3, help="Adam learning rate."),
    batch_size: int = typer.Option(100, help="Training batch size."),
    weight_decay: float = typer.Option(0.0, help="Adam weight decay (frozen elements stay bit-identical)."),
    seed: int = typer.Option(0, help="Seeds data order, evaluation draw and attacks."),
    device: str = typer.Option("auto", help="auto (CUDA when present), cpu, cuda or cuda:N."),
    out: Path = typer.Option(Path("retrain-out"), help="Directory for weights, control weights, retrain.json/html."),
    json_output: bool = typer.Option(False, "--json", help="Also print the result JSON to stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No summary."),
) -> None:
    """Fine-tune only the mask's trainable elements; report accuracy before, after and for the control."""
    config = build_config(
        RetrainConfig,
        model=model, dataset=dataset, weights=weights, stem=stem, mask=mask, data_root=data_root, train_split=train_split,
        eval_split=eval_split, max_samples=max_samples, epochs=epochs, lr=lr, batch_size=batch_size,
        weight_decay=weight_decay, adversarial=adversarial, attack=attack, attack_space=attack_space,
        eps=eps if eps == "auto" else _number(eps, "--eps"), control=not no_control, seed=seed, device=device,
    )
    ensure_writable_dir(out)
    console = stderr_console(quiet)
    with console.status("fine-tuning (masked, then control)"):
        done = retrain(config)
    result = done.result
    written = [out / "weights.safetensors"]
    write_atomic(written[0], safetensors_bytes(done.selective, {"model": model, "mask": str(mask)}))
    if done.control is not None:
        written.append(out / "control.safetensors")
        write_atomic(written[-1], safetensors_bytes(done.control, {"model": model, "mask": "none (control)"}))
    else:  # an earlier run's control would pass for this result's
        (out / "control.safetensors").unlink(missing_ok=True)
    written.append(out / "retrain.json")
    write_atomic(written[-1], result.model_dump_json(indent=1).encode())
    written.append(out / "retrain.html")
    write_atomic(written[-1], render_html(result).encode())
    console.print(f"ε = {result.eps_used:.4g}; {result.trainable_share:.1%} of elements trainable", highlight=False)
    for label, accuracy in (("before", result.before), ("selective", result.selective), ("control", result.control)):
        if accuracy is not None:
            console.print(f"  {label:<10} clean {accuracy.clean:.4f}  adversarial {accuracy.adversarial:.4f}", highlight=False)
    console.print(f"frozen elements bit-identical: {'yes' if result.frozen_bit_identical else 'NO'}", highlight=False)
    for path in written:
        console.print(f"wrote {path}", highlight=False)
    if json_output:
        stdout_console().out(result.model_dump_json(indent=1), highlight=False)
