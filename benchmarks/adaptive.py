"""Benchmark: `--adaptive` against the full-size scan at the same maximum sample count (method §5b).

    python benchmarks/adaptive.py [--fmnist-weights PATH] [--fmnist-samples 2000] [--fmnist-thresholds 25]
                                  [--initial-samples 50] [--look-ratio 1.2] [--only digits|fashion-mnist]

Without ``--fmnist-weights`` the Fashion-MNIST model is trained first, as benchmarks/reproducibility.py does.

Two cases, default three filters and 25 thresholds: the embedded default (digits-cnn on all 540
digits test samples, `regenerate`, eps auto) and a small CNN trained by `fragscan train small-cnn
fashion-mnist` on 2000 Fashion-MNIST test samples (`fixed`, eps 0.05). Each is scanned twice, every
sweep on every drawn sample and then with `--adaptive`; printed per scan: sample evaluations (Σ over
filter x threshold cells of the samples each used), wall time, the share of the (group, filter,
score) classes that are decided (fragile, robust or antifragile), how many of the classes the full
scan decides the adaptive one decides too, and how many decided classes contradict the full scan's.
The targets (issue 21): at most 25 % of the full scan's sample evaluations on the embedded default,
28 % on Fashion-MNIST at 1000 samples and 9 thresholds, 20 % at 2000; at least 95 % of its decided
classes also decided, none contradicting. A benchmark, not a test: times depend on the
machine and its load.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from reproducibility import DATA_ROOT, trained_weights  # the same 2-epoch small CNN, trained when not given

from fragscan import ScanConfig, scan
from fragscan.config import Adaptive
from fragscan.report import Report
from fragscan.report.model import DECIDED

SCORES = ("clean", "adversarial", "difference")


def classes(report: Report) -> dict[tuple[str, str, str], str]:
    return {
        (group.name, filter_id, score): getattr(curve.classes, score)
        for group in report.groups
        for filter_id, curve in group.filters.items()
        for score in SCORES
    }


def timed(config: ScanConfig) -> tuple[Report, float]:
    started = time.perf_counter()
    report = scan(config)
    return report, time.perf_counter() - started


def compare(case: str, config: ScanConfig, looks: Adaptive) -> list[str]:
    full, full_s = timed(config)
    adaptive, adaptive_s = timed(ScanConfig(**{**config.model_dump(), "adaptive": looks}))
    # the adaptive scan must run at the eps the full one used: eps auto calibrates on the same samples
    assert adaptive.settings.eps_used == full.settings.eps_used
    reference = classes(full)
    decided_full = {k for k, c in reference.items() if c in DECIDED}
    rows = []
    for name, report, seconds in (("full", full, full_s), ("adaptive", adaptive, adaptive_s)):
        found = classes(report)
        decided = {k for k, c in found.items() if c in DECIDED}
        used, everything = report.sample_evaluations()
        kept = decided & decided_full
        contradicting = sum(1 for k in kept if found[k] != reference[k])
        groups_decided = sum(1 for g in report.groups if g.summary_class in DECIDED)
        rows.append(
            f"| {case} | {name} | {used:,} ({used / everything:.0%}) | {seconds:.0f} | "
            f"{len(decided)}/{len(found)} ({len(decided) / len(found):.0%}) | "
            f"{len(kept)}/{len(decided_full)} ({len(kept) / max(1, len(decided_full)):.0%}) | "
            f"{contradicting} | {groups_decided}/{len(report.groups)} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fmnist-weights", type=Path, default=None, help="default: train small-cnn for 2 epochs here")
    parser.add_argument("--fmnist-root", type=Path, default=Path(DATA_ROOT))
    parser.add_argument("--fmnist-samples", type=int, default=2000)
    parser.add_argument("--fmnist-thresholds", type=int, default=25, help="fewer make a loaded CPU's run shorter")
    parser.add_argument("--initial-samples", type=int, default=Adaptive().initial_samples)
    parser.add_argument("--look-ratio", type=float, default=Adaptive().look_ratio)
    parser.add_argument("--only", choices=("digits", "fashion-mnist"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        weights = args.fmnist_weights
        if weights is None and args.only != "digits":
            weights = trained_weights(Path(directory))
        run(args, weights)


def cases(args: argparse.Namespace, fmnist_weights: Path | None) -> dict[str, ScanConfig]:
    return {
        "digits": ScanConfig(max_samples=None),
        "fashion-mnist": ScanConfig(
            model="small-cnn", dataset="fashion-mnist", weights=fmnist_weights, data_root=args.fmnist_root,
            max_samples=args.fmnist_samples, thresholds=args.fmnist_thresholds, attack_mode="fixed", eps=0.05,
        ),
    }


def run(args: argparse.Namespace, fmnist_weights: Path | None) -> None:
    print(
        "| case | scan | sample evaluations (share of full) | wall s | classes decided | full's decided also decided "
        "| contradicting the full scan | group classes decided |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for case, config in cases(args, fmnist_weights).items():
        if args.only in (None, case):
            looks = Adaptive(initial_samples=args.initial_samples, look_ratio=args.look_ratio)
            for row in compare(case, config, looks):
                print(row, flush=True)


if __name__ == "__main__":
    main()
