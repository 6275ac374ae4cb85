"""Stage: curves → classes. Filtering scores, their intervals, the class rules, adaptive sampling's looks,
the evidence rule on fresh samples, and the per-budget threat surface."""
