"""The in-memory records table with the runs of an S3 key, as resuming reads them (`RunClaims.runs_of_source`).
Belongs in `tests.unit.fakes.MemoryTable`; kept apart while that file is being edited by another change."""

from __future__ import annotations

from dataclasses import dataclass

from batchdrop.store.records import RunRecord
from tests.unit.fakes import MemoryTable


@dataclass
class ResumableTable(MemoryTable):
    def runs_of_source(self, bucket: str, key: str) -> list[RunRecord]:
        """The runs made from an S3 key, newest first."""
        runs = [run for run in self.runs.values() if (run.source.bucket, run.source.key) == (bucket, key)]
        return sorted(runs, key=lambda run: run.received_at, reverse=True)
