"""The records table: what batchdrop remembers of runs and jobs (pydantic records), the table's
keys, and one store per caller: claims (submit), job states (track), queries (operators).

See docs/architecture.md."""
