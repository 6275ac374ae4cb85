"""Benchmark: the sweep on a GPU (issue 19), one prepared script; it also runs on a CPU at small sizes.

    python benchmarks/gpu.py                       # on the device: about 5 minutes on one H200
    python benchmarks/gpu.py --tiny --device cpu   # seconds: what CI runs (tests/test_gpu_benchmark.py)

For ResNet-18 and ResNet-50 (fragscan's built-ins, cifar stem, *random* weights seeded with 0) on
CIFAR-shaped 3x32x32 uniform noise labelled by the network's own predictions (timing only), and for
ResNet-18 trained for one epoch on Fashion-MNIST (skipped when its files are not found), prints:

- ms per filtered variant with one variant at a time (K=1) and with ``variant_batch`` auto (and an
  explicit K, ``--k``: on a CPU auto is 1, so the explicit K is what measures batching there), and
  whether the curves of each equal K=1's;
- the sweep's achieved TFLOP/s (multiply-adds x 2 of the work an exact sweep must do, see
  ``work_flops``) and, on a device whose dense peak is known, its share of that peak;
- SM utilisation sampled during the sweeps (pynvml, else nvidia-smi; "n/a" without either);
- full scans (every group, 3 filters, ``--thresholds``, default 25) at ``--samples`` (default 2000
  and 10000) in fixed and regenerate modes, with K=auto.

A benchmark, not a test: figures depend on the machine and its load. Time is read after
``torch.cuda.synchronize``. ``--out DIR`` also writes every printed line to DIR/gpu.txt. A full sweep
still running after ``--sweep-budget`` seconds stops, its time extrapolated from the cells done.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

from fragscan.base.runtime import resolve_device
from fragscan.data import create_dataset, evaluation_tensors
from fragscan.models import MODELS, Normalized, create_model
from fragscan.models.train import TrainSettings, train
from fragscan.sweep.attacks import ADVERSARIES, build_attack, predictions
from fragscan.sweep.engine import analysis_mode, sweep
from fragscan.sweep.groups import parameter_groups
from fragscan.sweep.prefix import flop_costs, trace

FILTERS = ("step-up", "step-down", "pulse")
# The device machine gets the files carried in .data/ (../shared/gpu/README.md); Debian installs them here.
FASHION_ROOTS = (Path(".data/fashion-mnist"), Path("/usr/share/datasets/fashion-mnist"))
EPS = 2 / 255
# Dense (no sparsity) peaks in FLOP/s by device name and arithmetic, from the vendor's data sheets.
DENSE_PEAK = {"H200": {"fp32": 67e12, "tf32": 494e12, "bf16": 989e12}, "H100": {"fp32": 67e12, "tf32": 494e12}}

_lines: list[str] = []


def say(text: str = "") -> None:
    print(text, flush=True)
    _lines.append(text)


class Utilisation:
    """SM utilisation (%) sampled every 50 ms on a CUDA device: pynvml, else nvidia-smi, else none."""

    def __init__(self, device: torch.device):
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._read = None
        if device.type != "cuda":
            return
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(device.index or 0)
            self._read = lambda: float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        except Exception:  # no pynvml, or no driver access from this process
            if shutil.which("nvidia-smi"):
                query = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-i", "0"]
                self._read = lambda: float(subprocess.run(query, capture_output=True, text=True).stdout.split()[0])

    def __enter__(self):
        if self._read is not None:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.samples.append(self._read())
            time.sleep(0.05)

    def __exit__(self, *exc):
        self._stop.set()
        if self._read is not None:
            self._thread.join()

    def summary(self) -> str:
        if not self.samples:
            return "n/a"
        return f"{sum(self.samples) / len(self.samples):.0f}% mean, {max(self.samples):.0f}% max"


def random_case(name: str, samples: int, device: torch.device, batch_size: int):
    """A built-in with random weights on CIFAR-shaped noise, labelled by its own predictions."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, input_size=(3, 32, 32), stem=_stem(name)).eval().to(device)
    images = torch.rand(samples, 3, 32, 32, generator=torch.Generator().manual_seed(1)).to(device)
    return model, images, predictions(model, images, batch_size)


def _stem(name: str) -> str:
    """The small-image stem where the architecture has one (the paper's CIFAR setting)."""
    return "cifar" if name in MODELS and MODELS.entry(name).meta.get("stems") else "imagenet"


