"""docs/glossary.md holds: each thing has one name in the code. A retired synonym the glossary lists is no
identifier anywhere in fragscan/, every name it gives for a thing is one, and the one-definition names
are defined once."""

import ast
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GLOSSARY = ROOT / "docs" / "glossary.md"
SOURCES = sorted((ROOT / "fragscan").rglob("*.py"))
# Things once defined in several places: each must now have exactly one module-level definition.
DEFINED_ONCE = ("Interval", "Score", "SCORES", "Rule", "EPS_TARGET", "Accuracy", "ACCURACIES", "PackedCorrectness")


def _rows() -> list[list[str]]:
    """The glossary table's rows (header and rule excluded), as cells."""
    lines = [line.strip() for line in GLOSSARY.read_text().splitlines() if line.startswith("| ")]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    header, *body = rows
    assert header == ["Term", "What it is", "In code", "Persisted as (JSON, CLI, files)", "Retired in code"], header
    return body


def _names(cell: str) -> list[str]:
    """The identifiers quoted in a cell (``Name``; a call or a dotted path is not one)."""
    return [name for name in re.findall(r"`([^`]+)`", cell) if name.isidentifier()]


def _identifiers() -> dict[str, list[str]]:
    """Every identifier token in fragscan/ (names in code, not in strings or comments) -> where it occurs."""
    found: dict[str, list[str]] = {}
    for path in SOURCES:
        with path.open("rb") as handle:
            for token in tokenize.tokenize(handle.readline):
                if token.type == tokenize.NAME:
                    found.setdefault(token.string, []).append(f"{path.relative_to(ROOT)}:{token.start[0]}")
    return found


IDENTIFIERS = _identifiers()
ROWS = _rows()


@pytest.mark.parametrize("row", ROWS, ids=[row[0] for row in ROWS])
def test_no_retired_synonym_is_an_identifier_in_fragscan(row):
    back = {name: IDENTIFIERS[name][:3] for name in _names(row[4]) if name in IDENTIFIERS}
    assert not back, f"{row[0]!r} is called by a retired name again (docs/glossary.md): {back}"


@pytest.mark.parametrize("row", ROWS, ids=[row[0] for row in ROWS])
def test_every_name_the_glossary_gives_is_in_the_code(row):
    missing = [name for name in _names(row[2]) if name not in IDENTIFIERS]
    assert not missing, f"docs/glossary.md names {missing} for {row[0]!r}, but fragscan/ has no such identifier"


def test_a_word_is_not_both_a_name_and_a_retired_synonym():
    current = {name for row in ROWS for name in _names(row[2])}
    retired = {name for row in ROWS for name in _names(row[4])}
    assert not current & retired


def test_the_once_duplicated_names_are_defined_once():
    definitions: dict[str, list[str]] = {name: [] for name in DEFINED_ONCE}
    for path in SOURCES:
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef):
                targets = [node.name]
            elif isinstance(node, ast.Assign):
                targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                targets = [node.target.id]
            else:
                continue
            for name in set(targets) & set(DEFINED_ONCE):
                definitions[name].append(str(path.relative_to(ROOT)))
    assert {name: places for name, places in definitions.items() if len(places) != 1} == {}


def test_the_glossary_is_in_the_manual():
    assert "glossary.md" in (ROOT / "mkdocs.yml").read_text()
    assert "(glossary.md)" in (ROOT / "docs" / "index.md").read_text()
