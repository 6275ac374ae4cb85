"""Untrusted input: fuzzed options and random file contents give one line and a documented exit
code, never a traceback, and nothing is written outside --out."""

import base64
import json
import math
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import fragscan
from fragscan.base.errors import InputError
from fragscan.cli import app
from fragscan.outputs.auditing import load_policy
from fragscan.pipeline.resume import ResumeStore
from fragscan.report import load_report, write_report
from fragscan.report.io import report_json

# Example counts come from the profile in conftest.py: the suite replays, `explore` hunts.
FUZZED = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])

# Non-finite floats and integers far past any bound (an 8 TB allocation, an int64 overflow) among the plain ones.
NON_FINITE = ["nan", "inf", "-inf", "1e308", "-1e308"]
HUGE = ["1000000000000", "9" * 23, str(2**63), str(-(2**63) - 1)]
numbers = st.one_of(st.integers(-3, 6).map(str), st.sampled_from(["", "x", "1e9", "-0", "nan", "0.5", *HUGE]))
floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr), st.sampled_from([*NON_FINITE, *HUGE, "x", ""])
)
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
        "--tau": st.one_of(st.sampled_from(["0.01", "-1", "x"]), floats),
        "--seed": st.sampled_from(["0", "-5", "99999999999999999999", "s", *HUGE]),
        "--bootstrap": st.one_of(numbers, st.sampled_from(["100", "100000000"])),
        "--include": st.sampled_from(["bias", "norm", "*", "[", "\x00"]),
        "--device": st.sampled_from(["cpu", "auto", "cuda:7", "tpu", "", "mps", "meta", "xpu:0"]),
        "--executor": st.sampled_from(["local", "spark", ""]),
        "--ray-gpus-per-worker": st.sampled_from(["-1", "x", "100"]),
        "--weights": st.sampled_from(["missing.safetensors", "", "."]),
        "--data-root": st.sampled_from([".", "nowhere"]),
        "--split": st.sampled_from(["test", "train", "val"]),
        "--select": st.sampled_from(["features.*", "layer4.*", "[", ""]),
        "--attack-space": st.sampled_from(["pixel", "normalized", "z"]),
        "--precision": st.sampled_from(["fp32", "bf16", "fp16", "fp8", ""]),
        "--precision-tolerance": st.one_of(st.sampled_from(["0", "1", "-1", "x", "nan"]), floats),
    },
)


def _listing(directory: Path, skip: Path) -> set[str]:
    return {str(p.relative_to(directory)) for p in directory.rglob("*") if skip not in (p, *p.parents)}


@FUZZED
@given(chosen=options)
def test_fuzzed_scan_options_fail_cleanly_and_write_only_into_out(chosen, memory_cap):
    with tempfile.TemporaryDirectory() as scratch, memory_cap():
        scratch = Path(scratch)
        out = scratch / "out"
        arguments = ["scan", "--max-samples", "8", "--thresholds", "3", "--filters", "pulse", "--eps", "0.1", "--quiet"]
        arguments += ["--classify", "tau", "--bootstrap", "0"]  # quick; --bootstrap is fuzzed too
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
        _fails_cleanly(result, arguments)
        if result.exit_code == 0:
            assert (out / "report.json").is_file()
        else:
            assert not out.exists()  # nothing written, not even a resume manifest
        assert _listing(scratch, out) == before


def _fails_cleanly(result, arguments) -> None:
    """Exit 0, or one line (fragscan's own errors and values click cannot parse as the option's
    type alike) with exit 2: bad input is never an internal error (exit 3)."""
    assert result.exit_code in (0, 2), (arguments, result.output)
    assert "Traceback" not in result.output, result.output
    if result.exit_code:
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), (arguments, result.output)


train_options = st.fixed_dictionaries(
    {},
    optional={
        "--lr": floats,
        "--weight-decay": floats,
        "--epochs": st.one_of(numbers, st.just("1")),
        "--batch-size": numbers,
        "--seed": st.sampled_from(["0", "-1", *HUGE]),
        "--save-every": numbers,
    },
)


