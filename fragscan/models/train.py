"""Training with the source's defaults: Adam, lr 1e-3, batch 100, cross-entropy.

``train`` optionally takes a retrain mask: gradients are multiplied by it, and because Adam's
weight decay and moment estimates still move an element whose gradient is zero, every frozen
element is also restored from a saved copy after each optimizer step, so it stays bit-identical.
A batch-norm layer whose parameters are all frozen runs in eval mode, so its running statistics
stay too, also when an attack (`--adversarial`) has put the network back in train mode.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .._version import __version__
from ..base.errors import ConfigError
from ..base.files import ensure_writable_dir, write_atomic
from ..base.runtime import library_versions, resolve_device
from ..config import Stem, TrainConfig, TrainSettings
from ..data import create_dataset, same_samples
from . import Normalized
from .fitting import model_for_data
from .weights import safetensors_bytes

# Replaces a training batch by adversarial examples: (images, labels) -> images.
Perturb = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def accuracy(model: nn.Module, dataset: Dataset, batch_size: int = 256, device: str | torch.device = "cpu") -> float:
    model.eval()
    correct = total = 0
    with torch.inference_mode():
        for images, labels in DataLoader(dataset, batch_size=batch_size):
            correct += int((model(images.to(device)).argmax(1) == labels.to(device)).sum())
            total += len(labels)
    return correct / total


class FrozenElements:
    """Keeps the elements a mask marks 0 exactly as they were, whatever the optimizer does; a
    normalisation layer whose parameters are all frozen also keeps its running statistics."""

    def __init__(self, parameters: dict[str, nn.Parameter], mask: dict[str, torch.Tensor]):
        self.entries = []
        for name, parameter in parameters.items():
            trainable = mask[name].to(parameter.device).bool()
            if bool(trainable.all()):
                continue
            self.entries.append((parameter, trainable, parameter.detach().clone()))
        self._fully_frozen = {id(parameter) for parameter, trainable, _ in self.entries if not trainable.any()}

    def freeze_norm_statistics(self, model: nn.Module) -> None:
        """Eval mode (running statistics used, not updated) for every normalisation layer whose
        parameters are all frozen: a frozen layer should compute tomorrow what it computes today."""
        for module in model.modules():
            parameters = list(module.parameters(recurse=False))
            if (
                isinstance(module, nn.modules.batchnorm._NormBase)
                and parameters
                and all(id(p) in self._fully_frozen for p in parameters)
            ):
                module.eval()

    def mask_gradients(self) -> None:
        for parameter, trainable, _ in self.entries:
            if parameter.grad is not None:
                parameter.grad.mul_(trainable)

    def restore(self) -> None:
        with torch.no_grad():
            for parameter, trainable, saved in self.entries:
                parameter.copy_(torch.where(trainable, parameter, saved))


def train(
    model: nn.Module,
    dataset: Dataset,
    settings: TrainSettings = TrainSettings(),
    *,
    device: str | torch.device = "cpu",
    on_epoch: Callable[[int, float], None] | None = None,
    mask: dict[str, torch.Tensor] | None = None,
    attack: Perturb | None = None,
    on_batch: Callable[[int, int, int], None] | None = None,
) -> nn.Module:
    """Train ``model`` (taking pixels in [0,1]) in place; ``on_epoch(epoch, mean_loss)`` after each epoch,
    ``on_batch(epoch, batches_done, batches)`` after each batch (an epoch can take minutes).

    ``mask`` (by name in ``model.named_parameters()``, 1 = trainable) freezes elements bit-exactly;
    ``attack`` replaces each batch by adversarial examples crafted against the current model.
    """
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    loader = DataLoader(dataset, batch_size=settings.batch_size, shuffle=True, generator=generator)
    model.to(device)
    frozen = FrozenElements(dict(model.named_parameters()), mask) if mask is not None else None
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(1, settings.epochs + 1):
        model.train()
        if frozen is not None:
            frozen.freeze_norm_statistics(model)
        total = 0.0
        for done, (images, labels) in enumerate(loader, start=1):
            images, labels = images.to(device), labels.to(device)
            if attack is not None:
                images = attack(images, labels)
                if frozen is not None:  # torchattacks puts the whole network back in train mode after an attack
                    frozen.freeze_norm_statistics(model)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(images), labels)
            loss.backward()
            if frozen is not None:
                frozen.mask_gradients()
            optimizer.step()
            if frozen is not None:
                frozen.restore()
            total += _finite(loss.item(), epoch, settings) * len(labels)
            if on_batch is not None:
                on_batch(epoch, done, len(loader))
        if on_epoch is not None:
            on_epoch(epoch, total / len(dataset))
    return model.eval()


def _finite(loss: float, epoch: int, settings: TrainSettings) -> float:
    """Stop at the first non-finite loss: every later step would only write NaN weights."""
    if not math.isfinite(loss):
        raise ConfigError(
            f"training diverged in epoch {epoch} (loss {loss}); stopped before writing its weights: lower --lr "
            f"(now {settings.lr:g}) or --weight-decay (now {settings.weight_decay:g})"
        )
    return loss


class Checkpoint(BaseModel):
    epoch: int
    file: str
    sha256: str
    loss: float = Field(description="mean training loss of that epoch")
    accuracy: float = Field(description="clean accuracy on the evaluation split")


class TrainRecord(BaseModel):
    """The sidecar ``fragscan train`` writes next to its checkpoints."""

    fragscan_version: str
    model: str
    dataset: str
    train_split: str
    eval_split: str
    holdout: str | None = Field(None, description="how the validation split was held out of the training data")
    initial_weights: str | None
    stem: str = Field("imagenet", description="paper built-ins' first layers (--stem); scan and retrain need the same")
    optimizer: str = "Adam"
    loss: str = "cross-entropy"
    settings: dict[str, float | int]
    device_used: str
    versions: dict[str, str]
    losses: list[float] = Field(description="mean training loss per epoch")
    checkpoints: list[Checkpoint]
    warnings: list[str] = Field(default_factory=list, description="what makes the recorded accuracies mean less")


def initial_model(
    name: str, dataset_name: str, dataset: Dataset, weights: str | Path | None, seed: int, stem: Stem = "imagenet",
    *, pretrained: bool = False,
) -> Normalized:
    """A model to train, fitted to ``dataset`` as a scan fits it: from ``weights``, ImageNet weights
    (``pretrained``), or freshly initialised with ``seed`` (never from the model's shipped default weights)."""
    torch.manual_seed(seed)
    return model_for_data(
        name, dataset_name, dataset, weights=weights, default_weights=weights is not None, stem=stem,
        pretrained=pretrained,
    )


def checkpoint_state(model: Normalized) -> dict[str, torch.Tensor]:
    """The user's network's state dict, ready for safetensors (contiguous, on the CPU)."""
    return {k: v.detach().cpu().contiguous() for k, v in model.net.state_dict().items()}


class TrainOutputs(BaseModel):
    """What :func:`train_to` wrote."""

    model_config = ConfigDict(frozen=True)

    record: TrainRecord
    written: list[Path] = Field(description="the epoch_NNN.safetensors checkpoints, then training.json")


def train_to(
    config: TrainConfig,
    out: str | Path,
    *,
    on_epoch: Callable[[int, float, Checkpoint | None], None] | None = None,
    on_batch: Callable[[int, int, int], None] | None = None,
) -> TrainOutputs:
    """Train as ``config`` says, writing into the directory ``out`` (created if missing), each file
    atomically: ``epoch_NNN.safetensors`` every ``save_every`` epochs and after the last, then
    ``training.json``. ``on_epoch(epoch, mean_loss, checkpoint)`` after each epoch; ``checkpoint``
    is None for an epoch that wrote none; ``on_batch`` as :func:`train` calls it."""
    if config.split == config.eval_split:  # as retrain refuses to judge on what it fitted
        raise ConfigError(
            f"--split and --eval-split are both {config.split!r}: each checkpoint's accuracy would be measured on "
            "the samples it trained on; pass --eval-split with another split (test, val)"
        )
    device = resolve_device(config.device)
    directory = ensure_writable_dir(Path(out))
    train_set = create_dataset(config.dataset, root=config.data_root, split=config.split)
    network = initial_model(
        config.model, config.dataset, train_set, config.weights, config.seed, config.stem, pretrained=config.pretrained
    )
    eval_set = create_dataset(config.dataset, root=config.data_root, split=config.eval_split)
    warnings = []
    if same_samples(train_set, eval_set):  # one .npz file or CLASS folder answers every split name
        warnings.append(
            f"the {config.eval_split!r} split holds the very samples of the {config.split!r} split it trains on (one "
            "file or folder is one split), so the recorded accuracy is on trained samples; give separate "
            "train and test data to judge apart"
        )
    losses: list[float] = []
    checkpoints: list[Checkpoint] = []

    def after_epoch(epoch: int, loss: float) -> None:
        losses.append(loss)
        checkpoint = None
        if epoch % config.save_every == 0 or epoch == config.epochs:
            data = safetensors_bytes(checkpoint_state(network), {"model": config.model, "epoch": str(epoch)})
            path = directory / f"epoch_{epoch:03d}.safetensors"
            write_atomic(path, data)
            checkpoint = Checkpoint(
                epoch=epoch, file=path.name, sha256=hashlib.sha256(data).hexdigest(), loss=loss,
                accuracy=accuracy(network, eval_set, device=device),
            )
            checkpoints.append(checkpoint)
        if on_epoch is not None:
            on_epoch(epoch, loss, checkpoint)

    train(network, train_set, config.optimiser, device=device, on_epoch=after_epoch, on_batch=on_batch)
    record = TrainRecord(
        fragscan_version=__version__,
        model=config.model,
        dataset=config.dataset,
        train_split=config.split,
        eval_split=config.eval_split,
        holdout=getattr(train_set, "holdout", None),
        initial_weights=None if config.weights is None else str(config.weights),
        stem=config.stem,
        settings=config.optimiser.model_dump(),
        device_used=str(device),
        versions=library_versions(),
        losses=losses,
        checkpoints=checkpoints,
        warnings=warnings,
    )
    write_atomic(directory / "training.json", record.model_dump_json(indent=1).encode())
    written = [directory / checkpoint.file for checkpoint in checkpoints]
    return TrainOutputs(record=record, written=[*written, directory / "training.json"])
