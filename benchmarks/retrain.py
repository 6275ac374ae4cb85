"""Selective retraining judged honestly (method §7): does the mask's choice beat chance?

    PYTHONPATH=. python benchmarks/retrain.py [--datasets digits,fashion-mnist] [--repeats 3] [--device auto]

The full protocol, per dataset: scan the ``val`` split (held out of the training data), derive a band
mask (under each ``--inconclusive`` policy the mask builder offers), fine-tune with the selective
arm and both controls (a random mask with the mask's count in every parameter; no mask), K repeats
each, and judge on ``test``. Prints one table row per arm and policy, with 95% intervals
(bootstrap over test samples and repeats) and the verdict.

- digits: the embedded default (``digits-cnn``, shipped weights fitted to train, val held out);
  scan of all 251 val images; 3 epochs of FGSM fine-tuning on the 1006 train images; judged on
  all 540 test images.
- fashion-mnist: ``small-cnn`` trained here for 1 epoch on 20,000 of the 55,000 train images (val
  held out); scan of 1,000 val images; 1 epoch of FGSM fine-tuning on 5,000 train images; judged on
  1,000 test images.
Scans sweep the pulse filter only (25 thresholds, FGSM, eps auto), as band masks need nothing else.
Not a timed test: the figures are what they are.
"""

from __future__ import annotations

import argparse
import inspect
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Subset

import fragscan
from fragscan.base.files import write_atomic
from fragscan.base.runtime import resolve_device
from fragscan.config import TrainSettings
from fragscan.data import create_dataset
from fragscan.models.train import checkpoint_state, initial_model, train
from fragscan.models.weights import safetensors_bytes
from fragscan.outputs.masks import build_mask, mask_from_report, save_mask
from fragscan.outputs.retraining.experiment import RetrainConfig, RetrainResult, retrain

FASHION_ROOT = Path("/usr/share/datasets/fashion-mnist")


@dataclass(frozen=True)
class Setup:
    """One dataset's protocol: what is scanned, and the retraining budget every arm gets."""

    model: str
    dataset: str
    data_root: Path | None
    scan_samples: int | None
    eval_samples: int | None
    train_samples: int | None
    epochs: int


SETUPS = {
    "digits": Setup("digits-cnn", "digits", None, None, None, None, 3),
    "fashion-mnist": Setup("small-cnn", "fashion-mnist", FASHION_ROOT, 1000, 1000, 5000, 1),
}


def fashion_weights(folder: Path, seed: int, device: str) -> Path:
    """small-cnn trained for 1 epoch on 20,000 seeded Fashion-MNIST train images (val held out)."""
    train_set = create_dataset("fashion-mnist", root=FASHION_ROOT, split="train")
    model = initial_model("small-cnn", "fashion-mnist", train_set, None, seed)
    chosen = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(seed))[:20000].tolist()
    train(model, Subset(train_set, chosen), TrainSettings(epochs=1, seed=seed), device=resolve_device(device))
    path = folder / "fashion_small_cnn.safetensors"
    write_atomic(path, safetensors_bytes(checkpoint_state(model), {"model": "small-cnn"}))
    return path


def inconclusive_policies() -> tuple[str | None, ...]:
    """``freeze`` and ``train`` where the mask builder has the evidence rule's inconclusive class
    (issue 14); before that, one policy-free mask."""
    return ("freeze", "train") if "inconclusive" in inspect.signature(build_mask).parameters else (None,)


def run(name: str, setup: Setup, folder: Path, args) -> list[tuple[str, str | None, RetrainResult, float]]:
    started = time.perf_counter()
    weights = fashion_weights(folder, args.seed, args.device) if name == "fashion-mnist" else None
    report = fragscan.scan(
        fragscan.ScanConfig(
            model=setup.model, dataset=setup.dataset, data_root=setup.data_root, weights=weights, split="val",
            max_samples=setup.scan_samples, filters=("pulse",), seed=args.seed, device=args.device,
        )
    )
    print(f"{name}: scanned {report.dataset.samples} val images, eps {report.settings.eps_used:.4f}, "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    rows = []
    for policy in inconclusive_policies():
        options = {} if policy is None else {"inconclusive": policy}
        mask = mask_from_report(report, policy="band", **options)
        path = save_mask(mask, folder / f"{name}-{policy}.safetensors")
        began = time.perf_counter()
        result = retrain(
            RetrainConfig(
                model=setup.model, dataset=setup.dataset, data_root=setup.data_root, weights=weights, mask=path,
                max_samples=setup.eval_samples, train_samples=setup.train_samples, epochs=setup.epochs,
                adversarial=not args.clean_training, eps=report.settings.eps_used, repeats=args.repeats,
                seed=args.seed, device=args.device,
            )
        ).result
        assert result.frozen_bit_identical
        rows.append((name, policy, result, time.perf_counter() - began))
        print(f"{name}, inconclusive {policy or 'n/a'}: retrained in {rows[-1][3]:.0f} s", flush=True)
    return rows


def interval(value) -> str:
    low, high = value.interval
    return f"{value.estimate:.4f} [{low:.4f}, {high:.4f}]"


def difference(value) -> str:
    low, high = value.interval
    return f"{value.estimate:+.4f} [{low:+.4f}, {high:+.4f}]"


def table(rows) -> None:
    print("\n| dataset | inconclusive | arm | trainable | clean | adversarial |")
    print("|---|---|---|---|---|---|")
    for name, policy, result, _ in rows:
        for arm, summary in {"before": result.before, **result.arms}.items():
            print(f"| {name} | {policy or 'n/a'} | {arm} | {summary.trainable_share:.1%} | {interval(summary.clean)} "
                  f"| {interval(summary.adversarial)} |")
    print("\n| dataset | inconclusive | selective − random: adversarial | clean "
          "| selective − unmasked: adversarial | clean |")
    print("|---|---|---|---|---|---|")
    for name, policy, result, _ in rows:
        versus_random, versus_unmasked = (result.comparison[f"selective_minus_{c}"] for c in ("random", "unmasked"))
        print(f"| {name} | {policy or 'n/a'} | {difference(versus_random.adversarial)} | "
              f"{difference(versus_random.clean)} | {difference(versus_unmasked.adversarial)} | "
              f"{difference(versus_unmasked.clean)} |")
    print()
    for name, policy, result, _ in rows:
        print(f"{name}, inconclusive {policy or 'n/a'}: {result.verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="digits,fashion-mnist", help="comma-separated: digits, fashion-mnist")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clean-training", action="store_true", help="fine-tune on clean data, not FGSM examples")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        for name in args.datasets.split(","):
            rows += run(name, SETUPS[name], Path(directory), args)
    training = "clean data" if args.clean_training else "FGSM examples at the scan's eps"
    print(f"\nfine-tuning on {training}; {args.repeats} repeats per arm; seed {args.seed}; "
          f"device {rows[0][2].device_used}")
    table(rows)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
