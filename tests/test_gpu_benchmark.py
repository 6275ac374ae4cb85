"""benchmarks/gpu.py in its tiny CPU mode: the device's prepared script must run before a device is lent."""

import importlib.util
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"


def _benchmark():
    spec = importlib.util.spec_from_file_location("gpu_benchmark", BENCHMARK)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    return benchmark


def test_the_gpu_benchmark_runs_small_on_a_cpu_and_prints_its_figures(tmp_path, capsys):
    benchmark = _benchmark()
    arguments = ["--tiny", "--device", "cpu", "--models", "small-cnn", "--fashion-model", "small-cnn", "--k", "2"]
    benchmark.main([*arguments, "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert (tmp_path / "gpu.txt").read_text().strip() == printed.strip()
    rows = [line.split() for line in printed.splitlines() if line.startswith(("fixed ", "regenerate "))]
    timed = [row for row in rows if len(row) >= 10]  # per-variant rows: mode, K asked, K used, ...
    assert {(row[0], row[1]) for row in timed} >= {(m, k) for m in ("fixed", "regenerate") for k in ("1", "auto", "2")}
    for row in timed:
        assert float(row[5]) > 0 and float(row[6]) > 0  # ms per variant, TFLOP/s
        assert row[9] == "yes"  # the curves equal one variant at a time's
        assert row[2] == {"1": "1", "auto": "1", "2": "2"}[row[1]]  # auto is 1 on a CPU; 2 really batched
    assert "full sweep" in printed and "SM busy" in printed


def test_a_full_sweep_past_its_budget_stops_and_says_what_it_would_take(capsys):
    from fragscan.data import create_dataset, evaluation_tensors
    from fragscan.models import create_model
    from fragscan.sweep.groups import parameter_groups

    model = create_model("digits-cnn")
    images, labels, _ = evaluation_tensors(create_dataset("digits"), 16, 0)
    groups = parameter_groups(model.net)[0][-1:]
    _benchmark().full_scans("digits", model, lambda n: (images[:n], labels[:n]), groups, 3, 16, [16], 0.0)
    stopped = [line for line in capsys.readouterr().out.splitlines() if "stopped at the budget" in line]
    assert len(stopped) == 2 and all("of 9 cells" in line and "(extrapolated)" in line for line in stopped)
