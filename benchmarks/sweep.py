"""Benchmark: fragscan's sweep engine against the obvious loop, same model, data, filters, thresholds.

    python benchmarks/sweep.py [--samples 128] [--thresholds 3] [--groups N] [--reduced bf16] [--device auto]

For ResNet-18 (torchvision, CIFAR-size 3x32x32 input, 10 classes, *random* weights seeded with 0,
uniform-noise images labelled by the unfiltered network's own predictions so clean accuracy starts
at 1) and for the embedded default (digits-cnn on its digits test split), in `fixed` and
`regenerate` (FGSM) modes: runs `fragscan.sweep.naive.naive_sweep` (deepcopy per variant, full
forwards, torchattacks on each filtered copy) and `fragscan.sweep.engine.sweep`, checks that every
per-sample curve is identical, and prints wall time, samples/s (filtered networks x samples per
second), peak memory and the speed ratio; then the engine's efficiency against the limit; with
`--reduced bf16` (default) the engine under bf16 autocast against the same exact naive sweep, with
the share of correctness entries that differ; and how its time grows with groups, thresholds and samples.
A benchmark, not a test: figures depend on the
machine and its load; the ratios within one process are what compare.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from dataclasses import dataclass

import torch

from fragscan.base.runtime import resolve_device
from fragscan.data import create_dataset, evaluation_tensors
from fragscan.models import ModelSpec, Normalized, create_model
from fragscan.sweep.attacks import ADVERSARIES, build_attack, predictions
from fragscan.sweep.engine import analysis_mode, arithmetic, sweep
from fragscan.sweep.groups import parameter_groups
from fragscan.sweep.naive import naive_sweep

FILTERS = ("step-up", "step-down", "pulse")
CIFAR_SPEC = ModelSpec((3, 32, 32), (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), 10)


class PeakMemory:
    """Peak device memory (CUDA allocator) or peak resident set size (CPU, sampled every 5 ms)."""

    def __init__(self, device: torch.device):
        self.device, self.peak, self._stop = device, 0, threading.Event()

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _rss(self) -> int:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.005)

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, self._rss())


@dataclass
class Case:
    name: str
    model: Normalized
    images: torch.Tensor
    labels: torch.Tensor
    batch_size: int
    eps: float


def resnet18_case(samples: int, device: torch.device) -> Case:
    import torchvision

    torch.manual_seed(0)
    model = Normalized(torchvision.models.resnet18(num_classes=10), CIFAR_SPEC).eval().to(device)
    images = torch.rand(samples, 3, 32, 32, generator=torch.Generator().manual_seed(1)).to(device)
    labels = predictions(model, images, 64)
    return Case("resnet18 (random weights, 3x32x32 noise)", model, images, labels, 64, 2 / 255)


def digits_case(samples: int, device: torch.device) -> Case:
    model = create_model("digits-cnn").to(device)
    images, labels, _ = evaluation_tensors(create_dataset("digits"), samples, 0)
    return Case("digits-cnn (embedded default, digits)", model, images.to(device), labels.to(device), 256, 0.1)


def timed(device, work):
    """Result, wall seconds, this process's CPU seconds, peak memory. On a shared CPU the CPU
    seconds are the steadier measure: other processes' load stretches wall time, not them."""
    with PeakMemory(device) as memory:
        started, cpu_started = time.perf_counter(), time.process_time()
        result = work()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return result, elapsed, cpu, memory.peak


def run_engine(case: Case, groups, mode: str, thresholds: int):
    attack = build_attack("FGSM", case.model, case.eps, 10)
    adversary = ADVERSARIES[mode](attack, case.images, case.labels, case.batch_size, 0)
    return sweep(
        case.model, groups, FILTERS, thresholds, case.images, case.labels, adversary, batch_size=case.batch_size
    )


def run_naive(case: Case, groups, mode: str, thresholds: int):
    return naive_sweep(
        case.model,
        groups,
        FILTERS,
        thresholds,
        case.images,
        case.labels,
        lambda m: build_attack("FGSM", m, case.eps, 10),
        mode,
        case.batch_size,
        0,
    )


def differing_share(result, expected) -> float:
    """Share of (cell, sample) correctness entries, clean and adversarial, that differ."""
    differing = total = 0
    for g, per_filter in expected.items():
        for f, (clean, adversarial) in per_filter.items():
            curve = result.curves[g][f]
            differing += int((curve.clean != clean).sum() + (curve.adversarial != adversarial).sum())
            total += clean.numel() + adversarial.numel()
    return differing / total


def inference_throughput(case: Case) -> float:
    """Samples per second of plain full forwards at the case's batch size."""
    predictions(case.model, case.images, case.batch_size)  # warm-up
    started = time.perf_counter()
    repeats = 3
    for _ in range(repeats):
        predictions(case.model, case.images, case.batch_size)
    return repeats * len(case.images) / (time.perf_counter() - started)


def spread(groups: list, count: int | None) -> list:
    """``count`` groups spread evenly over the depth (all of them for None), so the mean suffix
    share stays representative."""
    if count is None or count >= len(groups):
        return groups
    step = len(groups) / count
    return [groups[int(i * step)] for i in range(count)]


