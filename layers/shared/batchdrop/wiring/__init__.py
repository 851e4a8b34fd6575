"""The composition root: each function's settings from its environment, the one place clients
are made and services built, and metrics with dimensions of their own.

See docs/architecture.md."""
