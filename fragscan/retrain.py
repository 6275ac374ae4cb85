"""Selective retraining (method §7): fine-tune only what a mask allows, compare with an unmasked control.

``retrain`` evaluates clean and adversarial accuracy before, after masked fine-tuning and after the
same fine-tuning with no mask (same seed, data order and budget), and checks that every frozen
element is bit-identical. It returns the result and both networks' weights; it writes nothing.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torchattacks.attack import Attack

from ._version import __version__
from .attacks import build_attack, calibrate_eps, check_attack, craft, predictions
from .config import AttackSpace, PixelBudget, SampleLimit
from .data import create_dataset, evaluation_tensors
from .engine import analysis_mode
from .errors import InputError
from .masks import Mask, load_mask
from .fitting import model_for_data
from .models import Normalized, Stem
from .runtime import library_versions, resolve_device
from .train import TrainSettings, train

SCHEMA_VERSION = "1.2"


class RetrainConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field("digits-cnn", description="registered model name")
    dataset: str = Field("digits", description="registered dataset adapter")
    weights: Path | None = Field(None, description="weights to start from; default: the model's own")
    stem: Stem = Field("imagenet", description="paper built-ins: the first layers the scan used (--stem)")
    mask: Path = Field(description="retrain mask (mask.safetensors), 1 = trainable")
    data_root: Path | None = Field(None, description="directory the dataset adapter reads")
    train_split: str = Field("train", description="split to fine-tune on")
    eval_split: str = Field("test", description="split to evaluate on")
    max_samples: SampleLimit = Field(1000, description="evaluation samples (seeded draw); None = all")
    epochs: int = Field(5, description="fine-tuning epochs (same budget for the control)")
    lr: float = Field(1e-3, description="Adam learning rate (the source's)")
    batch_size: int = Field(100, description="training batch size (the source's)")
    weight_decay: float = Field(0.0, description="Adam weight decay; frozen elements stay bit-identical anyway")
    adversarial: bool = Field(False, description="fine-tune on adversarial examples crafted against the current network")
    attack: str = Field("FGSM", description="torchattacks class for evaluation (and --adversarial training)")
    eps: PixelBudget = Field("auto", description="budget in [0,1] pixels, or auto (adv0 ≈ half of clean0)")
    attack_space: AttackSpace = "pixel"
    control: bool = Field(True, description="also fine-tune with no mask, same seed and budget")
    seed: int = Field(0, description="seeds the data order, evaluation draw and attacks")
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N")

    @field_validator("epochs", "batch_size")
    @classmethod
    def _positive(cls, value, info):
        if value < 1:
            raise ValueError(f"--{info.field_name.replace('_', '-')} must be at least 1, got {value}")
        return value


class Accuracy(BaseModel):
    clean: float
    adversarial: float


class ParameterChange(BaseModel):
    name: str
    elements: int
    trainable: int = Field(description="elements the mask lets train")
    moved: int = Field(description="trainable elements whose value changed")
    frozen_moved: int = Field(description="frozen elements whose bits changed (must be 0)")


class RetrainResult(BaseModel):
    schema_version: str = SCHEMA_VERSION
    fragscan_version: str
    settings: RetrainConfig
    eps_used: float
    device_used: str
    versions: dict[str, str]
    mask_metadata: dict[str, str]
    trainable_share: float = Field(description="share of all parameter elements the mask lets train")
    samples: int = Field(description="evaluation samples")
    before: Accuracy
    selective: Accuracy = Field(description="after fine-tuning with the mask")
    control: Accuracy | None = Field(description="after the same fine-tuning with no mask")
    parameters: list[ParameterChange]
    frozen_bit_identical: bool = Field(description="every masked-out element kept its exact bits")
    duration_s: float


@dataclass(frozen=True)
class Retrained:
    result: RetrainResult
    selective: dict[str, torch.Tensor]  # state dict of the user's network after masked fine-tuning
    control: dict[str, torch.Tensor] | None


def evaluate(model: Normalized, images, labels, attack: Attack, batch_size: int, seed: int) -> Accuracy:
    """Clean accuracy, and accuracy under ``attack``, built on this very network."""
    with analysis_mode(model):
        clean = (predictions(model, images, batch_size) == labels).double().mean().item()
        adversarial_images = craft(attack, images, labels, batch_size, seed)
        adversarial = (predictions(model, adversarial_images, batch_size) == labels).double().mean().item()
    return Accuracy(clean=clean, adversarial=adversarial)


_SAME_WIDTH_INTEGER = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def bits_differ(old: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    """Element-wise: are the bit patterns different? (``==`` would call −0.0 and 0.0 equal, NaN unequal)."""
    integer = _SAME_WIDTH_INTEGER[old.element_size()]
    return old.contiguous().view(integer) != new.contiguous().view(integer)


def _changes(before: dict[str, torch.Tensor], after: Normalized, mask: Mask) -> list[ParameterChange]:
    changes = []
    for name, parameter in after.net.named_parameters():
        trainable = mask.tensors[name].bool()
        differs = bits_differ(before[name], parameter.detach().cpu())
        changes.append(
            ParameterChange(
                name=name,
                elements=parameter.numel(),
                trainable=int(trainable.sum()),
                moved=int((differs & trainable).sum()),
                frozen_moved=int((differs & ~trainable).sum()),
            )
        )
    return changes


def retrain(config: RetrainConfig) -> Retrained:
    """Fine-tune ``config.weights`` under ``config.mask`` (and, unless disabled, without it)."""
    started = time.perf_counter()
    check_attack(config.attack, config.eps, config.attack_space)
    device = resolve_device(config.device)
    settings = TrainSettings(
        epochs=config.epochs, lr=config.lr, batch_size=config.batch_size, weight_decay=config.weight_decay, seed=config.seed
    )
    train_set = create_dataset(config.dataset, root=config.data_root, split=config.train_split)
    original = model_for_data(config.model, config.dataset, train_set, weights=config.weights, stem=config.stem)
    mask = load_mask(config.mask, original.net)
    masked_model = mask.metadata.get("model")
    if masked_model and masked_model != config.model:  # the shapes can fit another model's by chance
        raise InputError(
            f"mask {str(config.mask)!r} was derived from a scan of {masked_model!r}, not {config.model!r}; "
            "derive one from a scan of this model (fragscan mask REPORT)"
        )
    images, labels, _ = evaluation_tensors(
        create_dataset(config.dataset, root=config.data_root, split=config.eval_split), config.max_samples, config.seed
    )
    images, labels = images.to(device), labels.to(device)
    original.to(device)
    start_weights = {k: v.detach().cpu().clone() for k, v in original.net.state_dict().items()}
    batch = config.batch_size

    def attack_on(model: Normalized, eps: float) -> Attack:
        return build_attack(config.attack, model, eps, model.spec.num_classes, attack_space=config.attack_space)

    if config.eps == "auto":
        with analysis_mode(original):
            eps = calibrate_eps(lambda e: attack_on(original, e), original, images, labels, batch, config.seed)
    else:
        eps = float(config.eps)

    def accuracy_of(model: Normalized) -> Accuracy:
        return evaluate(model, images, labels, attack_on(model, eps), batch, config.seed)

    before = accuracy_of(original)

    def fine_tune(with_mask: bool) -> Normalized:
        model = copy.deepcopy(original)
        adversary = attack_on(model, eps) if config.adversarial else None
        per_name = {f"net.{k}": v for k, v in mask.tensors.items()} if with_mask else None
        # The wrapper's own parameters (none for built-ins) are not in the mask: they stay as they are.
        if per_name is not None:
            for name, parameter in model.named_parameters():
                per_name.setdefault(name, torch.zeros(parameter.shape, dtype=torch.uint8))
        return train(model, train_set, settings, device=device, mask=per_name, adversary=adversary)

    selective_model = fine_tune(with_mask=True)
    selective = accuracy_of(selective_model)
    changes = _changes(start_weights, selective_model, mask)
    control_model = fine_tune(with_mask=False) if config.control else None
    control = accuracy_of(control_model) if control_model else None

    def state(model: Normalized | None) -> dict[str, torch.Tensor] | None:
        return None if model is None else {k: v.detach().cpu().contiguous() for k, v in model.net.state_dict().items()}

    result = RetrainResult(
        fragscan_version=__version__,
        settings=config,
        eps_used=eps,
        device_used=str(device),
        versions=library_versions(),
        mask_metadata=mask.metadata,
        trainable_share=mask.trainable_share(),
        samples=len(labels),
        before=before,
        selective=selective,
        control=control,
        parameters=changes,
        frozen_bit_identical=all(c.frozen_moved == 0 for c in changes),
        duration_s=round(time.perf_counter() - started, 3),
    )
    return Retrained(result, state(selective_model), state(control_model))
