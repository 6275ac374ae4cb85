"""Check a report against a policy. Pure: reads a Report (and a previous Report), returns an AuditResult."""

from __future__ import annotations

from fnmatch import fnmatchcase

from pydantic import BaseModel, ConfigDict, Field

from ..._version import __version__
from ...base.errors import InputError
from ...base.threat_spec import parse
from ...config import SCORES
from ...report import Report, report_digest
from ...report.numbers import order_of
from .policy import AuditPolicy, load_previous_report

AUDIT_SCHEMA_VERSION = "1.1"  # 1.1: the policy may name a budget (eps); a rule names the groups it could not judge


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Finding(_Model):
    """One thing outside a threshold: a group, a score, or the whole report."""

    message: str
    group: str | None = None
    filter: str | None = None
    score: str | None = None
    value: float | None = None
    reference: float | None = Field(None, description="the baseline report's value (max-regression)")


class RuleOutcome(_Model):
    id: str
    description: str
    threshold: float | list[str]
    measured: float | None = Field(description="the value compared with the threshold (None: nothing to measure)")
    passed: bool
    message: str
    findings: list[Finding] = Field(default_factory=list)
    undecided: list[Finding] = Field(
        default_factory=list,
        description="groups the rule could not judge (inconclusive): a pass says nothing about them (audit 1.1+)",
    )


class AuditedReport(_Model):
    path: str | None
    sha256: str
    model: str
    weights_sha256: str | None
    dataset: str
    split: str
    samples: int
    started_at: str


class AuditResult(_Model):
    schema_version: str = AUDIT_SCHEMA_VERSION
    fragscan_version: str
    report: AuditedReport
    baseline_report: AuditedReport | None
    policy: AuditPolicy
    passed: bool
    rules: list[RuleOutcome]
    warnings: list[str] = Field(default_factory=list)

    @property
    def failed(self) -> list[RuleOutcome]:
        return [rule for rule in self.rules if not rule.passed]


def audit(
    report: Report, policy: AuditPolicy, *, report_path: str | None = None, baseline: Report | None = None
) -> AuditResult:
    """Every rule the policy sets, checked against ``report``; rules left unset are not checked.

    ``baseline``, the previous report, defaults to the one ``policy.baseline_report`` names.
    """
    if baseline is None:
        baseline = load_previous_report(policy)
    check_policy_fits(policy, report.settings.scope, has_previous_report=baseline is not None)
    _check_has_groups(report, policy)
    if policy.eps is not None:
        from ...scoring.surface import stated_at  # torch: not for a policy file's checks

        report = stated_at(report, policy.eps, "the report")
        baseline = None if baseline is None else stated_at(baseline, policy.eps, "the baseline report")
    warnings = []
    if policy.min_adversarial_accuracy is not None and _tuned(report):
        warnings.append(
            "min-adversarial-accuracy was measured at an ε that --eps auto tuned to about halve clean accuracy, "
            "so the floor says little; scan with a fixed --eps"
        )
    if baseline is not None and policy.max_regression is None:
        warnings.append("a baseline report was given but max-regression is not set: nothing was compared with it")
    outcomes = _above_chance(report, policy)
    if policy.min_clean_accuracy is not None:
        outcomes.append(
            _at_least("min-clean-accuracy", "clean accuracy", report.baseline.clean, policy.min_clean_accuracy)
        )
    if policy.min_adversarial_accuracy is not None:
        outcomes.append(
            _at_least(
                "min-adversarial-accuracy",
                f"adversarial accuracy ({_attacked_by(report)}, ε={report.settings.eps_used:.4g})",
                report.baseline.adversarial,
                policy.min_adversarial_accuracy,
            )
        )
    if policy.max_fragile_share is not None:
        outcomes.append(_class_share(report, "fragile", policy.max_fragile_share))
    if policy.max_inconclusive_share is not None:
        outcomes.append(_class_share(report, "inconclusive", policy.max_inconclusive_share))
    if policy.must_not_be_fragile:
        outcomes.append(_must_not_be_fragile(report, policy.must_not_be_fragile))
    if policy.max_regression is not None:
        outcome, differences = _regression(report, baseline, policy.max_regression)
        outcomes.append(outcome)
        warnings.extend(differences)
    return AuditResult(
        fragscan_version=__version__,
        report=_audited(report, report_path),
        baseline_report=None if baseline is None else _audited(baseline, _str(policy.baseline_report)),
        policy=policy,
        passed=all(o.passed for o in outcomes),
        rules=outcomes,
        warnings=warnings,
    )


