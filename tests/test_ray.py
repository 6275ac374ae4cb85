"""--executor ray: per-group sweeps on a local Ray instance merge into the in-process report."""

import importlib
import json
from pathlib import Path

import pytest

import fragscan
from fragscan.executors import ExecutorOptions

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'fragscan[ray]' to run the scale-out tests")
scan_module = importlib.import_module("fragscan.scan")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def local_ray():
    ray.init(
        num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}},  # workers import this checkout's fragscan
    )
    yield
    ray.shutdown()


def _numbers(report):
    data = json.loads(report.model_dump_json())
    data.pop("run")
    return data


def test_ray_workers_give_the_in_process_report_and_resume_from_local_checkpoints(
    local_ray, small_config, tmp_path, monkeypatch
):
    config = small_config(thresholds=3, max_samples=40, filters="step-up,pulse")
    reference = fragscan.scan(config)
    distributed = fragscan.scan(config, executor=ExecutorOptions("ray", ray_gpus_per_worker=0))
    assert distributed.run.executor == "ray"
    assert _numbers(distributed) == _numbers(reference)

    real, calls = scan_module.sweep_target, []

    def interrupted(*args, **kwargs):
        calls.append(args[2])
        if len(calls) > 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(scan_module, "sweep_target", interrupted)
        with pytest.raises(KeyboardInterrupt):
            fragscan.scan(config, checkpoint_dir=tmp_path)
    resumed = fragscan.scan(config, checkpoint_dir=tmp_path, executor=ExecutorOptions("ray", ray_gpus_per_worker=0))
    assert resumed.run.resumed_targets == 2
    assert _numbers(resumed) == _numbers(reference)
