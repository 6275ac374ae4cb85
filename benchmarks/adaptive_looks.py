"""Benchmark: how often an adaptive sweep should look (method §5b, issue 21), measured by replay.

    python benchmarks/adaptive_looks.py [--fmnist-weights PATH] [--fmnist-samples 1000]
                                        [--fmnist-thresholds 9] [--only digits|fashion-mnist]
                                        [--boundary pocock ...] [--schedule 50,1.2 ...]

A sweep of an adaptive scan at n samples is the fixed-size scan's sweep on the first n samples of
the seeded order (docs/adaptive.md), so one full scan per case holds every look any schedule would
take. Each candidate, a schedule (first look K, ratio r) and a boundary (Pocock's constant, or an
alpha-spending function), is replayed on the full scan's per-sample bits with the stopping rule
itself (:func:`fragscan.scoring.adaptive.look`, at the candidate plan's levels); only scoring runs,
no network. Printed per case and candidate, as benchmarks/adaptive.py
prints them for real scans: sample evaluations (share of the full scan's), the (group, filter,
score) classes decided, how many of the full scan's decided classes are also decided, and how many
contradict it. What the replay cannot show is the engine's cost per look (each look is one more
call on a few new samples); benchmarks/adaptive.py measures wall time.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

from adaptive import SCORES, cases, classes
from reproducibility import DATA_ROOT, trained_weights

from fragscan import scan
from fragscan.config import Adaptive
from fragscan.data import drawn_ranks
from fragscan.report import Report, load_report, write_report
from fragscan.report.model import DECIDED
from fragscan.scoring.adaptive import look, plan
from fragscan.scoring.assess import References
from fragscan.scoring.confidence import unpack_bits
from fragscan.sweep.engine import Curve

SCHEDULES = ["100,2", "50,2", "50,1.5", "50,1.25", "50,1.2", "50,1.1", "30,1.2", "100,1.2"]
BOUNDARIES = ["pocock", "obrien-fleming", "power:1", "power:2", "power:3"]


def sweeps(report: Report) -> list[tuple[str, str, Curve]]:
    """Every (group, filter) sweep of a full scan with its per-sample bits on all drawn samples."""
    found = []
    for group in report.groups:
        for filter_id, curve in group.filters.items():
            shape = [len(curve.thresholds), curve.samples]
            bits = [unpack_bits(getattr(curve.correct, accuracy), shape) for accuracy in ("clean", "adversarial")]
            found.append((group.name, filter_id, Curve(curve.thresholds, curve.positions, curve.removed,
                                                       curve.changed, group.numel, *bits)))
    return found


def replay(report: Report, references: References, candidate: Adaptive) -> tuple[int, int, dict]:
    """Sample evaluations used and available, and the classes each sweep would end with."""
    drawn = report.baseline.samples
    adaptive_plan = plan(candidate, drawn, len(report.groups))
    used, ended = 0, {}
    for group, filter_id, curve in sweeps(report):
        for samples in adaptive_plan.schedule:
            columns = references.columns(samples)
            prefix = replace(curve, clean=curve.clean[:, columns], adversarial=curve.adversarial[:, columns])
            seen = look(prefix, filter_id, references, report.settings.scoring_part, adaptive_plan)
            if seen.stop is not None:
                break
        used += samples * len(curve.thresholds)
        ended.update({(group, filter_id, score): seen.classes[score] for score in SCORES})
    return used, drawn * report.settings.thresholds * len(ended) // len(SCORES), ended


def full_scan(config, path: Path | None) -> Report:
    """The case's full scan, read from ``path`` when an earlier run kept it there (same settings)."""
    if path is not None and path.exists():
        kept = load_report(path)
        if kept.settings.max_samples == config.max_samples and kept.settings.thresholds == config.thresholds:
            return kept
    full = scan(config)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_report(full, path)
    return full


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fmnist-weights", type=Path, default=None, help="default: train small-cnn for 2 epochs here")
    parser.add_argument("--fmnist-root", type=Path, default=Path(DATA_ROOT))
    parser.add_argument("--fmnist-samples", type=int, default=1000)
    parser.add_argument("--fmnist-thresholds", type=int, default=9)
    parser.add_argument("--only", choices=("digits", "fashion-mnist"))
    parser.add_argument("--reports", type=Path, default=None, help="keep the full scans' reports here; reuse them")
    parser.add_argument("--boundary", action="append", help=f"boundaries to replay (default: {', '.join(BOUNDARIES)})")
    parser.add_argument("--schedule", action="append", help="first look and ratio, e.g. 50,1.2 (default: several)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        weights = args.fmnist_weights
        if weights is None and args.only != "digits":
            weights = trained_weights(Path(directory))
        candidates = [
            Adaptive(initial_samples=int(initial), look_ratio=float(ratio), look_boundary=boundary)
            for initial, ratio in (schedule.split(",") for schedule in args.schedule or SCHEDULES)
            for boundary in args.boundary or BOUNDARIES
        ]
        print("| case | first look, ratio | boundary | looks | sample evaluations | classes decided | full's decided "
              "also decided | contradicting |")
        print("|---|---|---|---|---|---|---|---|")
        for case, config in cases(args, weights).items():
            if args.only not in (None, case):
                continue
            full = full_scan(config, None if args.reports is None else args.reports / f"{case}.json")
            reference = classes(full)
            decided_full = {k for k, c in reference.items() if c in DECIDED}
            drawn = full.baseline.samples
            unfiltered = [unpack_bits(getattr(full.baseline.correct, k), [drawn]) for k in ("clean", "adversarial")]
            references = References(unfiltered, drawn_ranks(full.dataset.size, drawn, config.seed),
                                    config.bootstrap, config.seed)
            for candidate in candidates:
                used, everything, ended = replay(full, references, candidate)
                decided = {k for k, c in ended.items() if c in DECIDED}
                kept = decided & decided_full
                print(f"| {case} ({drawn}) | {candidate.initial_samples}, {candidate.look_ratio:g} | "
                      f"{candidate.look_boundary} | {plan(candidate, drawn, 1).looks} | "
                      f"{used / everything:.1%} | {len(decided)}/{len(ended)} | {len(kept)}/{len(decided_full)} | "
                      f"{sum(ended[k] != reference[k] for k in kept)} |", flush=True)


if __name__ == "__main__":
    main()
