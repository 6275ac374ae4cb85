"""Benchmark: the engine's time with variants one at a time, ``auto`` and K at once, on the CPU.

    python benchmarks/variant_batch_cpu.py [--k 8] [--repeats 1] [--threads 1] [--digits 540] [--noise 32]

Cases: the embedded default (digits-cnn on ``--digits`` of its 540 test digits, 5 groups x 3 filters
x 25 thresholds) and ResNet-18 (fragscan's built-in, cifar stem, random weights, ``--noise``
CIFAR-shaped noise images labelled by its own predictions, 4 groups spread over the depth x 3
filters x 5 thresholds),
FGSM in fixed and regenerate modes. Prints the best of ``--repeats`` wall and CPU seconds per run,
and whether each K's curves equal K=1's. Run with an older fragscan on ``PYTHONPATH`` (one without
``variant_batch``) it times that engine alone: the comparison against the engine before issue 19.
"""

from __future__ import annotations

import argparse
import inspect
import time

import torch

from fragscan.data import create_dataset, evaluation_tensors
from fragscan.models import create_model
from fragscan.sweep.attacks import ADVERSARIES, build_attack, predictions
from fragscan.sweep.engine import analysis_mode, sweep
from fragscan.sweep.groups import parameter_groups

FILTERS = ("step-up", "step-down", "pulse")
BATCHED = "variant_batch" in inspect.signature(sweep).parameters


def digits(samples: int):
    model = create_model("digits-cnn")
    images, labels, _ = evaluation_tensors(create_dataset("digits"), samples, 0)
    name = f"digits-cnn, {len(images)} digits, 25 thresholds"
    return name, model, images, labels, parameter_groups(model.net)[0], 25, 0.1


def resnet18(samples: int):
    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=10, input_size=(3, 32, 32), stem="cifar").eval()
    images = torch.rand(samples, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    groups = parameter_groups(model.net)[0]
    groups = [groups[int(i * len(groups) / 4)] for i in range(4)]
    labels = predictions(model, images, 32)
    return f"resnet18, {samples} noise images, 4 groups, 5 thresholds", model, images, labels, groups, 5, 2 / 255


def timed(model, images, labels, groups, thresholds, eps, mode, k):
    options = {"variant_batch": k} if BATCHED else {}
    with analysis_mode(model):
        adversary = ADVERSARIES[mode](build_attack("FGSM", model, eps, 10), images, labels, 256, 0)
        wall, cpu = time.perf_counter(), time.process_time()
        result = sweep(model, groups, FILTERS, thresholds, images, labels, adversary, batch_size=256, **options)
        return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (1: steadier on a shared CPU)")
    parser.add_argument("--digits", type=int, default=540)
    parser.add_argument("--noise", type=int, default=32)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, engine with variant_batch: {BATCHED}")
    for case, samples in ((digits, args.digits), (resnet18, args.noise)):
        name, model, images, labels, groups, thresholds, eps = case(samples)
        print(f"\n## {name}\n{'mode':<11}{'K':>6}{'K used':>7}{'variants':>9}{'wall s':>8}{'CPU s':>8}  = K=1")
        for mode in ("fixed", "regenerate"):
            single = None
            for k in (1, "auto", args.k) if BATCHED else (1,):
                runs = [timed(model, images, labels, groups, thresholds, eps, mode, k) for _ in range(args.repeats)]
                result = runs[0][0]
                single = single or result
                same = all(
                    torch.equal(c.clean, single.curves[g][f].clean)
                    and torch.equal(c.adversarial, single.curves[g][f].adversarial)
                    for g, per_filter in result.curves.items()
                    for f, c in per_filter.items()
                )
                used = getattr(result.info, "variant_batch", 1)
                print(
                    f"{mode:<11}{k!s:>6}{used:>7}{result.info.variants:>9}{min(r[1] for r in runs):>8.2f}"
                    f"{min(r[2] for r in runs):>8.2f}  {'yes' if same else 'NO'}"
                )


if __name__ == "__main__":
    main()
