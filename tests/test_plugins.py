"""Plugins by each of the three routes, listed in the report and by `fragscan plugins`; failures are not fatal."""

import json
import textwrap

import pytest
from typer.testing import CliRunner

import fragscan
from fragscan.base.plugins import Plugin, load_again, load_plugins
from fragscan.cli import app
from fragscan.data import DATASETS
from fragscan.models import MODELS

runner = CliRunner()


def _plugin_source(model_name: str) -> str:
    return textwrap.dedent(
        f"""
        from torch import nn
        import fragscan

        @fragscan.register_model("{model_name}", input_size=(1, 8, 8), mean=(0.3,), std=(0.4,), num_classes=10)
        def factory(num_classes=10, in_chans=1, **kwargs):
            return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, num_classes))
        """
    )


@pytest.fixture
def model_name(tmp_path):
    name = f"plugin-net-{tmp_path.name}"
    yield name
    MODELS.unregister(name)


def test_a_plugin_file_registers_a_model_that_scans(tmp_path, model_name):
    path = tmp_path / "my_plugin.py"
    path.write_text(_plugin_source(model_name))
    config = fragscan.ScanConfig(
        model=model_name, plugins=[path], max_samples=40, thresholds=3, eps=0.1, filters="pulse"
    )
    report = fragscan.scan(config)
    assert [g.name for g in report.groups] == ["1.weight", "3.weight"]
    assert report.model.mean == [0.3] and report.settings.plugins == (path,)
    assert any(
        line.startswith(f"my_plugin (file: {path.resolve()}) registered model:{model_name}") for line in report.plugins
    )
    assert MODELS.entry(model_name).source == "plugin my_plugin"


def test_the_project_plugins_folder_is_loaded(tmp_path, model_name):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "local_models.py").write_text(_plugin_source(model_name))
    (found,) = [p for p in load_plugins(project_dir=tmp_path / "plugins") if p.name == "local_models"]
    assert found.route == "project" and found.registered == (f"model:{model_name}",)
    assert model_name in fragscan.list_models(external=False)


def test_an_entry_point_plugin_is_loaded(tmp_path, monkeypatch, model_name):
    module = f"fragscan_test_plugin_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(_plugin_source(model_name))
    dist_info = tmp_path / "fragscan_test_plugin-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: fragscan-test-plugin\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(f"[fragscan.plugins]\ntest-nets = {module}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    (found,) = [p for p in load_plugins() if p.name == "test-nets"]
    assert found.route == "entry-point" and found.loaded and found.registered == (f"model:{model_name}",)
    result = runner.invoke(app, ["plugins"])
    assert result.exit_code == 0 and "test-nets" in result.output and "entry-point" in result.output


def test_a_failing_plugin_is_reported_not_fatal(tmp_path):
    broken = tmp_path / "broken_plugin.py"
    broken.write_text("raise RuntimeError('needs a GPU driver')\n")
    report = fragscan.scan(
        fragscan.ScanConfig(plugins=[broken], max_samples=30, thresholds=3, eps=0.1, filters="pulse")
    )
    assert any(
        "broken_plugin" in line and "failed: RuntimeError: needs a GPU driver" in line for line in report.plugins
    )
    assert any("broken_plugin" in w and "failed" in w for w in report.warnings)
    listing = runner.invoke(app, ["plugins", "--plugin", str(broken)])
    assert listing.exit_code == 0 and "needs a GPU driver" in listing.output


QUICK_SCAN = ["--max-samples", "20", "--thresholds", "3", "--filters", "pulse", "--eps", "0.1", "--classify", "tau"]


@pytest.mark.parametrize(
    "body",
    ["import sys\nsys.exit(0)\n", "raise SystemExit\n", "class Stop(BaseException):\n    pass\nraise Stop('halt')\n"],
)
def test_a_plugin_that_exits_or_raises_base_exception_at_import_is_a_failed_plugin(tmp_path, body):
    """issue 23.2: sys.exit(0) at import ended `scan --policy` with exit 0 and no report, a CI gate passed."""
    exiting = tmp_path / "exiting_plugin.py"
    exiting.write_text(body)
    (found,) = [p for p in load_plugins([exiting]) if p.name == "exiting_plugin"]
    assert not found.loaded and found.error.split(":")[0] in ("SystemExit", "Stop")


