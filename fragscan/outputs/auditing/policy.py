"""An audit policy: the thresholds a user sets. Every rule is off until its threshold is given, but
one: a near-chance (untrained) model fails unless ``allow_near_chance`` is set."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator

from ...base.errors import InputError
from ...base.limits import PolicyMargin, PolicyShare
from ...report import Report, load_report


class AuditPolicy(BaseModel):
    """The thresholds of `fragscan audit` and `scan --policy` (distinct from a mask's band/layer policy)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_clean_accuracy: PolicyShare | None = Field(None, description="unfiltered clean accuracy must reach this")
    min_adversarial_accuracy: PolicyShare | None = Field(
        None, description="unfiltered adversarial accuracy must reach this"
    )
    max_fragile_share: PolicyShare | None = Field(
        None, description="share of analysed groups whose class is fragile must not exceed this (0-1)"
    )
    max_inconclusive_share: float | None = Field(
        None,
        ge=0,
        le=1,
        description="share of analysed groups whose class is inconclusive must not exceed this (0-1): "
        "the scan needs more samples"
    )
    must_not_be_fragile: tuple[str, ...] = Field(
        (),
        description="globs over group names (repeatable); no matching group may be decidedly fragile, and each "
        "glob must match one",
    )
    max_regression: PolicyMargin | None = Field(
        None, description="no filtering score may fall by more than this against the baseline report (--baseline)"
    )
    baseline_report: Path | None = Field(None, description="the report.json max_regression compares against")
    eps: float | None = Field(
        None,
        ge=0,
        le=1,
        description="audit the report at this budget of its threat profile (--threat), restated there; default its "
        "headline budget",
    )
    allow_near_chance: StrictBool = Field(
        False, description="pass a model whose clean accuracy is near chance (untrained): its classes mean nothing"
    )

    @field_validator("must_not_be_fragile", mode="before")
    @classmethod
    def _one_glob_is_a_list(cls, value):
        return [value] if isinstance(value, str) else value

    def rules(self) -> list[str]:
        """The rule ids this policy switches on, in a fixed order."""
        switched_on = [name for name in RULE_FIELDS if getattr(self, name) not in (None, ())]
        return [rule_id(name) for name in switched_on]

    def group_rules(self) -> list[str]:
        """Set rules that need per-group results (a ``--scope local`` report)."""
        group_rules = ("max-fragile-share", "max-inconclusive-share", "must-not-be-fragile", "max-regression")
        return [r for r in self.rules() if r in group_rules]


RULE_FIELDS = (
    "min_clean_accuracy", "min_adversarial_accuracy", "max_fragile_share", "max_inconclusive_share",
    "must_not_be_fragile", "max_regression",
)


def rule_id(field: str) -> str:
    return field.replace("_", "-")


def load_policy(path: str | Path) -> AuditPolicy:
    """Read a YAML or JSON policy file; a relative ``baseline_report`` is relative to the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"policy file {str(path)!r} not found; pass a YAML or JSON file of thresholds")
    try:
        values = _parse(path)
    except RecursionError:  # a policy is a flat mapping; thousands of levels overflow either parser's stack
        raise InputError(
            f"policy {str(path)!r} nests deeper than any policy; pass a mapping of rule: threshold"
        ) from None
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise InputError(f"policy {str(path)!r} must be a mapping of rule: threshold, got a {type(values).__name__}")
    for key in values:
        if key not in AuditPolicy.model_fields:
            close = difflib.get_close_matches(str(key), AuditPolicy.model_fields, n=1, cutoff=0.5)
            hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(AuditPolicy.model_fields)}"
            raise InputError(f"policy {str(path)!r}: unknown key {key!r}; {hint}")
    if values.get("baseline_report") is not None:
        values["baseline_report"] = path.parent / str(values["baseline_report"])
    try:
        return AuditPolicy(**values)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "top level"
        raise InputError(f"policy {str(path)!r}: {where}: {first['msg']}") from None


def _parse(path: Path):
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InputError(
            f"policy {str(path)!r} is not UTF-8 text (byte {error.start}); pass a YAML or JSON file"
        ) from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text, object_pairs_hook=lambda pairs: _unique_keys(pairs, path))
        except json.JSONDecodeError as error:
            raise InputError(f"policy {str(path)!r} is not valid JSON: line {error.lineno}: {error.msg}") from None
    import yaml

    try:
        return yaml.load(text, Loader=_unique_keys_loader(path))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise InputError(f"policy {str(path)!r} is not valid YAML: {where}{problem}") from None


def _unique_keys(pairs: list[tuple], path: Path) -> dict:
    """A mapping whose keys are each given once: a repeated threshold would otherwise silently win."""
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise InputError(f"policy {str(path)!r} sets {key!r} twice; keep one value")
        seen[key] = value
    return seen


def _unique_keys_loader(path: Path):
    """yaml's SafeLoader, refusing a key given twice in one mapping."""
    import yaml

    class UniqueKeys(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            self.flatten_mapping(node)  # YAML merge keys (<<) first, as SafeLoader does
            pairs = [(self.construct_object(k, deep=deep), self.construct_object(v, deep=deep)) for k, v in node.value]
            return _unique_keys(pairs, path)

    return UniqueKeys


def load_previous_report(policy: AuditPolicy) -> Report | None:
    """The previous report the policy names (``baseline_report``), loaded (and checked) before any long work starts."""
    if policy.baseline_report is None:
        return None
    return load_report(policy.baseline_report)
