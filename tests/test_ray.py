"""--executor ray: per-group sweeps on a local Ray instance merge into the in-process report."""

import hashlib
import importlib
import json
import textwrap
from pathlib import Path

import pytest
from safetensors import safe_open

import fragscan
from fragscan.base.errors import ConfigError
from fragscan.models import MODELS
from fragscan.pipeline.executors import ExecutorOptions
from fragscan.sweep.filters import FILTERS

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'fragscan[ray]' to run the scale-out tests")
scan_module = importlib.import_module("fragscan.pipeline.scanning")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def local_ray():
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        logging_level="ERROR",
        log_to_driver=False,
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
            fragscan.scan(config, resume_dir=tmp_path)
    resumed = fragscan.scan(config, resume_dir=tmp_path, executor=ExecutorOptions("ray", ray_gpus_per_worker=0))
    assert resumed.run.resumed_targets == 2
    assert _numbers(resumed) == _numbers(reference)


@pytest.mark.parametrize("mode", ["regenerate", "fixed"])
def test_a_threat_profile_on_ray_workers_equals_the_in_process_one(local_ray, small_config, mode):
    config = small_config(
        thresholds=3, max_samples=40, eps="auto", filters="pulse", attack_mode=mode,
        threat="FGSM@0.05,0.1;BIM@auto", select=("features.2.weight", "classifier.3.weight"),
    )
    reference = fragscan.scan(config)
    distributed = fragscan.scan(config, executor=ExecutorOptions("ray", ray_gpus_per_worker=0))
    assert len(reference.threat.budgets) == 3  # BIM's auto budget is a third one
    assert _numbers(distributed) == _numbers(reference)


def test_an_adaptive_threat_profile_on_ray_workers_equals_the_in_process_one(local_ray, small_config):
    """Workers stop each sweep by the profile's rule (every budget's classes), as the driver does."""
    config = small_config(
        thresholds=3, max_samples=120, filters="step-up,pulse", attack_mode="fixed", eps="auto",
        threat="FGSM@0.05,0.15", adaptive={"initial_samples": 30, "look_ratio": 2},
        select=("features.2.weight", "classifier.3.weight"),
    )
    reference = fragscan.scan(config)
    distributed = fragscan.scan(config, executor=ExecutorOptions("ray", ray_gpus_per_worker=0))
    assert len({c.samples for g in reference.groups for c in g.filters.values()}) > 1, "every sweep stopped alike"
    assert _numbers(distributed) == _numbers(reference)


def test_an_adaptive_scan_on_ray_workers_equals_the_in_process_one(local_ray, small_config):
    config = small_config(
        thresholds=3,
        max_samples=120,
        filters="step-up,pulse",
        attack_mode="fixed",
        adaptive={"initial_samples": 30, "look_ratio": 2},
        select=("features.2.weight", "classifier.3.weight"),
    )
    reference = fragscan.scan(config)
    distributed = fragscan.scan(config, executor=ExecutorOptions("ray", ray_gpus_per_worker=0))
    assert _numbers(distributed) == _numbers(reference)
    assert {c.samples for g in reference.groups for c in g.filters.values()} != {120}, "no sweep stopped early"


def test_an_adaptive_scan_interrupted_mid_group_goes_on_at_its_next_look_on_ray_workers(
    local_ray, small_config, tmp_path, monkeypatch
):
    config = small_config(
        thresholds=3,
        max_samples=120,
        eps=0.05,
        filters="step-up,pulse",
        attack_mode="fixed",
        adaptive={"initial_samples": 30, "look_ratio": 2},
        select=("features.2.weight", "classifier.1.weight", "classifier.3.weight"),
    )
    executors = importlib.import_module("fragscan.pipeline.executors")
    real, looks, stop = executors.sweep, [], []

    def sweep(model, groups, *args, **kwargs):
        looks.append(groups[0].name)
        if stop and looks.count(stop[0]) == 2:  # that group's second look
            raise KeyboardInterrupt
        return real(model, groups, *args, **kwargs)

    monkeypatch.setattr(executors, "sweep", sweep)
    reference = fragscan.scan(config)
    stop.append(max(set(looks), key=looks.count))
    assert looks.count(stop[0]) == 3, "no group took three looks"
    looks.clear()
    with pytest.raises(KeyboardInterrupt):
        fragscan.scan(config, resume_dir=tmp_path)
    assert len(list((tmp_path / "rounds").glob("*.safetensors"))) == 1  # its first look
    # the worker goes on at the second look and keeps it in the store it reaches (the same
    # machine); the driver, as each result arrives, finds which look the group's file holds
    store_class, kept = importlib.import_module("fragscan.pipeline.resume").ResumeStore, []
    real_save = store_class.save

    def save(self, target, finished):
        if self._look_path(target).is_file():
            with safe_open(str(self._look_path(target)), framework="pt") as handle:
                kept.append((target, handle.metadata()["look"]))
        real_save(self, target, finished)

    monkeypatch.setattr(store_class, "save", save)
    resumed = fragscan.scan(config, resume_dir=tmp_path, executor=ExecutorOptions("ray", ray_gpus_per_worker=0))
    assert kept == [(stop[0], "1")]
    assert _numbers(resumed) == _numbers(reference)
    assert not list((tmp_path / "rounds").glob("*.safetensors"))


