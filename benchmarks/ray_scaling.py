"""Throughput of --executor ray with 1 and 2 workers against the in-process sweep.

Run from the repository root:
    PYTHONPATH=. python benchmarks/ray_scaling.py [max_samples] [thresholds] [attack_mode] [attack]
Prints wall time per executor for the same scan (digits-cnn, eps 0.1, 3 filters; FGSM, regenerate by default).
In fixed mode each worker receives the examples crafted once by the scan (before, each task crafted
them again): an attack that is costly to craft (PGD) shows the saving, e.g. `... 120 3 fixed PGD`.
"""

import sys
import time
from pathlib import Path

import ray
import torch

import fragscan
from fragscan.pipeline.executors import ExecutorOptions

ROOT = Path(__file__).resolve().parent.parent
samples = int(sys.argv[1]) if len(sys.argv) > 1 else 300
thresholds = int(sys.argv[2]) if len(sys.argv) > 2 else 9
attack_mode = sys.argv[3] if len(sys.argv) > 3 else "regenerate"
attack = sys.argv[4] if len(sys.argv) > 4 else "FGSM"
config = fragscan.ScanConfig(
    max_samples=samples, thresholds=thresholds, eps=0.1, attack=attack, attack_mode=attack_mode
)
print(
    f"digits-cnn, {samples} samples, {thresholds} thresholds, 3 filters, 5 groups, {attack} {attack_mode}; "
    f"torch threads {torch.get_num_threads()}"
)


def timed(label, **kwargs):
    started = time.perf_counter()
    report = fragscan.scan(config, **kwargs)
    print(f"{label:>22}: {time.perf_counter() - started:7.1f} s")
    return report


reference = timed("in-process")
for workers in (1, 2):
    ray.init(num_cpus=workers, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    report = timed(f"ray, {workers} worker(s)", executor=ExecutorOptions("ray", ray_gpus_per_worker=0))
    ray.shutdown()
    same = report.model_dump(exclude={"run"}) == reference.model_dump(exclude={"run"})
    print(f"{'':>22}  same numbers as in-process: {same}")