def check_policy_budget(policy: AuditPolicy, threat: str | None, eps: float | str) -> None:
    """A policy naming a budget the scan (``--threat``, or ``--eps``) will not measure fails before the scan."""
    if policy.eps is None:
        return
    if threat is None:
        if eps != policy.eps:
            raise InputError(
                f"the policy audits at eps {policy.eps:g}, but the scan measures --eps {eps} only; "
                f"scan with a --threat that lists {policy.eps:g}"
            )
        return

    given = {entry.eps for entry in parse(threat)}
    if "auto" not in given and policy.eps not in given:
        raise InputError(f"the policy audits at eps {policy.eps:g}, which --threat {threat!r} does not list")


def _tuned(report: Report) -> bool:
    """Whether the budget the report states was tuned by ``auto`` (of --eps, or in the threat profile)."""
    if report.threat is None:
        return report.settings.eps == "auto"

    given = {entry.eps for entry in parse(report.threat.spec)}
    return "auto" in given and report.threat.headline not in given


def _attacked_by(report: Report) -> str:
    if report.threat is None:
        return report.settings.attack
    attacks = [a.attack for a in report.threat.attacks if a.eps == report.threat.headline]
    return "worst case of " + ", ".join(attacks)


def check_policy_fits(policy: AuditPolicy, scope: str, *, has_previous_report: bool) -> None:
    """Say what a policy lacks before (or instead of) auditing: a previous report, or a scan with groups."""
    if policy.max_regression is not None and not has_previous_report:
        raise InputError(
            "max-regression needs a baseline report: pass --baseline OLD_REPORT.json or set baseline_report in the "
            "policy"
        )
    if scope != "local" and policy.group_rules():
        raise InputError(
            f"rules {', '.join(policy.group_rules())} need per-group results, but the scan's scope is {scope!r}; "
            "scan with --scope local"
        )


def _above_chance(report: Report, policy: AuditPolicy) -> list[RuleOutcome]:
    """A near-chance model (untrained, or weights and data that do not match) fails every audit
    unless the policy allows it: its classes are noise, whatever the other rules measure."""
    from ...models.sanity import NEAR_CHANCE, near_chance  # sanity's other checks need torch; an audit does not

    problem = near_chance(report.baseline.clean, report.model.num_classes)
    if problem is None:
        return []
    return [
        RuleOutcome(
            id="above-chance",
            description="the unfiltered network's clean accuracy is clearly above chance "
            "(allow_near_chance: true skips)",
            threshold=NEAR_CHANCE / report.model.num_classes,
            measured=report.baseline.clean,
            passed=policy.allow_near_chance,
            message=problem + ("; allowed by the policy" if policy.allow_near_chance else ""),
            findings=[] if policy.allow_near_chance else [Finding(message=problem, value=report.baseline.clean)],
        )
    ]


def _check_has_groups(report: Report, policy: AuditPolicy) -> None:
    """A share of no groups is undefined: say so instead of dividing by zero or passing vacuously."""
    if policy.group_rules() and not report.groups:
        raise InputError(
            f"rules {', '.join(policy.group_rules())} need analysed groups, but the report has none "
            f"({len(report.skipped)} skipped); scan a model with trained Conv/Linear weights or drop these rules"
        )


def _str(value) -> str | None:
    return None if value is None else str(value)


def _audited(report: Report, path: str | None) -> AuditedReport:
    return AuditedReport(
        path=path,
        sha256=report_digest(report),
        model=report.model.name,
        weights_sha256=report.model.weights_sha256,
        dataset=report.dataset.name,
        split=report.dataset.split,
        samples=report.dataset.samples,
        started_at=report.run.started_at,
    )


def _at_least(rule: str, what: str, value: float, minimum: float) -> RuleOutcome:
    passed = value >= minimum
    message = f"{what} {value:.4f} {'≥' if passed else '<'} {minimum:.4f}"
    return RuleOutcome(
        id=rule,
        description=f"the unfiltered network's {what.split(' (')[0]} is at least the threshold",
        threshold=minimum,
        measured=value,
        passed=passed,
        message=message,
        findings=[] if passed else [Finding(message=message, value=value)],
    )


def _class_share(report: Report, cls: str, maximum: float) -> RuleOutcome:
    """At most ``maximum`` of the groups have summary class ``cls``; each such group is a finding."""
    members = [g for g in report.groups if g.summary_class == cls]
    share = len(members) / len(report.groups)
    passed = share <= maximum
    settings = report.settings
    return RuleOutcome(
        id=f"max-{cls}-share",
        description=f"at most this share of groups is {cls} (class from "
        f"{settings.summary_filter}/{settings.summary_score}, --classify {settings.classify})",
        threshold=maximum,
        measured=share,
        passed=passed,
        message=f"{len(members)} of {len(report.groups)} groups {cls} "
        f"({share:.1%} {'≤' if passed else '>'} {maximum:.1%})",
        findings=[] if passed else [
            Finding(message=f"{g.name} is {cls}{_undecided(g)}", group=g.name) for g in members
        ],
    )


