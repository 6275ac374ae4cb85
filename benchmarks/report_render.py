"""Time the report outputs for a ResNet-50-sized scan: 54 groups × 3 filters × 25 thresholds.

The curves are synthetic (random per-sample correctness falling with the share removed); the code
paths are the real ones: scan's curve summary with the paired bootstrap and the evidence's claims
(fragscan.evidence.judge), then JSON, CSV and HTML.
Run: python benchmarks/report_render.py [--samples 1000] [--bootstrap 1000] [--groups 54]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from fragscan import ScanConfig, __version__
from fragscan.assess import References
from fragscan.confidence import pack_bits
from fragscan.engine import Curve
from fragscan.evidence import judge
from fragscan.report import Baseline, DatasetInfo, GroupReport, ModelInfo, PackedCorrectness, Report, RunInfo, Settings
from fragscan.report.html import render_html
from fragscan.report.io import report_json
from fragscan.report.tables import curves_csv
from fragscan.scan import _filter_curve

THRESHOLDS = 25


def synthetic_curve(unfiltered: torch.Tensor, numel: int, fragility: float, generator: torch.Generator) -> Curve:
    shares = torch.linspace(0, 1, THRESHOLDS)
    forget = torch.rand(THRESHOLDS, unfiltered.numel(), generator=generator) < (fragility * shares)[:, None]
    correct = unfiltered & ~forget
    return Curve(
        thresholds=torch.linspace(-0.1, 0.1, THRESHOLDS).tolist(),
        positions=(torch.arange(THRESHOLDS) / (THRESHOLDS - 1)).tolist(),
        removed=(shares * numel).long().tolist(),
        changed=(shares * numel).long().tolist(),
        numel=numel,
        clean=correct,
        adversarial=correct & (torch.rand(correct.shape, generator=generator) < 0.6),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--groups", type=int, default=54, help="ResNet-50 has 54; the test suite runs a few")
    arguments = parser.parse_args()
    config = ScanConfig(
        model="resnet50-synthetic", max_samples=arguments.samples, bootstrap=arguments.bootstrap, eps=0.01
    )
    generator = torch.Generator().manual_seed(0)
    clean0 = torch.rand(arguments.samples, generator=generator) < 0.8
    adversarial0 = clean0 & (torch.rand(arguments.samples, generator=generator) < 0.6)

    started, started_cpu = time.perf_counter(), time.process_time()
    # every sample evaluated, in the seeded order's ranks: a scan without adaptive sampling
    references = References((clean0, adversarial0), torch.arange(arguments.samples), config.bootstrap, config.seed)
    groups = []
    for index in range(arguments.groups):
        numel = 64 * (index + 1) * 9
        filters = {
            f: _filter_curve(synthetic_curve(clean0, numel, (index % 7) / 6, generator), f, references, config, None)
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
                summary_class=filters["pulse"].classes.adversarial,
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
        settings=Settings(**config.model_dump(), eps_used=0.01, device_used="cpu", versions={}),
        baseline=Baseline(
            clean=clean0.double().mean().item(),
            adversarial=adversarial0.double().mean().item(),
            samples=arguments.samples,
            correct=PackedCorrectness(clean=pack_bits(clean0), adversarial=pack_bits(adversarial0)),
        ),
        groups=groups,
        skipped=[],
        run=RunInfo(started_at="synthetic", duration_s=0.0),
    )
    report = judge(report)
    summarised, summarised_cpu = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as directory:
        timings = {}
        for name, render in (
            ("json", report_json),
            ("csv", lambda r: curves_csv(r).encode()),
            ("html", lambda r: render_html(r).encode()),
        ):
            began, began_cpu = time.perf_counter(), time.process_time()
            data = render(report)
            timings[name] = (time.perf_counter() - began, time.process_time() - began_cpu, len(data))
            Path(directory, name).write_bytes(data)
    shape = f"{arguments.groups} groups × {len(config.filters)} filters × {THRESHOLDS} thresholds"
    print(f"{shape}, {arguments.samples} samples")
    print(
        f"scores + {config.bootstrap}-resample paired bootstrap: {summarised - started:.2f} s wall, "
        f"{summarised_cpu - started_cpu:.2f} s CPU"
    )
    for name, (seconds, cpu, size) in timings.items():
        print(f"{name:>4}: {seconds:.2f} s wall, {cpu:.2f} s CPU, {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
