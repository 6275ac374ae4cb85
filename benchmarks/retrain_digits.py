"""Selective retraining on real data: the embedded default (digits-cnn on scikit-learn's 8x8 digits).

    python benchmarks/retrain_digits.py [--epochs 5] [--clean-training] [--device auto]

Scans the embedded default with the default settings (540 test images, 25 thresholds, FGSM,
eps auto), derives band and layer masks from the report, and fine-tunes the shipped weights
(Adam lr 1e-3, batch 100, on the 1257-image train split) under each mask, under a random mask with
the band mask's trainable share, and with no mask (the control), all with the same seed and budget.
Prints clean and adversarial accuracy (FGSM at the scan's eps, crafted against each network) on
all 540 test images. Not a timed test: the figures are what they are.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

import fragscan
from fragscan.masks import Mask, mask_from_report, save_mask
from fragscan.retrain import RetrainConfig, retrain


def random_mask_like(mask: Mask, seed: int) -> Mask:
    """Same tensors' shapes and the same overall trainable share, elements chosen at random."""
    generator = torch.Generator().manual_seed(seed)
    share = mask.trainable_share()
    tensors = {k: (torch.rand(v.shape, generator=generator) < share).to(torch.uint8) for k, v in mask.tensors.items()}
    return Mask(tensors, {**mask.metadata, "policy": f"random (share {share:.3f})"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--clean-training", action="store_true", help="fine-tune on clean data instead of FGSM examples")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    started = time.perf_counter()
    report = fragscan.scan(fragscan.ScanConfig(device=args.device, seed=args.seed))
    print(f"scan: {time.perf_counter() - started:.1f} s, eps {report.settings.eps_used:.4f}, "
          f"classes {[(g.name, g.summary_class) for g in report.groups]}")
    masks = {
        "band": mask_from_report(report, policy="band"),
        "layer": mask_from_report(report, policy="layer"),
    }
    masks["random"] = random_mask_like(masks["band"], args.seed)
    base = dict(
        epochs=args.epochs, adversarial=not args.clean_training, eps=report.settings.eps_used,
        max_samples=None, seed=args.seed, device=args.device,
    )
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        for i, (policy, mask) in enumerate(masks.items()):
            path = save_mask(mask, Path(directory) / f"{policy}.safetensors")
            result = retrain(RetrainConfig(mask=path, control=i == 0, **base)).result
            assert result.frozen_bit_identical
            if i == 0:
                rows.append(("before", "-", result.before))
                control = result.control
            rows.append((f"selective ({policy} mask)", f"{result.trainable_share:.1%}", result.selective))
        rows.append(("control (no mask)", "100%", control))

    training = "clean data" if args.clean_training else f"FGSM examples (eps {report.settings.eps_used:.4f})"
    print(f"\nfine-tuning: {args.epochs} epochs on {training}; evaluation: {result.samples} test images, "
          f"FGSM eps {report.settings.eps_used:.4f} against each network; device {result.device_used}")
    print(f"{'network':<26} {'trainable':>9} {'clean':>7} {'adversarial':>11}")
    for label, share, accuracy in rows:
        print(f"{label:<26} {share:>9} {accuracy.clean:>7.4f} {accuracy.adversarial:>11.4f}")
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
