"""Stage 0, what every stage uses: errors, limits, atomic files, registries, plugins, the runtime, and the
torch-free threat-profile grammar."""