def compare(case: Case, thresholds: int, device, reduced: tuple[str, ...], group_count: int | None = None) -> None:
    groups = spread(parameter_groups(case.model.net)[0], group_count)
    samples = len(case.images)
    throughput = inference_throughput(case)
    print(
        f"\n## {case.name}: {len(groups)} groups x {len(FILTERS)} filters x {thresholds} thresholds, "
        f"{samples} samples, batch {case.batch_size}, FGSM eps {case.eps:.4f}, device {device}"
    )
    print(f"plain inference: {throughput:,.0f} samples/s")
    print(
        f"{'mode':<11}{'naive s':>12}{'engine s':>10}{'ratio':>7}{'ref CPU s':>11}{'eng CPU s':>11}{'ratio':>7}"
        f"{'ref samp/s':>12}{'eng samp/s':>12}{'ref peak MiB':>14}{'eng peak MiB':>14}  identical"
    )
    for mode in ("fixed", "regenerate"):
        with analysis_mode(case.model):
            result, engine_s, engine_cpu, engine_peak = timed(
                device, lambda: run_engine(case, groups, mode, thresholds)
            )
            expected, naive_s, naive_cpu, naive_peak = timed(
                device, lambda: run_naive(case, groups, mode, thresholds)
            )
        networks = len(groups) * len(FILTERS) * thresholds
        same = differing_share(result, expected) == 0
        print(
            f"{mode:<11}{naive_s:>12.2f}{engine_s:>10.2f}{naive_s / engine_s:>6.2f}x"
            f"{naive_cpu:>11.2f}{engine_cpu:>11.2f}{naive_cpu / engine_cpu:>6.2f}x"
            f"{networks * samples / naive_s:>12,.0f}{networks * samples / engine_s:>12,.0f}"
            f"{naive_peak / 2**20:>14,.0f}{engine_peak / 2**20:>14,.0f}  {'yes' if same else 'NO'}"
        )
        # The limit: only the dependent suffix of every distinct variant, at plain inference speed.
        # fixed: clean + adversarial suffix; regenerate: the clean suffix (shared with the attack's
        # forward) + one full forward on the crafted examples -- the gradient pass is extra, so this
        # is a lower bound there.
        share = sum(result.info.suffix_share.get(g.name, 1.0) for g in groups) / len(groups)
        per_variant = 2 * share if mode == "fixed" else share + 1
        limit_s = result.info.variants * per_variant * samples / throughput
        print(
            f"{'':<11}engine: {result.info.variants} distinct variants of {result.info.cells} cells, mean suffix "
            f"share {share:.2f}, limit {limit_s:.2f} s at plain inference speed -> efficiency "
            f"{limit_s / engine_s:.0%}; prefix reuse {result.info.prefix_reuse}, fused FGSM {result.info.fused_attack}"
        )
        if not same:
            raise SystemExit("curves differ from the naive sweep")
        for precision in reduced:  # opt-in autocast against the exact naive sweep: faster, not identical
            with analysis_mode(case.model), arithmetic(case.model, precision):
                fast, fast_s, fast_cpu, fast_peak = timed(device, lambda: run_engine(case, groups, mode, thresholds))
            print(
                f"{mode + ' ' + precision:<11}{'':>12}{fast_s:>10.2f}{naive_s / fast_s:>6.2f}x{'':>11}"
                f"{fast_cpu:>11.2f}{naive_cpu / fast_cpu:>6.2f}x{'':>12}{networks * samples / fast_s:>12,.0f}"
                f"{'':>14}{fast_peak / 2**20:>14,.0f}  {differing_share(fast, expected):.2%} of entries differ"
            )


def growth(case: Case, device) -> None:
    """Engine time (fixed mode) as groups, thresholds and samples grow, one at a time."""
    all_groups, _ = parameter_groups(case.model.net)
    print(f"\n## growth of engine time, {case.name}, fixed mode")
    print(f"{'groups':>7}{'thresholds':>12}{'samples':>9}{'engine s':>10}{'CPU s':>8}")
    base = dict(groups=4, thresholds=3, samples=len(case.images) // 2)
    settings = [
        base,
        {**base, "groups": 8},
        {**base, "groups": 16},
        {**base, "thresholds": 6},
        {**base, "thresholds": 12},
        {**base, "samples": len(case.images)},
    ]
    for setting in settings:
        # Groups spread over the depth, so the suffix share is representative.
        groups = spread(all_groups, setting["groups"])
        sub = Case(
            case.name,
            case.model,
            case.images[: setting["samples"]],
            case.labels[: setting["samples"]],
            case.batch_size,
            case.eps,
        )
        with analysis_mode(case.model):
            _, seconds, cpu, _ = timed(device, lambda: run_engine(sub, groups, "fixed", setting["thresholds"]))
        print(f"{setting['groups']:>7}{setting['thresholds']:>12}{setting['samples']:>9}{seconds:>10.2f}{cpu:>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=128, help="ResNet-18 evaluation samples")
    parser.add_argument("--thresholds", type=int, default=3, help="ResNet-18 thresholds per filter")
    parser.add_argument(
        "--groups", type=int, default=None, help="ResNet-18 groups, spread over the depth (default: all 21)"
    )
    parser.add_argument("--skip-digits", action="store_true")
    parser.add_argument("--digits-thresholds", type=int, default=25, help="digits-cnn thresholds per filter")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads")
    parser.add_argument("--skip-growth", action="store_true")
    parser.add_argument(
        "--reduced",
        default="bf16",
        help="comma-separated autocast precisions to time against the exact naive sweep ('' for none)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, device {device}"
        + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
    )
    resnet = resnet18_case(args.samples, device)
    reduced = tuple(p for p in args.reduced.split(",") if p)
    compare(resnet, args.thresholds, device, reduced, args.groups)
    if not args.skip_digits:
        compare(digits_case(540, device), args.digits_thresholds, device, reduced)
    if not args.skip_growth:
        growth(resnet, device)


if __name__ == "__main__":
    main()
