"""AWS services as batchdrop uses them, each behind a small class with its client injected:
Batch (submit once, find, describe, stop), the jobs bucket (specs, receipts), the events topic.

See docs/architecture.md."""
