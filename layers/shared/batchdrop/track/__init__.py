"""Following every job: Batch's events applied in any order (jobs, array children, runs),
failures in words, stuck advice, early retries, and reconciling with Batch when events are lost.

See docs/architecture.md."""
