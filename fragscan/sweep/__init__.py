"""Stage: weights → curves. Parameter groups, synaptic filters, attacks and threat profiles, and the
engine that measures accuracy under every filtered variant (checked against ``naive``, the obvious loop)."""