@FUZZED
@given(command=st.sampled_from(["train", "retrain"]), chosen=train_options)
@example(command="train", chosen={"--weight-decay": "3.402823466385289e+38"})  # overflowed Adam: CI, stop 17
def test_fuzzed_train_and_retrain_numbers_fail_cleanly(command, chosen, memory_cap):
    with tempfile.TemporaryDirectory() as scratch, memory_cap():
        out = Path(scratch) / "out"
        arguments = [command, "digits-cnn", "digits", "--quiet", "--out", str(out)]
        if command == "retrain":  # a missing mask: every number is checked before it is looked for
            arguments += ["--mask", str(Path(scratch) / "none.safetensors"), "--max-samples", "8", "--eps", "0.1"]
            chosen.pop("--save-every", None)
        chosen.setdefault("--epochs", "1")
        if chosen["--epochs"].lstrip("-").isdigit() and int(chosen["--epochs"]) > 1:
            chosen["--epochs"] = "0"  # refused, not a long run
        arguments += ["--split", "val"] if command == "train" else ["--train-split", "test"]
        for option, value in chosen.items():
            arguments += [option, value]
        result = CliRunner().invoke(app, arguments)
        _fails_cleanly(result, arguments)
        if result.exit_code:
            assert not out.exists()


@FUZZED
@given(
    option=st.sampled_from(
        ["--min-clean-accuracy", "--min-adversarial-accuracy", "--max-fragile-share", "--max-regression"]
    ),
    value=floats,
)
def test_fuzzed_audit_thresholds_fail_cleanly(audited_report, option, value):
    result = CliRunner().invoke(app, ["audit", str(audited_report), option, value, "-q"])
    assert result.exit_code in (0, 1, 2), result.output
    assert "internal error" not in result.output and "Traceback" not in result.output


@pytest.fixture(scope="module")
def audited_report(tmp_path_factory):
    config = fragscan.ScanConfig(max_samples=10, thresholds=3, filters="pulse", eps=0.1, classify="tau", bootstrap=0)
    path = tmp_path_factory.mktemp("audited") / "report.json"
    write_report(fragscan.scan(config), path)
    return path


@FUZZED
@given(
    chosen=st.fixed_dictionaries(
        {},
        optional={
            "--policy": st.sampled_from(["band", "layer", "x", ""]),
            "--score": st.sampled_from(["clean", "adversarial", "difference", "x", ""]),
            "--filters": st.sampled_from(["pulse", "step-up", "", ",", "pulse,pulse"]),
            "--others": st.sampled_from(["train", "freeze", "x"]),
            "--weights": st.sampled_from(["missing.safetensors", "."]),
            "--plugin": st.sampled_from(["missing.py", "."]),
        },
    )
)
def test_fuzzed_mask_options_fail_cleanly(audited_report, chosen):
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "mask.safetensors"
        _writes_out_only_on_success(["mask", str(audited_report), "--out", str(out), "-q"], chosen, out)


@FUZZED
@given(
    chosen=st.fixed_dictionaries(
        {},
        optional={
            "--by": st.sampled_from(["auto", "name", "role", "depth", ""]),
            "--filter": st.sampled_from(["pulse", "step-up", "x", ""]),
            "--score": st.sampled_from(["clean", "adversarial", "difference", "x", ""]),
            "--depth-bins": numbers,
        },
    )
)
def test_fuzzed_compare_options_fail_cleanly(audited_report, chosen):
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "comparison.json"
        _writes_out_only_on_success(["compare", *[str(audited_report)] * 2, "--json", str(out)], chosen, out)


def _writes_out_only_on_success(arguments: list[str], chosen: dict[str, str], out: Path) -> None:
    for option, value in chosen.items():
        arguments += [option, value]
    result = CliRunner().invoke(app, arguments)
    _fails_cleanly(result, arguments)
    assert out.is_file() == (result.exit_code == 0)


@FUZZED
@given(content=st.binary(max_size=300))
def test_random_bytes_as_a_mask_are_an_input_error(content):
    with tempfile.TemporaryDirectory() as scratch:
        mask, out = Path(scratch) / "mask.safetensors", Path(scratch) / "out"
        mask.write_bytes(content)
        arguments = ["retrain", "digits-cnn", "digits", "--mask", str(mask), "--epochs", "1", "--out", str(out)]
        result = CliRunner().invoke(app, arguments)
        assert result.exit_code == 2, result.output  # random bytes are never a mask
        _fails_cleanly(result, arguments)
        assert not out.exists()