def fashion_case(name: str, root: Path, samples: int, train_samples: int, device: torch.device, batch_size: int):
    """``name`` trained for one epoch on (the first ``train_samples`` of) Fashion-MNIST's training split."""
    torch.manual_seed(0)
    model = create_model(
        name, num_classes=10, in_chans=1, input_size=(1, 28, 28), mean=(0.2860,), std=(0.3530,), stem=_stem(name),
        default_weights=False,
    )
    training = create_dataset("fashion-mnist", root=root, split="train")
    subset = torch.utils.data.Subset(training, range(min(train_samples, len(training))))
    train(model, subset, TrainSettings(epochs=1, batch_size=128), device=device)
    images, labels, _ = evaluation_tensors(create_dataset("fashion-mnist", root=root), samples, 0)
    return model.eval().to(device), images.to(device), labels.to(device)


def spread(groups: list, count: int | None) -> list:
    if count is None or count >= len(groups):
        return groups
    step = len(groups) / count
    return [groups[int(i * step)] for i in range(count)]


class OverBudget(Exception):
    """The sweep passed the script's deadline after ``done`` of ``total`` cells."""

    def __init__(self, done: int, total: int):
        super().__init__(f"{done} of {total} cells")
        self.done, self.total = done, total


def run(
    model: Normalized, groups, images, labels, mode: str, thresholds: int, batch_size: int, variant_batch,
    deadline: float | None = None,
):
    """One timed sweep: (result, seconds, SM utilisation); past ``deadline`` (perf_counter) it stops
    with :class:`OverBudget`."""
    device = images.device

    def on_cell(event) -> None:
        if deadline is not None and time.perf_counter() > deadline:
            raise OverBudget(event.done, event.total)

    with analysis_mode(model):
        adversary = ADVERSARIES[mode](build_attack("FGSM", model, EPS, 10), images, labels, batch_size, 0)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        with Utilisation(device) as utilisation:
            started = time.perf_counter()
            result = sweep(
                model, groups, FILTERS, thresholds, images, labels, adversary, batch_size=batch_size,
                variant_batch=variant_batch, progress=on_cell,
            )
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds = time.perf_counter() - started
    return result, seconds, utilisation.summary()


def work_flops(model: Normalized, groups, result, samples: int, mode: str) -> float:
    """FLOPs an exact sweep must do: per distinct variant, the group's dependent suffix on clean data
    and, in fixed mode, on the fixed examples; in regenerate mode (fused FGSM) the suffix forward, a
    backward through the whole model (about two forwards) and a full forward on the crafted examples."""
    traced, _ = trace(model)
    per_sample = 2 * sum(flop_costs(traced, torch.zeros(1, *model.spec.input_size, device=_device(model))).values())
    share = sum(result.info.suffix_share.get(g.name, 1.0) for g in groups) / len(groups)
    forwards = 2 * share if mode == "fixed" else share + 3
    return result.info.variants * forwards * per_sample * samples


def _device(model) -> torch.device:
    return next(model.parameters()).device


def same_curves(a, b) -> bool:
    return all(
        torch.equal(curve.clean, b.curves[g][f].clean) and torch.equal(curve.adversarial, b.curves[g][f].adversarial)
        for g, per_filter in a.curves.items()
        for f, curve in per_filter.items()
    )


def peak(device: torch.device) -> tuple[str, float | None]:
    if device.type != "cuda":
        return "cpu", None
    name = torch.cuda.get_device_name(device)
    arithmetic = "tf32" if torch.backends.cuda.matmul.allow_tf32 else "fp32"
    known = next((peaks for key, peaks in DENSE_PEAK.items() if key in name), {})
    return f"{name} ({arithmetic})", known.get(arithmetic)


def per_variant(case: str, model, images, labels, groups, thresholds: int, batch_size: int, ks: list) -> None:
    """ms per variant for each K, on a few groups spread over the depth."""
    device = images.device
    name, dense_peak = peak(device)
    say(f"\n## {case}: {len(groups)} groups x {len(FILTERS)} filters x {thresholds} thresholds, "
        f"{len(images)} samples, batch {batch_size}, {name}")
    say(f"{'mode':<11}{'K asked':>8}{'K used':>7}{'variants':>9}{'s':>8}{'ms/variant':>11}{'TFLOP/s':>9}"
        f"{'of peak':>8}  {'SM busy':<20}{'= K=1':<6}note")
    run(model, groups[:1], images, labels, "fixed", 3, batch_size, 1)  # warm-up: first calls, allocator, kernels
    for mode in ("fixed", "regenerate"):
        single = None
        for k in [1, *ks]:
            result, seconds, busy = run(model, groups, images, labels, mode, thresholds, batch_size, k)
            single = single or result
            achieved = work_flops(model, groups, result, len(images), mode) / seconds
            share = f"{achieved / dense_peak:.1%}" if dense_peak else "n/a"
            variants = max(1, result.info.variants)
            say(f"{mode:<11}{k!s:>8}{result.info.variant_batch:>7}{variants:>9}{seconds:>8.2f}"
                f"{seconds / variants * 1e3:>11.2f}{achieved / 1e12:>9.3g}{share:>8}  {busy:<20}"
                f"{'yes' if same_curves(result, single) else 'NO':<6}{result.info.variant_batch_note or ''}")