def _plugin_with_its_own_classes(model_name: str, filter_id: str) -> str:
    """A plugin file whose network class and filter class exist only in that file: no worker can import them by name."""
    return textwrap.dedent(
        f"""
        import torch
        from torch import nn
        import fragscan

        class TwoLayerNet(nn.Module):
            def __init__(self, num_classes):
                super().__init__()
                self.hidden = nn.Linear(64, 16)
                self.out = nn.Linear(16, num_classes)

            def forward(self, x):
                return self.out(torch.relu(self.hidden(x.flatten(1))))

        @fragscan.register_model("{model_name}", input_size=(1, 8, 8), mean=(0.3,), std=(0.4,), num_classes=10)
        def factory(num_classes=10, **kwargs):
            torch.manual_seed(0)
            return TwoLayerNet(num_classes)

        @fragscan.register_filter
        class Magnitude(fragscan.SynapticFilter):
            id = "{filter_id}"
            label = "magnitude"
            description = "removes every |w| <= |alpha|"

            def removed(self, weight, alpha):
                return weight.abs() <= abs(alpha)
        """
    )


def test_a_model_and_filter_from_a_plugin_file_run_on_ray_workers(local_ray, tmp_path):
    model_name, filter_id = f"ray-plugin-net-{tmp_path.name}", f"ray-magnitude-{tmp_path.name}"
    path = tmp_path / "ray_plugin.py"
    path.write_text(_plugin_with_its_own_classes(model_name, filter_id))
    config = fragscan.ScanConfig(
        model=model_name, plugins=[path], max_samples=40, thresholds=3, eps=0.1, filters=f"pulse,{filter_id}"
    )
    try:
        reference = fragscan.scan(config)
        distributed = fragscan.scan(config, executor=ExecutorOptions("ray", ray_gpus_per_worker=0))
    finally:
        MODELS.unregister(model_name)
        FILTERS.unregister(filter_id)
    assert [g.name for g in distributed.groups] == ["hidden.weight", "out.weight"]
    assert _numbers(distributed) == _numbers(reference)
    assert distributed.plugins == reference.plugins
    pinned = f" [sha256 {hashlib.sha256(path.read_bytes()).hexdigest()}]"
    line = f"ray_plugin (file: {path.resolve()}) registered model:{model_name}, filter:{filter_id}{pinned}"
    assert line in distributed.plugins


def test_ray_workers_sweep_in_the_precision_the_scan_settled_on(local_ray, small_config):
    config = small_config(thresholds=3, max_samples=40, filters="pulse", precision="bf16", precision_tolerance=1.0)
    reference = fragscan.scan(config)
    assert reference.settings.precision_used == "bf16"
    assert _numbers(fragscan.scan(config, executor=ExecutorOptions("ray", ray_gpus_per_worker=0))) == _numbers(
        reference
    )


def test_a_multi_checkpoint_scan_runs_each_weights_file_on_ray_workers(local_ray, small_config, tmp_path):
    from safetensors.torch import load_file, save_file

    shipped = load_file(MODELS.entry("digits-cnn").meta["spec"].default_weights)
    save_file(shipped, tmp_path / "epoch1.safetensors")
    save_file({k: v * 0.9 for k, v in shipped.items()}, tmp_path / "epoch2.safetensors")
    config = small_config(
        thresholds=3,
        max_samples=40,
        filters="pulse",
        checkpoints=(tmp_path / "epoch1.safetensors", tmp_path / "epoch2.safetensors"),
    )
    distributed = fragscan.scan(config, executor=ExecutorOptions("ray", ray_gpus_per_worker=0))
    assert distributed.run.executor == "ray"
    assert _numbers(distributed) == _numbers(fragscan.scan(config))


def test_a_plugin_the_driver_loaded_but_a_worker_cannot_is_one_clean_error(local_ray, small_config, tmp_path):
    # A file present where the driver runs but not on the workers: this one removes itself once loaded.
    missing = tmp_path / "only_on_the_driver.py"
    missing.write_text("from pathlib import Path\n\nPath(__file__).unlink()\n")
    config = small_config(thresholds=3, max_samples=40, filters="pulse", plugins=[missing])
    with pytest.raises(ConfigError) as caught:
        fragscan.scan(config, executor=ExecutorOptions("ray", ray_gpus_per_worker=0))
    message = str(caught.value)
    assert message.startswith(f"plugin only_on_the_driver (file: {missing}) failed: FileNotFoundError")
    assert "on a Ray worker" in message and len(message.splitlines()) == 1
