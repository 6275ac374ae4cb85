"""CI audits: check a report against thresholds a user sets and write JSON, JUnit XML and SARIF."""

from .policy import AuditPolicy, load_policy, load_previous_report  # noqa: F401
from .rules import (  # noqa: F401
    AUDIT_SCHEMA_VERSION,
    AuditResult,
    Finding,
    RuleOutcome,
    audit,
    check_guards_match,
    check_policy_budget,
    check_policy_fits,
)
from .writing import AUDIT_FILES, junit_xml, sarif, write_audit_outputs  # noqa: F401
