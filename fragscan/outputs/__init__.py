"""Stage: report → files and verdicts. Retrain masks, comparisons, CI audits and selective retraining."""
