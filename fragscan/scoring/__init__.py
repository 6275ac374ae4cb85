"""Stage: curves → classes. Filtering scores, their intervals, the class rules, adaptive sampling's looks,
family-wise claims (``evidence``), and the per-budget threat surface."""
