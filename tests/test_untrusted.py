"""Untrusted input: fuzzed options and random file contents give one line and a documented exit
code, never a traceback, and nothing is written outside --out."""

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import fragscan
from fragscan.resume import CheckpointStore
from fragscan.cli import app
from fragscan.errors import InputError
from fragscan.report import load_report

CHEAP = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
DOCUMENTED_EXIT_CODES = {0, 2, 3}

numbers = st.one_of(st.integers(-3, 6).map(str), st.sampled_from(["", "x", "1e9", "-0", "nan", "0.5"]))
options = st.fixed_dictionaries(
    {},
    optional={
        "--max-samples": st.one_of(st.integers(-2, 12).map(str), st.sampled_from(["", "many", "1.5"])),
        "--thresholds": numbers,
        "--batch-size": numbers,
        "--eps": st.sampled_from(["0.1", "0", "1", "-1", "2", "auto", "nan", "inf", "big", ""]),
        "--filters": st.sampled_from(["pulse", "step-up", "stepup", ",", "", "pulse,pulse", "magnitude"]),
        "--attack": st.sampled_from(["FGSM", "fgsm", "PDG", "MultiAttack", ""]),
        "--attack-mode": st.sampled_from(["fixed", "regenerate", "sometimes", ""]),
        "--scope": st.sampled_from(["local", "global", "world"]),
        "--tau": st.sampled_from(["0.01", "-1", "x"]),
        "--seed": st.sampled_from(["0", "-5", "99999999999999999999", "s"]),
        "--include": st.sampled_from(["bias", "norm", "*", "[", "\x00"]),
        "--device": st.sampled_from(["cpu", "auto", "cuda:7", "tpu", ""]),
        "--executor": st.sampled_from(["local", "spark", ""]),
        "--ray-gpus-per-worker": st.sampled_from(["-1", "x", "100"]),
        "--weights": st.sampled_from(["missing.safetensors", "", "."]),
        "--data-root": st.sampled_from([".", "nowhere"]),
        "--split": st.sampled_from(["test", "train", "val"]),
        "--select": st.sampled_from(["features.*", "layer4.*", "[", ""]),
        "--attack-space": st.sampled_from(["pixel", "normalized", "z"]),
        "--precision": st.sampled_from(["fp32", "bf16", "fp16", "fp8", ""]),
        "--precision-tolerance": st.sampled_from(["0", "1", "-1", "x", "nan"]),
    },
)


def _listing(directory: Path, skip: Path) -> set[str]:
    return {str(p.relative_to(directory)) for p in directory.rglob("*") if skip not in (p, *p.parents)}


@CHEAP
@given(chosen=options)
def test_fuzzed_scan_options_fail_cleanly_and_write_only_into_out(chosen):
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        out = scratch / "out"
        arguments = ["scan", "--max-samples", "8", "--thresholds", "3", "--filters", "pulse", "--eps", "0.1", "--quiet"]
        for option, value in chosen.items():
            arguments += [option, value]
        if "--filters" in chosen and chosen["--filters"] not in ("pulse", "pulse,pulse"):
            arguments += ["--summary-filter", chosen["--filters"].split(",")[0]]
        arguments += ["--max-samples", chosen.get("--max-samples", "8"), "--out", str(out)]
        before = _listing(scratch, out)
        cwd = os.getcwd()
        os.chdir(scratch)
        try:
            result = CliRunner().invoke(app, arguments)
        finally:
            os.chdir(cwd)
        assert result.exit_code in DOCUMENTED_EXIT_CODES, (arguments, result.output)
        assert "Traceback" not in result.output, result.output
        if result.exit_code == 0:
            assert (out / "report.json").is_file()
        else:
            # fragscan's own errors and values click cannot parse as the option's type (e.g.
            # --max-samples '') alike: one line
            lines = result.output.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith(("error:", "internal error:")), result.output
            assert not (out / "report.json").exists()
        assert _listing(scratch, out) == before


@CHEAP
@given(content=st.binary(max_size=300), suffix=st.sampled_from([".safetensors", ".pt", ".pth", ".bin"]))
def test_random_bytes_as_weights_are_one_line_exit_2(content, suffix):
    with tempfile.TemporaryDirectory() as scratch:
        weights = Path(scratch) / f"weights{suffix}"
        weights.write_bytes(content)
        out = Path(scratch) / "out"
        result = CliRunner().invoke(app, ["scan", "--weights", str(weights), "--quiet", "--out", str(out)])
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
        assert "weights" in result.output
        assert sorted(p.name for p in Path(scratch).iterdir()) == sorted([weights.name, "out"])
        assert not (out / "report.json").exists()


@CHEAP
@given(content=st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
def test_random_bytes_as_a_report_are_an_input_error(content):
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "report.json"
        path.write_bytes(content)
        with pytest.raises(InputError) as error:
            load_report(path)
        assert "\n" not in str(error.value)


@CHEAP
@given(manifest=st.binary(max_size=200), target=st.binary(max_size=300))
def test_random_bytes_as_checkpoints_are_an_input_error(manifest, target):
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        (directory / "manifest.json").write_bytes(manifest)
        try:
            store = CheckpointStore(directory, {"seed": 0})
        except fragscan.FragscanError as error:  # unreadable manifest (InputError) or a foreign one (ConfigError)
            assert error.exit_code == 2 and "\n" not in str(error)
            return
        store._path("features.0.weight").write_bytes(target)
        with pytest.raises(InputError) as error:
            store.load("features.0.weight")
        assert "\n" not in str(error.value)
