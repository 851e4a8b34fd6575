"""The outbox's reader: every recorded change (the records table's stream) told once, as
receipts in S3 and events on the SNS topic.

See docs/architecture.md."""
