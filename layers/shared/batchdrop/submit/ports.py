"""What submitting needs of the world, as Protocols: the records table's claims, Batch, the jobs bucket
and the platform config. `wiring` gives it the AWS-backed ones; the unit tests give it in-memory fakes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from batchdrop.gateways.batch import SubmittedJob
from batchdrop.platform.definition_commands import DefinitionCommand
from batchdrop.store.items import Claim
from batchdrop.store.records import JobRecord, RunRecord, SpecSource


class ClaimStore(Protocol):
    def claim_run(self, run: RunRecord) -> Claim: ...
    def reclaim_run(self, previous: RunRecord, owner: str, at: datetime) -> RunRecord: ...
    def finish_run(self, run: RunRecord, jobs: Iterable[JobRecord] = ()) -> None: ...
    def write_new(self, runs: Iterable[RunRecord], jobs: Iterable[JobRecord]) -> None: ...


class JobSubmitter(Protocol):
    def submit(self, request: Mapping[str, Any], *, look_first: bool = False) -> SubmittedJob: ...
    def terminate(self, job_id: str, reason: str) -> None: ...
    def definition_command(self, definition: str) -> DefinitionCommand:
        """A job definition's own command, which a sweep without `command` wraps (raises when Batch is
        unavailable: the drop is retried)."""
        ...


class SpecReader(Protocol):
    def read_spec(self, source: SpecSource, size: int | None = None) -> bytes: ...