def full_scans(case: str, model, labels_for, groups, thresholds: int, batch_size: int, sample_counts, budget):
    """Full sweeps with K=auto; one still running after ``budget`` seconds stops, its time
    extrapolated from the share of cells done."""
    say(f"\n## {case}: full sweep, {len(groups)} groups x {len(FILTERS)} filters x {thresholds} thresholds, K=auto")
    say(f"{'samples':>8}  {'mode':<11}{'K used':>7}{'variants':>9}{'s':>9}  SM busy")
    for samples in sample_counts:
        images, labels = labels_for(samples)
        for mode in ("fixed", "regenerate"):
            started = time.perf_counter()
            try:
                result, seconds, busy = run(
                    model, groups, images, labels, mode, thresholds, batch_size, "auto", started + budget
                )
            except OverBudget as over:
                spent = time.perf_counter() - started
                say(f"{samples:>8}  {mode:<11}{'?':>7}{'?':>9}{'>' + format(spent, '.0f'):>9}  stopped at the budget "
                    f"after {over}: about {spent * over.total / max(1, over.done):.0f} s for all (extrapolated)")
                continue
            info = result.info
            say(f"{samples:>8}  {mode:<11}{info.variant_batch:>7}{info.variants:>9}{seconds:>9.2f}  {busy}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--tiny", action="store_true", help="CPU-sized: seconds, for CI")
    parser.add_argument("--models", default="resnet18,resnet50", help="built-ins timed on CIFAR-shaped noise")
    parser.add_argument("--fashion-model", default="resnet18", help="trained for an epoch on Fashion-MNIST")
    parser.add_argument("--samples", default=None, help="full-scan sample counts, comma-separated")
    parser.add_argument("--thresholds", type=int, default=None)
    parser.add_argument("--k", type=int, default=8, help="an explicit variant batch besides auto")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--tf32", action="store_true", help="allow TF32 matmuls and convolutions on CUDA")
    parser.add_argument("--sweep-budget", type=float, default=25.0, help="seconds after which a full sweep stops")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    device = resolve_device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = args.tf32
    tiny = args.tiny
    timing_samples, timing_groups, timing_thresholds = (16, 2, 3) if tiny else (2000, 6, 9)
    sample_counts = [int(s) for s in args.samples.split(",")] if args.samples else ([16] if tiny else [2000, 10000])
    thresholds = args.thresholds or (3 if tiny else 25)
    batch_size = args.batch_size or (16 if tiny else 1000)
    say(f"# fragscan benchmarks/gpu.py: device {device}, torch {torch.__version__}, tf32 {args.tf32}, "
        f"threads {torch.get_num_threads()}, tiny {tiny}")

    for name in args.models.split(","):
        model, images, labels = random_case(name, max(timing_samples, *sample_counts), device, batch_size)
        groups = parameter_groups(model.net)[0]
        per_variant(f"{name}, CIFAR-shaped noise", model, images[:timing_samples], labels[:timing_samples],
                    spread(groups, timing_groups), timing_thresholds, batch_size, ["auto", args.k])
        full_scans(f"{name}, CIFAR-shaped noise", model, lambda n: (images[:n], labels[:n]),
                   spread(groups, 2) if tiny else groups, thresholds, batch_size, sample_counts, args.sweep_budget)

    root = next((r for r in FASHION_ROOTS if (r / "t10k-images-idx3-ubyte.gz").exists()), None)
    if root is not None:
        samples = 16 if tiny else 2000
        name = args.fashion_model
        model, images, labels = fashion_case(name, root, samples, 64 if tiny else 60000, device, batch_size)
        accuracy = float((predictions(model, images, batch_size) == labels).float().mean())
        groups = parameter_groups(model.net)[0]
        say(f"\n({name} after one epoch on Fashion-MNIST: {accuracy:.1%} on {samples} test samples)")
        per_variant(f"{name}, Fashion-MNIST", model, images, labels, spread(groups, timing_groups),
                    timing_thresholds, batch_size, ["auto", args.k])
        full_scans(f"{name}, Fashion-MNIST", model, lambda n: (images[:n], labels[:n]),
                   spread(groups, 2) if tiny else groups, thresholds, batch_size, [samples], args.sweep_budget)
    else:
        say(f"\n(Fashion-MNIST not found in {' or '.join(map(str, FASHION_ROOTS))}: that part skipped)")

    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gpu.txt").write_text("\n".join(_lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