@FUZZED
@given(
    text=st.text(max_size=200) | st.sampled_from(["min_clean_accuracy: .nan", "max_fragile_share: 1e999", "a: 1\na: 2"])
)
def test_random_policy_files_are_an_input_error(text):
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "policy.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            policy = load_policy(path)
        except InputError as error:
            assert "\n" not in str(error)
            return
        for name in ("min_clean_accuracy", "min_adversarial_accuracy", "max_fragile_share", "max_regression"):
            value = getattr(policy, name)
            assert value is None or math.isfinite(value)


@FUZZED
@given(
    labels=st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=6),
    pixels=st.sampled_from(["uint8", "float32", "float64", "int64"]),
)
def test_random_npz_labels_are_bounded_before_anything_is_built(labels, pixels, memory_cap):
    import numpy as np

    from fragscan.data import create_dataset, evaluation_tensors

    with tempfile.TemporaryDirectory() as scratch, memory_cap():
        path = Path(scratch) / "d.npz"
        np.savez(path, x=np.zeros((len(labels), 4, 4), pixels), y=np.array(labels, np.int64))
        try:
            images, found, _ = evaluation_tensors(create_dataset("npz", root=path), None, 0)
        except InputError as error:
            assert "\n" not in str(error)
            return
        assert found.tolist() == labels


@FUZZED
@given(content=st.binary(max_size=400))
def test_random_bytes_as_an_svhn_file_are_an_input_error(content):
    import io

    import numpy as np
    import scipy.io

    from fragscan.data import create_dataset

    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.ones((2, 1))})
    valid = buffer.getvalue()
    with tempfile.TemporaryDirectory() as scratch:
        for data in (content, valid[: len(content)], content + valid[len(content) :]):  # junk, truncated, damaged
            (Path(scratch) / "test_32x32.mat").write_bytes(data)
            try:
                create_dataset("svhn", root=Path(scratch))
            except InputError as error:
                assert "\n" not in str(error)


@FUZZED
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
        assert [p.name for p in Path(scratch).iterdir()] == [weights.name]  # no --out left behind
        assert not (out / "report.json").exists()


