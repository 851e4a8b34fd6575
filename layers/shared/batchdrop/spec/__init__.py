"""The job spec a user drops: its model and rules, safe reading of YAML/JSON with positions,
problems in plain words, and sweeps. Knows nothing of AWS or of the platform.

See docs/architecture.md."""
