"""Time the report outputs for a ResNet-50-sized scan: 54 groups × 3 filters × 25 thresholds.

The curves are synthetic (random per-sample correctness falling with the share removed); the code
paths are the real ones: scan's curve summary with the paired bootstrap and the evidence's claims
(fragscan.scoring.evidence.judge), then JSON, CSV and HTML. With ``--budgets B`` the report is a threat
profile's (B budgets, the adversarial correctness falling with ε): its surfaces, classes per budget
(fragscan.scoring.surface.judge_budgets) and the page's threat section.
Run: python benchmarks/report_render.py [--samples 1000] [--bootstrap 1000] [--groups 54] [--budgets 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from fragscan import ScanConfig, __version__
from fragscan.pipeline.scanning import _filter_curve, _Profile
from fragscan.report import (
    DatasetInfo,
    GroupReport,
    ModelInfo,
    PackedCorrectness,
    Report,
    RunInfo,
    Settings,
    Threat,
    ThreatAttack,
    ThreatBudget,
    UnfilteredReport,
)
from fragscan.report.html import render_html, threat_section
from fragscan.report.io import report_json
from fragscan.report.tables import curves_csv
from fragscan.scoring.assess import References, budget_references
from fragscan.scoring.confidence import pack_bits
from fragscan.scoring.evidence import judge_thresholds, summary_claim
from fragscan.scoring.surface import judge_budgets
from fragscan.sweep import threats
from fragscan.sweep.engine import Curve

THRESHOLDS = 25


def synthetic_curve(
    unfiltered: torch.Tensor, numel: int, fragility: float, generator: torch.Generator, robust: torch.Tensor | None
) -> Curve:
    """``robust``: a profile's share of samples that survive the attack at each budget (None: one budget)."""
    shares = torch.linspace(0, 1, THRESHOLDS)
    forget = torch.rand(THRESHOLDS, unfiltered.numel(), generator=generator) < (fragility * shares)[:, None]
    correct = unfiltered & ~forget
    draw = torch.rand(correct.shape, generator=generator)
    # one draw for every budget, so a sample that survives a larger budget survives the smaller ones
    adversarial = correct & (draw < 0.6) if robust is None else correct[..., None] & (draw[..., None] < robust)
    return Curve(
        thresholds=torch.linspace(-0.1, 0.1, THRESHOLDS).tolist(),
        positions=(torch.arange(THRESHOLDS) / (THRESHOLDS - 1)).tolist(),
        removed=(shares * numel).long().tolist(),
        changed=(shares * numel).long().tolist(),
        numel=numel,
        clean=correct,
        adversarial=adversarial,
    )


