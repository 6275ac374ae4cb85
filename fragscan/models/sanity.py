"""Checks before a scan, as AutoAttack makes them: can the attack work on this model and data?

Each check returns a warning line or ``None``; none of them stops the scan, but a model whose outputs
are not numbers (NaN, inf) does.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

from ..base.errors import ConfigError

PROBABILITY_TOLERANCE = 1e-3


def looks_like_probabilities(outputs: torch.Tensor) -> str | None:
    """Outputs in [0, 1] summing to 1 per row are softmax outputs: attacks built on cross-entropy need logits."""
    in_unit = bool(((outputs >= 0) & (outputs <= 1)).all())
    ones = torch.ones(len(outputs), device=outputs.device)
    sums_to_one = bool(torch.allclose(outputs.sum(1), ones, atol=PROBABILITY_TOLERANCE))
    if in_unit and sums_to_one:
        return (
            "the model's outputs look like probabilities (each row sums to 1): attacks need logits; "
            "drop the final softmax"
        )
    return None


def zero_input_gradients(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> str | None:
    """All-zero loss gradients with respect to the pixels leave gradient attacks nothing to follow."""
    pixels = images.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        loss = functional.cross_entropy(model(pixels), labels)
        (gradient,) = torch.autograd.grad(loss, pixels, allow_unused=True)
    if gradient is None or not bool(gradient.abs().gt(0).any()):
        return "the loss has zero gradient with respect to the input pixels: gradient attacks cannot perturb them"
    return None


NEAR_CHANCE = 1.5  # x chance (1/K): at or below it, clean accuracy says the network has learnt nothing


def near_chance(clean_accuracy: float, num_classes: int) -> str | None:
    if clean_accuracy <= NEAR_CHANCE / num_classes:
        return (
            f"clean accuracy {clean_accuracy:.3f} is near chance (1/{num_classes}): the model is untrained or its "
            "weights, normalisation or dataset do not match"
        )
    return None


def check_model(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int) -> list[str]:
    """Warnings about ``model`` on the first batch of the evaluation samples (the model's mode is kept);
    a ConfigError for outputs that are not numbers, which no scan can measure anything by."""
    batch, batch_labels = images[:batch_size], labels[:batch_size]
    with torch.no_grad():
        outputs = model(batch)
    if not bool(torch.isfinite(outputs).all()):  # argmax of NaN is a fixed class: "robust" to every filter
        raise ConfigError(
            f"the model's outputs hold NaN or infinite values on {int((~torch.isfinite(outputs)).any(1).sum())} of "
            f"the first {len(batch)} samples, so its accuracy measures nothing; check its weights and forward"
        )
    found = [looks_like_probabilities(outputs), zero_input_gradients(model, batch, batch_labels)]
    return [warning for warning in found if warning is not None]
