"""Benchmark: what a threat profile changes, and what its early exit saves (method §6b, issue 20).

    python benchmarks/threats.py [--samples 540] [--thresholds 9] [--budgets 0.05,0.1,0.15] [--mode regenerate]

The embedded digits-cnn (trained weights) on the digits test split, the pulse filter, three budgets.
Three scans at the same seed and budgets: FGSM alone, PGD alone, and the profile FGSM + PGD (the
per-sample worst case, PGD run only on the samples FGSM left correct). Printed:

- per budget, the unfiltered worst-case accuracy against each attack alone, and per class how many
  groups each scan puts there (simultaneous over groups and budgets); how many groups robust (or
  decided at all) under FGSM are not under the profile at the same budget;
- each scan's wall time and the samples each attack was crafted on (counted at
  ``fragscan.sweep.attacks.craft_batch``): the profile against the two single-attack scans run separately.

A benchmark, not a test: times depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import torch

import fragscan.sweep.attacks
from fragscan import ScanConfig, scan
from fragscan.report import Report

crafted: Counter = Counter()
_craft_batch = fragscan.sweep.attacks.craft_batch


def counting_craft_batch(attack, images, labels, seed):
    crafted[type(attack).__name__] += len(images)
    return _craft_batch(attack, images, labels, seed)


fragscan.sweep.attacks.craft_batch = counting_craft_batch  # Regenerate and Fixed look it up at call time


def timed(config: ScanConfig) -> tuple[Report, float, Counter]:
    crafted.clear()
    started = time.perf_counter()
    report = scan(config)
    return report, time.perf_counter() - started, Counter(crafted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=540)
    parser.add_argument("--thresholds", type=int, default=9)
    parser.add_argument("--budgets", default="0.05,0.1,0.15")
    parser.add_argument("--mode", default="regenerate", choices=("regenerate", "fixed"))
    arguments = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    budgets = arguments.budgets
    common = dict(max_samples=arguments.samples, thresholds=arguments.thresholds, filters=("pulse",),
                  attack_mode=arguments.mode, batch_size=128)
    runs = {
        "FGSM": timed(ScanConfig(**common, threat=f"FGSM@{budgets}")),
        "PGD": timed(ScanConfig(**common, threat=f"PGD@{budgets}")),
        "FGSM+PGD": timed(ScanConfig(**common, threat=f"FGSM@{budgets};PGD@{budgets}")),
    }
    profile = runs["FGSM+PGD"][0]
    groups = len(profile.groups)
    print(f"digits-cnn, {arguments.samples} samples, {groups} groups, pulse x {arguments.thresholds} thresholds, "
          f"{arguments.mode}; group classes at {profile.threat.summary_level:.4f} (groups x budgets)")
    for i, eps in enumerate(profile.threat.budgets):
        alone = {name: report.threat.worst[i].adversarial for name, (report, _, _) in runs.items()}
        line = ", ".join(f"{name} {value:.3f}" for name, value in alone.items())
        print(f"\nε={eps:g}: unfiltered adversarial accuracy {line}")
        for name, (report, _, _) in runs.items():
            counts = Counter(g.budget_classes[i] for g in report.groups)
            print(f"  {name:<9} " + ", ".join(f"{counts[c]} {c}" for c in sorted(counts)))
        fgsm, worst = runs["FGSM"][0].groups, profile.groups
        robust_lost = [g.name for g, w in zip(fgsm, worst) if g.budget_classes[i] == "robust" != w.budget_classes[i]]
        changed = [g.name for g, w in zip(fgsm, worst) if g.budget_classes[i] != w.budget_classes[i]]
        print(f"  robust under FGSM, not under the worst case: {len(robust_lost)} of {groups} {robust_lost}")
        print(f"  any class changed from FGSM alone to the worst case: {len(changed)} of {groups} {changed}")
    flips = {name: sum(g.flip_eps is not None for g in report.groups) for name, (report, _, _) in runs.items()}
    print(f"\ngroups whose decided class changes with the budget: {flips}")
    print("\ncost:")
    for name, (_, seconds, counts) in runs.items():
        print(f"  {name:<9} {seconds:7.1f} s, crafted on " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    separate_s = runs["FGSM"][1] + runs["PGD"][1]
    pgd_alone, pgd_profile = runs["PGD"][2]["PGD"], runs["FGSM+PGD"][2]["PGD"]
    print(f"  FGSM and PGD scanned separately: {separate_s:.1f} s; the profile: {runs['FGSM+PGD'][1]:.1f} s "
          f"({runs['FGSM+PGD'][1] / separate_s:.0%}); PGD crafted on {pgd_profile} samples in the profile, "
          f"{pgd_alone} alone ({pgd_profile / max(1, pgd_alone):.0%})")


if __name__ == "__main__":
    main()
