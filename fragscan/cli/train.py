"""``fragscan train``: train a registered model, writing safetensors checkpoints and a sidecar."""

from __future__ import annotations

import hashlib
from pathlib import Path

import typer

from .._version import __version__
from ..config import TrainSettings, build_config
from ..errors import ConfigError
from ..plugins import load_plugins
from ..files import ensure_writable_dir, write_atomic
from ..ui import stderr_console
from ._app import app, fails_cleanly
from .scan import STEM_HELP


@app.command("train")
@fails_cleanly
def train_command(
    model: str = typer.Argument(..., help="Model name (see `fragscan models`)."),
    dataset: str = typer.Argument(..., help="Dataset adapter (see `fragscan datasets`)."),
    epochs: int = typer.Option(10, help="Training epochs."),
    save_every: int = typer.Option(10, help="Write a checkpoint every K epochs (and after the last)."),
    weights: Path | None = typer.Option(None, help="Start from these weights; default: a fresh seeded initialisation."),
    pretrained: bool = typer.Option(
        False,
        "--pretrained",
        help="timm/tv models: start from ImageNet weights (--weights FILE, or the local cache), fitted to the data.",
    ),
    plugin: list[Path] = typer.Option([], "--plugin", help="Load this plugin .py file first (repeatable)."),
    stem: str = typer.Option("imagenet", help=STEM_HELP),
    data_root: Path | None = typer.Option(None, help="Directory the dataset adapter reads."),
    split: str = typer.Option("train", help="Split to train on (train: the training data less val)."),
    eval_split: str = typer.Option("test", help="Split whose clean accuracy each checkpoint records."),
    lr: float = typer.Option(1e-3, help="Adam learning rate (the source's 1e-3)."),
    batch_size: int = typer.Option(100, help="Batch size (the source's 100)."),
    weight_decay: float = typer.Option(0.0, help="Adam weight decay."),
    seed: int = typer.Option(0, help="Seeds initialisation and data order."),
    device: str = typer.Option("auto", help="auto (CUDA when present), cpu, cuda or cuda:N."),
    out: Path = typer.Option(Path("checkpoints"), help="Directory for epoch_NNN.safetensors and training.json."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No per-epoch lines."),
) -> None:
    """Train with the source's setup (Adam, cross-entropy), saving per-epoch checkpoints to scan."""
    if save_every < 1:
        raise ConfigError(f"--save-every must be at least 1, got {save_every}")
    settings = build_config(
        TrainSettings, epochs=epochs, lr=lr, batch_size=batch_size, weight_decay=weight_decay, seed=seed
    )
    load_plugins(plugin)  # before the dataset and model names are looked up
    # torch takes seconds to import: not before --help or an option error
    from ..data import create_dataset
    from ..models.weights import safetensors_bytes
    from ..runtime import library_versions, resolve_device
    from ..train import Checkpoint, TrainRecord, accuracy, checkpoint_state, initial_model, train

    resolved = resolve_device(device)
    ensure_writable_dir(out)
    train_set = create_dataset(dataset, root=data_root, split=split)
    network = initial_model(model, dataset, train_set, weights, seed, stem, pretrained=pretrained)
    eval_set = create_dataset(dataset, root=data_root, split=eval_split)
    console = stderr_console(quiet)
    losses: list[float] = []
    checkpoints: list[Checkpoint] = []

    def on_epoch(epoch: int, loss: float) -> None:
        losses.append(loss)
        if epoch % save_every and epoch != epochs:
            console.print(f"epoch {epoch:>3}  loss {loss:.4f}", highlight=False)
            return
        data = safetensors_bytes(checkpoint_state(network), {"model": model, "epoch": str(epoch)})
        path = out / f"epoch_{epoch:03d}.safetensors"
        write_atomic(path, data)
        clean = accuracy(network, eval_set, device=resolved)
        checkpoints.append(Checkpoint(epoch=epoch, file=path.name, sha256=hashlib.sha256(data).hexdigest(), loss=loss, accuracy=clean))
        console.print(f"epoch {epoch:>3}  loss {loss:.4f}  {eval_split} accuracy {clean:.4f}  -> {path}", highlight=False)

    train(network, train_set, settings, device=resolved, on_epoch=on_epoch)
    record = TrainRecord(
        fragscan_version=__version__,
        model=model,
        dataset=dataset,
        train_split=split,
        eval_split=eval_split,
        holdout=getattr(train_set, "holdout", None),
        initial_weights=None if weights is None else str(weights),
        stem=stem,
        settings=settings.model_dump(),
        device_used=str(resolved),
        versions=library_versions(),
        losses=losses,
        checkpoints=checkpoints,
    )
    write_atomic(out / "training.json", record.model_dump_json(indent=1).encode())
    console.print(f"wrote {len(checkpoints)} checkpoint(s) and {out / 'training.json'}", highlight=False)