def _undecided(group) -> str:
    """What would decide an inconclusive group, as a message suffix."""
    if group.samples_to_decide is None:
        return ""
    return f" (±{group.half_width:.4f}; of order {order_of(group.samples_to_decide)} samples would decide it)"


def check_guards_match(globs: tuple[str, ...], names: list[str], where: str = "the report") -> None:
    """Each must-not-be-fragile glob matches one of the group ``names``: a typo would otherwise pass
    the gate silently. A scan with ``--policy`` checks this before its sweep, once groups are known."""
    unmatched = [glob for glob in globs if not any(fnmatchcase(name, glob) for name in names)]
    if unmatched:
        raise InputError(
            f"must-not-be-fragile glob {unmatched[0]!r} matches no group of {where}; groups: {', '.join(names[:8])}"
            + (" ..." if len(names) > 8 else "")
        )


def _must_not_be_fragile(report: Report, globs: tuple[str, ...]) -> RuleOutcome:
    check_guards_match(globs, [g.name for g in report.groups])
    guarded = [g for g in report.groups if any(fnmatchcase(g.name, glob) for glob in globs)]
    fragile = [g for g in guarded if g.summary_class == "fragile"]  # decided: an inconclusive group is no finding
    undecided = sum(g.summary_class == "inconclusive" for g in guarded)
    scores = {g.name: g.filters[report.settings.summary_filter].scores for g in fragile}
    return RuleOutcome(
        id="must-not-be-fragile",
        description="no group matching these globs is fragile (decided; inconclusive ones are counted, not failed)",
        threshold=list(globs),
        measured=float(len(fragile)),
        passed=not fragile,
        message=f"{len(fragile)} of {len(guarded)} guarded groups fragile"
        + (f": {', '.join(g.name for g in fragile)}" if fragile else "")
        + (f"; {undecided} inconclusive (not shown fragile, not shown safe)" if undecided else ""),
        findings=[
            Finding(
                message=f"{g.name} must not be fragile but is "
                f"(S_{report.settings.summary_score} = {getattr(scores[g.name], report.settings.summary_score):+.4f} "
                f"under {report.settings.summary_filter}, τ = {report.settings.tau})",
                group=g.name,
                filter=report.settings.summary_filter,
                score=report.settings.summary_score,
                value=getattr(scores[g.name], report.settings.summary_score),
            )
            for g in fragile
        ],
        undecided=[
            Finding(message=f"{g.name} is inconclusive: not shown fragile, not shown safe{_undecided(g)}", group=g.name)
            for g in guarded
            if g.summary_class == "inconclusive"
        ],
    )


def _regression(report: Report, previous: Report, maximum: float) -> tuple[RuleOutcome, list[str]]:
    old_groups = {g.name: g for g in previous.groups}
    findings, drops, compared = [], [], 0
    for group in report.groups:
        old = old_groups.get(group.name)
        if old is None:
            continue
        for filter_id, curve in group.filters.items():
            if filter_id not in old.filters:
                continue
            for score in SCORES:
                new_value = getattr(curve.scores, score)
                old_value = getattr(old.filters[filter_id].scores, score)
                if new_value is None or old_value is None:
                    continue
                compared += 1
                drop = old_value - new_value
                drops.append(drop)
                if drop > maximum:
                    findings.append(
                        Finding(
                            message=f"{group.name} {filter_id} S_{score} fell by {drop:.4f} "
                            f"({old_value:+.4f} → {new_value:+.4f})",
                            group=group.name,
                            filter=filter_id,
                            score=score,
                            value=new_value,
                            reference=old_value,
                        )
                    )
    if not compared:
        raise InputError("the baseline report shares no group and filter with this report: nothing to compare")
    findings.sort(key=lambda f: f.value - f.reference)
    worst = max(drops)
    outcome = RuleOutcome(
        id="max-regression",
        description="no filtering score falls by more than the threshold against the baseline report",
        threshold=maximum,
        measured=worst,
        passed=not findings,
        message=f"largest fall {worst:+.4f} over {compared} scores; {len(findings)} beyond {maximum:.4f}",
        findings=findings,
    )
    return outcome, _setting_differences(report, previous)


def _setting_differences(report: Report, previous: Report) -> list[str]:
    warnings = []
    if report.model.name != previous.model.name:
        warnings.append(f"the baseline report is of model {previous.model.name!r}, this one of {report.model.name!r}")
    changed = report.setting_differences(previous)
    if changed:
        warnings.append(
            "the baseline report was scanned with other settings, so scores may differ for that reason: "
            + "; ".join(changed)
        )
    missing = sorted(set(g.name for g in previous.groups) - set(g.name for g in report.groups))
    if missing:
        warnings.append(f"{len(missing)} groups of the baseline report are missing here: {', '.join(missing[:5])}")
    return warnings
