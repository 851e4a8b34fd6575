"""Slack: which events a team hears of, the Block Kit messages, webhooks from Secrets Manager,
and the log that posts each event once.

See docs/architecture.md."""