def threat_figures(report: Report) -> bytes:
    """The threat section's figures (what it adds to the page's render time and size)."""
    section = threat_section(report)
    figures = [section["budget_class_map"], section["surface_overview"], *(f for _, _, f in section["threat_groups"])]
    return "".join(figures).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--groups", type=int, default=54, help="ResNet-50 has 54; the test suite runs a few")
    parser.add_argument("--budgets", type=int, default=0, help="a threat profile's budgets (0: a one-budget scan)")
    arguments = parser.parse_args()
    budgets = tuple(round(0.01 * (i + 1), 3) for i in range(arguments.budgets))
    config = ScanConfig(
        model="resnet50-synthetic", max_samples=arguments.samples, bootstrap=arguments.bootstrap,
        **({"threat": f"FGSM@{','.join(map(str, budgets))}"} if budgets else {"eps": 0.01}),
    )
    generator = torch.Generator().manual_seed(0)
    clean0 = torch.rand(arguments.samples, generator=generator) < 0.8
    robust = torch.linspace(0.8, 0.3, len(budgets)) if budgets else None
    draw = torch.rand(arguments.samples, generator=generator)
    worst0 = clean0[:, None] & (draw[:, None] < robust) if budgets else None
    adversarial0 = clean0 & (draw < 0.6) if not budgets else worst0[:, -1]

    started, started_cpu = time.perf_counter(), time.process_time()
    # every sample evaluated, in the seeded order's ranks: a scan without adaptive sampling
    ranks = torch.arange(arguments.samples)
    references = References((clean0, adversarial0), ranks, config.bootstrap, config.seed)
    profile = None
    if budgets:
        resolved = threats.Resolved(config.threat, budgets, tuple(("FGSM",) for _ in budgets), len(budgets) - 1)
        profile = _Profile(resolved, budget_references(clean0, worst0, ranks, config.scoring_part), None)
    # as the scan states each group's claim: at the level simultaneous over the groups
    groups = []
    for index in range(arguments.groups):
        numel = 64 * (index + 1) * 9
        filters = {
            f: _filter_curve(
                synthetic_curve(clean0, numel, (index % 7) / 6, generator, robust), f, references,
                config.scoring_part, None, profile,
            )
            for f in config.filters
        }
        groups.append(
            GroupReport(
                name=f"layer{index // 14 + 1}.{index % 14}.conv.weight",
                module_type="Conv2d",
                numel=numel,
                shape=[64, index + 1, 3, 3],
                filters=filters,
                samples=arguments.samples,
                **summary_claim(filters["pulse"], numel, references, config.scoring_part, None, arguments.groups),
            )
        )
    report = Report(
        fragscan_version=__version__,
        model=ModelInfo(
            name=config.model,
            weights=None,
            weights_sha256=None,
            input_size=[3, 224, 224],
            mean=[0.5] * 3,
            std=[0.25] * 3,
            num_classes=1000,
            parameters=25_557_032,
        ),
        dataset=DatasetInfo(
            name="synthetic",
            split="test",
            root=None,
            size=arguments.samples,
            samples=arguments.samples,
            selection="all",
            description="synthetic curves",
        ),
        settings=Settings(**config.model_dump(), eps_used=budgets[-1] if budgets else 0.01, device_used="cpu",
                          versions={}),
        baseline=UnfilteredReport(
            clean=clean0.double().mean().item(),
            adversarial=adversarial0.double().mean().item(),
            samples=arguments.samples,
            correct=PackedCorrectness(clean=pack_bits(clean0), adversarial=pack_bits(adversarial0)),
        ),
        groups=groups,
        skipped=[],
        run=RunInfo(started_at="synthetic", duration_s=0.0),
        threat=None if not budgets else Threat(
            spec=config.threat, budgets=list(budgets), headline=budgets[-1],
            attacks=[ThreatAttack(attack="FGSM", eps=eps, adversarial=worst0[:, i].double().mean().item())
                     for i, eps in enumerate(budgets)],
            worst=[
                ThreatBudget(eps=eps, adversarial=worst0[:, i].double().mean().item(), correct=pack_bits(worst0[:, i]))
                for i, eps in enumerate(budgets)
            ],
        ),
    )
    report = judge_budgets(judge_thresholds(report))
    summarised, summarised_cpu = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as directory:
        timings = {}
        for name, render in (
            ("json", report_json),
            ("csv", lambda r: curves_csv(r).encode()),
            ("html", lambda r: render_html(r).encode()),
            *([("html threat section", threat_figures)] if budgets else []),
        ):
            began, began_cpu = time.perf_counter(), time.process_time()
            data = render(report)
            timings[name] = (time.perf_counter() - began, time.process_time() - began_cpu, len(data))
            Path(directory, name).write_bytes(data)
    shape = f"{arguments.groups} groups × {len(config.filters)} filters × {THRESHOLDS} thresholds"
    shape += f" × {len(budgets)} budgets" if budgets else ""
    print(f"{shape}, {arguments.samples} samples")
    print(
        f"scores + {config.bootstrap}-resample paired bootstrap: {summarised - started:.2f} s wall, "
        f"{summarised_cpu - started_cpu:.2f} s CPU"
    )
    for name, (seconds, cpu, size) in timings.items():
        print(f"{name:>4}: {seconds:.2f} s wall, {cpu:.2f} s CPU, {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
