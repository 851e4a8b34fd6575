"""Submitting a dropped spec file: claim the run, read, validate, plan, submit every job once,
record the run and its jobs. What it records is told by `publish` (the outbox).

See docs/architecture.md."""