def test_a_gate_with_a_plugin_that_exits_still_scans_and_audits(tmp_path):
    exiting = tmp_path / "exit_zero.py"
    exiting.write_text("import sys\nsys.exit(0)\n")
    policy = tmp_path / "policy.yaml"
    policy.write_text("min_clean_accuracy: 1.0\n")  # the tiny scan misses this: the gate must fail
    out = tmp_path / "out"
    arguments = ["scan", *QUICK_SCAN, "--plugin", str(exiting), "--policy", str(policy), "--out", str(out), "-q"]
    result = runner.invoke(app, arguments)
    assert result.exit_code == 1, result.output
    assert "policy violated" in result.output
    report = json.loads((out / "report.json").read_text())
    assert any("exit_zero" in line and "failed: SystemExit: 0" in line for line in report["plugins"])


def test_a_plugin_model_that_exits_while_built_fails_the_command(tmp_path, model_name):
    exiting = tmp_path / "exits_later.py"
    exiting.write_text(
        f"import sys\nimport fragscan\n\n@fragscan.register_model({model_name!r}, input_size=(1, 8, 8))\n"
        "def factory(**kwargs):\n    sys.exit(0)\n"
    )
    out = tmp_path / "out"
    result = runner.invoke(app, ["scan", model_name, *QUICK_SCAN, "--plugin", str(exiting), "--out", str(out), "-q"])
    assert result.exit_code == 3, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "sys.exit(0)" in lines[0] and not out.exists()


def test_a_missing_plugin_file_is_one_line_exit_2(tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["scan", "--plugin", str(tmp_path / "nope.py"), "--out", str(out)])
    assert result.exit_code == 2 and "--plugin" in result.output and "not a Python file" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not out.exists()


def test_the_shipped_plugins_work(tmp_path):
    """plugins/lenet.py (project route) and examples/mnist_csv_plugin.py (--plugin route), end to end."""
    import numpy as np

    rows = np.concatenate([np.arange(6)[:, None] % 10, np.random.default_rng(0).integers(0, 256, (6, 784))], axis=1)
    np.savetxt(
        tmp_path / "mnist_test.csv",
        rows,
        fmt="%d",
        delimiter=",",
        header="label," + ",".join(f"p{i}" for i in range(784)),
        comments="",
    )
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "scan",
            "lenet5",
            "mnist-csv",
            "--plugin",
            "examples/mnist_csv_plugin.py",
            "--data-root",
            str(tmp_path),
            "--max-samples",
            "6",
            "--thresholds",
            "3",
            "--eps",
            "0.1",
            "--filters",
            "pulse",
            "--quiet",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["model"]["name"] == "lenet5" and report["dataset"]["samples"] == 6
    assert len(report["groups"]) == 5
    assert (
        MODELS.entry("lenet5").source == "plugin lenet"
        and DATASETS.entry("mnist-csv").source == "plugin mnist_csv_plugin"
    )


def test_a_factory_without_in_chans_is_called_with_what_it_takes(tmp_path):
    name = f"bare-{tmp_path.name}"
    path = tmp_path / "bare_plugin.py"
    path.write_text(
        textwrap.dedent(f"""
        from torch import nn
        import fragscan

        @fragscan.register_model("{name}", input_size=(1, 8, 8), mean=(0.3,), std=(0.4,), num_classes=10)
        def factory(num_classes=10):
            return nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes))
    """)
    )
    load_plugins([path])
    try:
        assert fragscan.create_model(name).spec.num_classes == 10
    finally:
        MODELS.unregister(name)


