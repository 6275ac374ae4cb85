"""Do classes reproduce on fresh samples? Two disjoint halves of Fashion-MNIST's test split, both rules.

    python benchmarks/reproducibility.py [--weights W.safetensors] [--samples 1500] [--eps 0.05]

Loads a small CNN trained on Fashion-MNIST (``--weights``; without it, trains one for 2 epochs with
`fragscan train small-cnn fashion-mnist --epochs 2` into a temporary folder), draws two disjoint
sets of ``--samples`` test images (one seeded permutation, its first and second part) and scans each
once with the pulse filter, FGSM in ``fixed`` mode at a fixed ε. Each half's stored curves are then
rescored under ``--classify tau`` and ``--classify evidence`` (:func:`fragscan.scoring.evidence.judge`,
no second sweep), and for each rule it prints, for the group (summary) classes and the pulse
threshold classes of S_adv: the share of items whose class agrees between the halves, the share
decided (mean of the two halves), the share decided in both, and the contradictions (decided in
both halves, and different). Not a timed test: the figures are what they are.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import Subset

import fragscan
from fragscan.data import create_dataset
from fragscan.report import Report
from fragscan.report.model import DECIDED
from fragscan.scoring.evidence import judge

DATA_ROOT = "/usr/share/datasets/fashion-mnist"


def trained_weights(directory: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "fragscan", "train", "small-cnn", "fashion-mnist", "--epochs", "2", "--data-root",
         DATA_ROOT, "--out", str(directory), "--quiet"],
        check=True,
    )
    return directory / "epoch_002.safetensors"


def rescored(report: Report, rule: str) -> Report:
    return judge(report.model_copy(update={"settings": report.settings.model_copy(update={"classify": rule})}))


def classes(report: Report) -> tuple[list[str], list[str]]:
    """The group classes, and every pulse threshold's S_adv class, in report order."""
    groups = [g.summary_class for g in report.groups]
    thresholds = [c for g in report.groups for c in g.filters["pulse"].threshold_classes.adversarial]
    return groups, thresholds


def agreement(first: list[str], second: list[str]) -> dict[str, float]:
    pairs = [(a, b) for a, b in zip(first, second) if "unperturbed" not in (a, b)]  # nothing measured there
    both = [(a, b) for a, b in pairs if a in DECIDED and b in DECIDED]
    return {
        "items": len(pairs),
        "agree": sum(a == b for a, b in pairs) / len(pairs),
        "decided": sum((a in DECIDED) + (b in DECIDED) for a, b in pairs) / (2 * len(pairs)),
        "both": len(both),
        "contradictions": sum(a != b for a, b in both),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=None, help="small-cnn weights trained on Fashion-MNIST")
    parser.add_argument("--samples", type=int, default=1500, help="test images per half")
    parser.add_argument("--eps", type=float, default=0.05)
    parser.add_argument("--thresholds", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as directory:
        weights = args.weights or trained_weights(Path(directory))
        test = create_dataset("fashion-mnist", root=DATA_ROOT, split="test")
        order = torch.randperm(len(test), generator=torch.Generator().manual_seed(args.seed)).tolist()
        if 2 * args.samples > len(order):
            raise SystemExit(f"--samples {args.samples}: two halves need {2 * args.samples} of {len(order)} images")
        config = fragscan.ScanConfig(
            model="small-cnn", dataset="fashion-mnist", data_root=DATA_ROOT, weights=str(weights), filters=("pulse",),
            attack_mode="fixed", eps=args.eps, thresholds=args.thresholds, max_samples=None, seed=args.seed,
            device=args.device,
        )
        halves = [
            fragscan.scan(config, dataset=Subset(test, sorted(order[k * args.samples:(k + 1) * args.samples])))
            for k in range(2)
        ]
    swept = time.perf_counter() - started
    first = halves[0]
    print(f"small-cnn on Fashion-MNIST ({weights.name if args.weights else 'trained here, 2 epochs'}): clean "
          f"{first.baseline.clean:.3f} / {halves[1].baseline.clean:.3f}, FGSM ε={args.eps} fixed "
          f"{first.baseline.adversarial:.3f} / {halves[1].baseline.adversarial:.3f}; two disjoint halves of "
          f"{args.samples} test images; {len(first.groups)} groups, pulse, {args.thresholds} thresholds, "
          f"τ = {first.settings.tau}")
    print()
    print("| rule | classes | items | agree | decided | decided in both | contradictions |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for rule in ("tau", "evidence"):
        group_classes, threshold_classes = zip(*(classes(rescored(h, rule)) for h in halves))
        for what, (one, two) in (("groups", group_classes), ("pulse thresholds", threshold_classes)):
            a = agreement(one, two)
            share = a["contradictions"] / a["both"] if a["both"] else 0.0
            print(f"| {rule} | {what} | {a['items']} | {a['agree']:.0%} | {a['decided']:.0%} | {a['both']} | "
                  f"{a['contradictions']} ({share:.1%}) |")
    for k, half in enumerate(halves):
        print(f"half {k + 1}, evidence: {rescored(half, 'evidence').resolution_note() or 'every group decided'}")
    print(f"two sweeps {swept:.0f} s, rescoring {time.perf_counter() - started - swept:.0f} s "
          f"(levels: groups {first.settings.summary_level:.4f}, thresholds {first.settings.threshold_level:.6f})")


if __name__ == "__main__":
    main()
