"""A run's report: one self-contained HTML page of what the records hold (docs/report.md)."""