@FUZZED
@given(content=st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
def test_random_bytes_as_a_report_are_an_input_error(content):
    with tempfile.TemporaryDirectory() as scratch:
        _refused_on_load(Path(scratch) / "report.json", content)


def _refused_on_load(path: Path, content: bytes) -> str:
    """``content`` written to ``path`` is refused by load_report on one line, which is returned."""
    path.write_bytes(content)
    with pytest.raises(InputError) as error:
        load_report(path)
    assert "\n" not in str(error.value)
    return str(error.value)


@FUZZED
@given(manifest=st.binary(max_size=200), target=st.binary(max_size=300))
def test_random_bytes_as_checkpoints_are_an_input_error(manifest, target):
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        (directory / "manifest.json").write_bytes(manifest)
        try:
            store = ResumeStore(directory, {"seed": 0})
        except fragscan.FragscanError as error:  # unreadable manifest (InputError) or a foreign one (ConfigError)
            assert error.exit_code == 2 and "\n" not in str(error)
            return
        store._path("features.0.weight").write_bytes(target)
        with pytest.raises(InputError) as error:
            store.load("features.0.weight")
        assert "\n" not in str(error.value)
        store._look_path("features.0.weight").write_bytes(target)  # an adaptive target's saved looks
        with pytest.raises(InputError) as error:
            store.load_look("features.0.weight", ("pulse",), [20, 40])
        assert "\n" not in str(error.value)


# Reports that are not what a scan wrote (issue 23: 6, 18) ----------------------------------------

REPORT_COMMANDS = {  # each command that reads a report, with what it would write into the folder ``out``
    "audit": lambda report, out: ["audit", report, "--out", str(out), "-q"],
    "report": lambda report, out: ["report", report, "-o", str(out / "report.html"), "-q"],
    "mask": lambda report, out: ["mask", report, "--out", str(out / "mask.safetensors"), "-q"],
    "compare": lambda report, out: ["compare", report, report, "--json", str(out / "comparison.json")],
}


def _refused_by_every_reader(text: str, *expected: str) -> None:
    """``text`` as a report: load_report says why on one line, and each command exits 2 on one line
    with nothing written."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "report.json"
        message = _refused_on_load(path, text.encode())
        assert all(e in message for e in expected), message
        for command, arguments in REPORT_COMMANDS.items():
            result = CliRunner().invoke(app, arguments(str(path), Path(scratch)))
            assert result.exit_code == 2, (command, result.output)
            _fails_cleanly(result, command)
        assert [p.name for p in Path(scratch).iterdir()] == ["report.json"]  # nothing written


def _nested(depth: int, opener: str) -> str:
    return opener * depth + "0" + {"[": "]", '{"a":': "}"}[opener] * depth


@FUZZED
@given(
    depth=st.integers(1, 200_000),
    opener=st.sampled_from(["[", '{"a":']),
    field=st.sampled_from([None, "schema_version", "groups", "settings", "warnings"]),
)
@example(depth=100_000, opener="[", field=None)  # RecursionError (exit 3) in every reader: issue 23.6
@example(depth=100_000, opener='{"a":', field="groups")
def test_deeply_nested_json_as_a_report_is_an_input_error(audited_report, depth, opener, field):
    data = json.loads(audited_report.read_text())
    text = _nested(depth, opener)
    if field is not None:  # nested inside an otherwise whole report
        data[field] = "NESTED"
        text = json.dumps(data).replace('"NESTED"', text)
    with tempfile.TemporaryDirectory() as scratch:
        _refused_on_load(Path(scratch) / "report.json", text.encode())


def test_a_deeply_nested_report_is_one_line_exit_2_in_every_command():
    _refused_by_every_reader(_nested(100_000, "["), "nests deeper than any report")


def _numbers(node, path=()):
    """Paths to every number in parsed JSON."""
    if isinstance(node, dict):
        return [p for key, value in node.items() for p in _numbers(value, (*path, key))]
    if isinstance(node, list):
        return [p for index, value in enumerate(node) for p in _numbers(value, (*path, index))]
    return [path] if isinstance(node, (int, float)) and not isinstance(node, bool) else []


def _finite(node) -> bool:
    if isinstance(node, dict):
        return all(_finite(v) for v in node.values())
    if isinstance(node, (list, tuple)):
        return all(_finite(v) for v in node)
    return not isinstance(node, float) or math.isfinite(node)


@FUZZED
@given(data=st.data(), value=st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1e308", "1e12"]))
def test_a_report_with_a_non_finite_or_huge_number_is_refused_or_read_finite(audited_report, data, value):
    parsed = json.loads(audited_report.read_text())
    *parents, last = data.draw(st.sampled_from(_numbers(parsed)))
    node = parsed
    for key in parents:
        node = node[key]
    node[last] = "NUMBER"
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "report.json"
        path.write_text(json.dumps(parsed).replace('"NUMBER"', value))
        try:
            report = load_report(path)
        except InputError as error:
            assert "\n" not in str(error)
            return
        assert _finite(report.model_dump())
        result = CliRunner().invoke(app, ["audit", str(path), "--out", str(Path(scratch) / "audit"), "-q"])
        assert result.exit_code in (0, 1, 2) and "Traceback" not in result.output, result.output


def _damage(report: dict, change: str) -> None:
    curve = report["groups"][0]["filters"]["pulse"]
    drawn = report["baseline"]["samples"]
    if change.startswith("schema_version="):
        report["schema_version"] = change.removeprefix("schema_version=")
    elif change == "bits not base64":
        curve["correct"]["clean"] = "!!" + curve["correct"]["clean"][2:]
    elif change == "bits cut short":
        report["baseline"]["correct"]["adversarial"] = base64.b64encode(bytes(-(-drawn // 8) - 1)).decode()
    elif change == "padding bits set":  # 10 samples: 2 bytes, the last 6 bits padding
        report["baseline"]["correct"]["clean"] = base64.b64encode(bytes([0, 1])).decode()
    elif change == "accuracy above 1":
        curve["clean"][0] = 1.5
    else:  # "WHERE samples=N"
        where, count = change.split(" samples=")
        target = {"baseline": report["baseline"], "dataset": report["dataset"], "group": report["groups"][0],
                  "curve": curve}[where]
        target["size" if where == "dataset" else "samples"] = json.loads(count)


@pytest.mark.parametrize(
    "change",
    [
        "schema_version=banana", "schema_version=", "schema_version=2", "schema_version=2.one",
        "bits not base64", "bits cut short", "padding bits set", "accuracy above 1",
        "baseline samples=1e12", "dataset samples=1000000000000", "group samples=1000000000000",
        "curve samples=1000000000000", "curve samples=0",
    ],
)
def test_a_damaged_report_is_one_line_exit_2_in_every_command(audited_report, change):
    """issue 23.18: `schema_version: "banana"`, damaged packed bits or `samples: 1e12` were read as a report."""
    report = json.loads(audited_report.read_text())
    assert report["baseline"]["samples"] == 10 and report["baseline"]["correct"] is not None
    _damage(report, change)
    _refused_by_every_reader(json.dumps(report), "damaged")


@pytest.fixture(scope="module")
def profile_report() -> dict:
    """A small threat-profile scan as report.json holds it: two budgets, one group."""
    config = fragscan.ScanConfig(max_samples=20, thresholds=3, filters="pulse", select=("features.0.weight",),
                                 threat="FGSM@0.05,0.1", batch_size=32)
    return json.loads(report_json(fragscan.scan(config)))


@pytest.mark.parametrize("where", ["surface", "worst"])
def test_a_threat_profiles_damaged_bits_are_one_line_exit_2_in_every_command(profile_report, where):
    """The surface's [budgets, thresholds, samples] bits and each budget's [samples] are checked as a curve's are."""
    report = json.loads(json.dumps(profile_report))
    holder = report["groups"][0]["filters"]["pulse"]["surface"] if where == "surface" else report["threat"]["worst"][1]
    packed = base64.b64decode(holder["correct"])
    load_report_text(json.dumps(report))  # intact, it loads
    holder["correct"] = base64.b64encode(packed[:-1]).decode()
    _refused_by_every_reader(json.dumps(report), "damaged", "does not hold the")


def load_report_text(text: str):
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "report.json"
        path.write_text(text)
        return load_report(path)


def test_a_report_written_by_schema_2_1_still_loads_renders_audits_and_compares(tmp_path):
    """Written by fragscan at schema 2.1 (an adaptive scan, so with its looks), before the checks above."""
    written = Path(__file__).parent / "data" / "report-2.1-adaptive.json"
    report = load_report(written)
    assert report.schema_version == "2.1" and report.groups[0].filters["pulse"].looks
    for command, arguments in REPORT_COMMANDS.items():
        if command != "mask":  # the weights it names were a scratch copy's
            result = CliRunner().invoke(app, arguments(str(written), tmp_path))
            assert result.exit_code == 0, (command, result.output)


@pytest.mark.parametrize("name", ["policy.yaml", "policy.json", "block.yaml", "manifest.json"])
def test_a_deeply_nested_policy_or_resume_manifest_is_an_input_error(tmp_path, name):
    """issue 23.6, beyond reports: the other JSON and YAML files fragscan reads."""
    path = tmp_path / name
    if name == "block.yaml":
        path.write_text("a:\n" + "".join("  " * i + "-\n" for i in range(3000)))
    else:
        path.write_text('{"a": ' + _nested(100_000, "[") + "}")
    with pytest.raises(InputError) as error:
        if name == "manifest.json":
            ResumeStore(tmp_path, {"seed": 0})
        else:
            load_policy(path)
    assert "\n" not in str(error.value)


@FUZZED
@given(
    body=st.sampled_from(
        [
            "import sys\nsys.exit(0)", "import sys\nsys.exit('bye')", "raise SystemExit(None)", "raise GeneratorExit",
            "class Halt(BaseException):\n    pass\nraise Halt()", "raise BaseExceptionGroup('g', [SystemExit(0)])",
            "raise RecursionError", "raise StopIteration",
        ]
    )
    | st.text(max_size=80)
)
def test_a_plugin_that_exits_or_raises_anything_at_import_is_a_failed_plugin(body):
    """issue 23.2: whatever a plugin raises at import (the user's Ctrl-C aside) is recorded, never the process's end."""
    from fragscan.base.plugins import load_plugins

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "fuzzed_plugin.py"
        path.write_text(body, encoding="utf-8")
        (plugin,) = [p for p in load_plugins([path]) if p.location == str(path.resolve())]
        assert plugin.loaded or "\n" not in plugin.error


def test_ctrl_c_while_a_plugin_loads_still_stops_fragscan(tmp_path):
    from fragscan.base.plugins import load_plugins

    path = tmp_path / "interrupted_plugin.py"
    path.write_text("raise KeyboardInterrupt\n")
    with pytest.raises(KeyboardInterrupt):
        load_plugins([path])