def test_load_again_loads_exactly_the_given_plugins(tmp_path, monkeypatch, model_name):
    """What a Ray worker does: the driver's plugins by their resolved paths, not its own ./plugins/."""
    project_only = f"{model_name}-project-only"
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "worker_local.py").write_text(_plugin_source(project_only))
    named = tmp_path / "named_plugin.py"
    named.write_text(_plugin_source(model_name))
    (driver_record,) = load_plugins([named], project_dir=tmp_path / "empty")[-1:]
    monkeypatch.chdir(tmp_path)
    try:
        assert load_again([driver_record]) == [driver_record]
        assert model_name in fragscan.list_models(external=False)
        assert project_only not in fragscan.list_models(external=False)
    finally:
        MODELS.unregister(project_only)


def test_load_again_imports_an_entry_point_by_its_value(tmp_path, monkeypatch, model_name):
    """A worker gets the driver's entry-point record (name, ``module[:attr]``), not the installed metadata."""
    module = f"fragscan_worker_plugin_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(_plugin_source(model_name))
    monkeypatch.syspath_prepend(str(tmp_path))
    (again,) = load_again([Plugin("worker-nets", "entry-point", module)])
    assert again.loaded and again.registered == (f"model:{model_name}",)
    assert model_name in fragscan.list_models(external=False)


def test_a_described_plugin_reads_back_from_its_report_line(tmp_path):
    """`fragscan mask` finds the scan's plugins/ files in the report's list: describe() reads back."""
    location = str(tmp_path / "my plugins" / "local_models.py")
    digest = "0123456789abcdef" * 4
    described = [
        Plugin("local_models", "project", location, ("model:a", "dataset:b"), sha256=digest),
        Plugin("local_models", "file", location),
        Plugin("local_models", "file", location, sha256=digest),
        Plugin("local_models", "project", location, error="RuntimeError: needs a GPU driver [x]", sha256=digest),
        Plugin("my-nets", "entry-point", "my_package.fragscan_plugin:setup", ("model:c",)),
    ]
    for plugin in described:
        assert Plugin.from_description(plugin.describe()) == plugin
    for line in [
        "a line a caller added to the report's list",
        f"other (project: {location}) registered model:a",  # a file plugin is named after its file
        "local_models (project: plugins/local_models.py) registered model:a",  # recorded resolved
    ]:
        assert Plugin.from_description(line) is None


def test_a_loaded_file_records_its_sha256_and_the_report_lists_it(tmp_path, model_name):
    """The report pins the code a plugin file ran: its line ends in the file's sha256."""
    import hashlib

    path = tmp_path / "pinned_nets.py"
    path.write_text(_plugin_source(model_name))
    (loaded,) = load_plugins([path], project_dir=tmp_path / "none")[-1:]
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.describe().endswith(f"registered model:{model_name} [sha256 {loaded.sha256}]")


def test_a_ray_worker_refuses_a_plugin_file_that_is_not_the_drivers(tmp_path, model_name):
    from fragscan.base.errors import ConfigError
    from fragscan.pipeline.executors import load_worker_plugins

    path = tmp_path / "worker_nets.py"
    path.write_text(_plugin_source(model_name))
    (driver,) = load_plugins([path], project_dir=tmp_path / "none")[-1:]
    load_worker_plugins((driver,))  # the same file: fine
    edited = Plugin(driver.name, driver.route, driver.location, driver.registered, sha256="f" * 64)
    with pytest.raises(ConfigError, match="on a Ray worker is not the driver's"):
        load_worker_plugins((edited,))


def test_built_ins_a_plugin_imports_first_are_not_credited_to_it(tmp_path):
    """Issue 23.23: a plugin that imported fragscan.sweep.attacks (to shadow FGSM) was listed as registering
    every torchattacks attack and the built-in models, which that first import registered."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "shadow.py").write_text(
        "import torchattacks\nfrom fragscan.sweep.attacks import ATTACKS\n"
        "ATTACKS.register('FGSM', torchattacks.FGSM, replace=True)\n"
    )
    root = Path(__file__).resolve().parents[1]
    listed = subprocess.run(
        [sys.executable, "-m", "fragscan", "plugins", "--plugin", "shadow.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root), "COLUMNS": "300"},
    )
    assert listed.returncode == 0, listed.stderr
    (row,) = [line for line in listed.stdout.splitlines() if "shadow.py" in line]
    assert "registered attack:FGSM " in row and "PGD" not in row and "model:" not in row, row
