"""``fragscan train``: train a registered model, writing safetensors checkpoints and a sidecar."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.text import Text

from ..base.plugins import load_plugins
from ..config import TrainConfig, build_config
from ._app import app, fails_cleanly
from ._options import PLUGIN_HELP, argument, option
from .ui import batch_progress, stderr_console


@app.command("train")
@fails_cleanly
def train_command(
    model: str = argument(TrainConfig, "model"),
    dataset: str = argument(TrainConfig, "dataset"),
    epochs: int = option(TrainConfig, "epochs"),
    save_every: int = option(TrainConfig, "save_every"),
    weights: Path | None = option(TrainConfig, "weights"),
    pretrained: bool = option(TrainConfig, "pretrained", "--pretrained"),
    plugin: list[Path] = typer.Option([], "--plugin", help=PLUGIN_HELP),
    stem: str = option(TrainConfig, "stem"),
    data_root: Path | None = option(TrainConfig, "data_root"),
    split: str = option(TrainConfig, "split"),
    eval_split: str = option(TrainConfig, "eval_split"),
    lr: float = option(TrainConfig, "lr"),
    batch_size: int = option(TrainConfig, "batch_size"),
    weight_decay: float = option(TrainConfig, "weight_decay"),
    seed: int = option(TrainConfig, "seed"),
    device: str = option(TrainConfig, "device"),
    out: Path = typer.Option(Path("checkpoints"), help="Directory for epoch_NNN.safetensors and training.json."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No per-epoch lines."),
) -> None:
    """Train with the source's setup (Adam, cross-entropy), saving per-epoch checkpoints to scan."""
    config = build_config(
        TrainConfig, model=model, dataset=dataset, epochs=epochs, save_every=save_every, weights=weights,
        pretrained=pretrained, stem=stem, data_root=data_root, split=split, eval_split=eval_split, lr=lr,
        batch_size=batch_size, weight_decay=weight_decay, seed=seed, device=device,
    )
    load_plugins(plugin)  # before the dataset and model names are looked up
    from ..models.train import (  # torch takes seconds to import: not before --help or an option error
        Checkpoint,
        train_to,
    )

    console = stderr_console(quiet)

    def on_epoch(epoch: int, loss: float, checkpoint: Checkpoint | None) -> None:
        line = f"epoch {epoch:>3}  loss {loss:.4f}"
        if checkpoint is not None:
            line += f"  {eval_split} accuracy {checkpoint.accuracy:.4f}  -> {out / checkpoint.file}"
        console.print(line, highlight=False)

    with batch_progress(console) as on_batch:
        outputs = train_to(config, out, on_epoch=on_epoch, on_batch=on_batch)
    trained = len(outputs.record.checkpoints)
    for warning in outputs.record.warnings:
        console.print(Text.assemble(("warning:", "yellow"), " ", warning), highlight=False, soft_wrap=True)
    console.print(f"wrote {trained} checkpoint(s) and {out / 'training.json'}", highlight=False)
