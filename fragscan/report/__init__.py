"""The report: the one contract between the engine and everything that reads results."""

from .io import (  # noqa: F401
    load_report,
    report_digest,
    write_curves_csv,
    write_html,
    write_report,
)
from .model import (  # noqa: F401
    SCHEMA_VERSION,
    Baseline,
    CheckpointGroup,
    CheckpointReport,
    CheckpointScores,
    ClassTriple,
    DatasetInfo,
    EngineReport,
    FilterCurve,
    GroupReport,
    IntervalTriple,
    ModelInfo,
    NetworkGroup,
    PackedCorrectness,
    Report,
    Round,
    RunInfo,
    ScoreTriple,
    Settings,
    SkippedGroupReport,
    ThresholdClasses,
    ThresholdIntervals,
    ThresholdValues,
)
