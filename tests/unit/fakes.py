"""In-memory stand-ins for what Submitter and Tracker depend on (their Protocols: `submit.ports`,
`track.ports`), with the semantics of the DynamoDB conditions they replace, so both services are
tested in milliseconds with no AWS at all. The integration tests run the real stores on the emulator."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from batchdrop.errors import Problem
from batchdrop.gateways.batch import BatchRefused, BatchUnavailable, SubmittedJob
from batchdrop.gateways.bucket import SpecUnreadable
from batchdrop.platform.config import PlatformConfig
from batchdrop.platform.definition_commands import DefinitionCommand
from batchdrop.store.items import Applied, Children, Claim, JobChange, RecordConflict, RecordsUnavailable
from batchdrop.store.records import TERMINAL, JobRecord, NodeEnd, RunRecord, SpecSource, SubmittedJobRef, Transition


@dataclass
class MemoryTable:
    """The records table: runs, jobs, histories and array children, with the conditions of the real stores."""

    runs: dict[str, RunRecord] = field(default_factory=dict)
    jobs: dict[str, JobRecord] = field(default_factory=dict)
    histories: dict[str, dict[str, Transition]] = field(default_factory=dict)
    children: dict[str, Children] = field(default_factory=dict)
    shown_children: dict[str, int] = field(default_factory=dict)
    refuse_runs: set[str] = field(default_factory=set)
    """Run ids whose records any write refuses (DynamoDB failing for them)."""
    watched_failed: set[str] = field(default_factory=set)
    """Failed jobs the watchdog's index keeps, because they failed waiting for a recovery."""
    child_hashes: dict[str, list[str]] = field(default_factory=dict)
    """An array job's children's content hashes, by job id (submit.resume)."""
    sweeps: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    """A sweep's axes and values, by job id: kept beside the job, never on its record (`store.items.SWEEP_SK`)."""
    node_end_writes: int = 0
    """Writes of node ends made (`keep_node_ends`): one a tracking batch's job, and none for ends kept."""

    # ------------------------------------------------------------------ claims (submit)

    def runs_of_source(self, bucket: str, key: str) -> list[RunRecord]:
        """The runs made from an S3 key, newest first."""
        runs = [run for run in self.runs.values() if (run.source.bucket, run.source.key) == (bucket, key)]
        return sorted(runs, key=lambda run: run.received_at, reverse=True)

    def claim_run(self, run: RunRecord) -> Claim:
        if run.run_id in self.runs:
            return Claim(run=self.runs[run.run_id], fresh=False)
        self.runs[run.run_id] = run
        return Claim(run=run, fresh=True)

    def reclaim_run(self, previous: RunRecord, owner: str, at: datetime) -> RunRecord:
        stored = self.runs[previous.run_id]
        if (stored.claim_owner, stored.claimed_at, stored.status) != (
            previous.claim_owner,
            previous.claimed_at,
            previous.status,
        ):
            raise RecordConflict(f"run {previous.run_id} was claimed by someone else meanwhile")
        self.runs[previous.run_id] = stored.model_copy(update={"claim_owner": owner, "claimed_at": at})
        return self.runs[previous.run_id]

    def finish_run(
        self, run: RunRecord, jobs: Iterable[JobRecord] = (), child_hashes: Mapping[str, Sequence[str]] | None = None
    ) -> None:
        stored = self.runs.get(run.run_id)
        if stored is None or stored.claim_owner != run.claim_owner or stored.status != "submitting":
            raise RecordConflict(f"run {run.run_id} is no longer ours to finish")
        self.write_new([run], [job for job in jobs if job.job_id not in self.jobs], child_hashes)

    def write_new(
        self,
        runs: Iterable[RunRecord],
        jobs: Iterable[JobRecord],
        child_hashes: Mapping[str, Sequence[str]] | None = None,
        *,
        keep_recorded: bool = False,
    ) -> None:
        runs, jobs = list(runs), list(jobs)
        if keep_recorded:
            jobs = [job for job in jobs if job.job_id not in self.jobs]
        if any(run.run_id in self.refuse_runs for run in runs) or any(j.run_id in self.refuse_runs for j in jobs):
            raise RecordsUnavailable("DynamoDB refused the batch")
        self.child_hashes.update((job_id, list(hashes)) for job_id, hashes in (child_hashes or {}).items())
        self.runs.update((run.run_id, run) for run in runs)
        for job in jobs:
            self.jobs[job.job_id] = self._kept_apart(job)
            self.histories.setdefault(job.job_id, {}).update(job.history)

    # ------------------------------------------------------------------ job states (track)

    def apply_job_state(self, change: JobChange) -> Applied:
        job = self.jobs.get(change.job_id)
        if job is None:
            return Applied(before=None, changed=False)
        if job.status in TERMINAL or (job.status_order is not None and job.status_order >= change.order):
            return Applied(before=job, changed=False)
        stored = job.model_dump(mode="json")
        stored.update(
            status=change.status,
            status_order=change.order,
            status_since=change.at,
            last_event_at=change.seen_at,
            attempts=change.attempts,
        )
        stored.update(change.fields)
        self.jobs[change.job_id] = JobRecord.model_validate(stored)
        if change.status in TERMINAL and change.fields.get("recovery") is not None:
            self.watched_failed.add(change.job_id)
        return Applied(before=job, changed=True)

    def add_transitions(self, transitions: Iterable[tuple[str, Transition]]) -> None:
        for job_id, transition in transitions:
            self.histories.setdefault(job_id, {})[transition.key] = transition

    def history_expiry(self, at: datetime) -> int:
        return int((at + timedelta(days=90)).timestamp())

    def mark_stuck_reported(self, job_id: str, reason: str, *, advice: str, runnable_seconds: float) -> bool:
        job = self.jobs[job_id]
        if job.stuck_reported == reason:
            return False
        update = {"stuck_reported": reason, "stuck_advice": advice, "stuck_seconds": runnable_seconds}
        self.jobs[job_id] = job.model_copy(update=update)
        return True

    def get_children(self, parent_id: str) -> Children:
        return self.children.get(parent_id, Children())

    def keep_node_ends(self, job_id: str, ends: Mapping[int, NodeEnd]) -> int:
        job = self.jobs.get(job_id)
        if job is None:
            return 0
        kept = {str(node): end.fitted() for node, end in ends.items() if end.replaces(job.node_ends.get(str(node)))}
        self.jobs[job_id] = job.model_copy(update={"node_ends": {**job.node_ends, **kept}})
        self.node_end_writes += 1
        return len(kept)

    def get_children_states(self, job_id: str) -> str:
        return self.get_children(job_id).states

    def get_child_hashes(self, job_id: str) -> list[str]:
        return self.child_hashes.get(job_id, [])

    def put_children(self, parent_id: str, children: Children, *, read_version: int) -> bool:
        if self.get_children(parent_id).version != read_version:
            return False
        self.children[parent_id] = children
        return True

    def children_version_on_parent(self, parent_id: str) -> int:
        return self.shown_children.get(parent_id, 0)

    def show_children_on_parent(self, parent_id: str, children: Children, seen_at: str) -> None:
        if self.shown_children.get(parent_id, 0) >= children.version:
            return
        self.shown_children[parent_id] = children.version
        self.jobs[parent_id] = self.jobs[parent_id].model_copy(
            update={
                "children": dict(children.counts),
                "child_vcpu_hours": children.usage.vcpu_hours,
                "child_gpu_hours": children.usage.gpu_hours,
                "child_memory_gib_hours": children.usage.memory_gib_hours,
            }
        )

    def set_run_status(self, run_id: str, team: str, status: str, *, expected: Iterable[str], **fields: Any) -> bool:
        run = self.runs.get(run_id)
        if run is None or run.status not in set(expected):
            return False
        self.runs[run_id] = RunRecord.model_validate({**run.model_dump(mode="json"), **fields, "status": status})
        return True

    def quiet_jobs(self, before: str, limit: int = 1000) -> list[JobRecord]:
        quiet = [
            job
            for job in self.jobs.values()
            if (job.status not in TERMINAL or job.job_id in self.watched_failed)
            and job.last_event_at.isoformat() < before
        ]
        return quiet[:limit]

    def unwatch(self, job_id: str) -> bool:
        job = self.jobs[job_id]
        if job.job_id not in self.watched_failed or (job.recovery_final is None and job.recovered_by is None):
            return False
        self.watched_failed.discard(job_id)
        return True

    def get_job(self, job_id: str) -> JobRecord | None:
        return self.jobs.get(job_id)

    def get_jobs(self, job_ids: Iterable[str]) -> dict[str, JobRecord]:
        return {job_id: self.jobs[job_id] for job_id in job_ids if job_id in self.jobs}

    def get_runs(self, run_ids: Iterable[str]) -> dict[str, RunRecord]:
        return {run_id: self.runs[run_id] for run_id in run_ids if run_id in self.runs}

    # ------------------------------------------------------------------ recoveries (submit, the stream)

    def get_run(self, run_id: str) -> RunRecord | None:
        return self.runs.get(run_id)

    def write_recovered(self, jobs: Iterable[JobRecord]) -> None:
        for job in jobs:
            if job.job_id not in self.jobs:  # only where none is yet
                self.jobs[job.job_id] = self._kept_apart(job)
            self.histories.setdefault(job.job_id, {}).update(job.history)
            self.sweeps.update({job.job_id: job.sweep} if job.sweep else {})

    def _kept_apart(self, job: JobRecord) -> JobRecord:
        """The job's record as the table keeps it: its sweep in an item of its own."""
        if job.sweep:
            self.sweeps[job.job_id] = job.sweep
        return job.model_copy(update={"sweep": None})

    def rewire_run(self, run_id: str, moves: Mapping[int, tuple[str, SubmittedJobRef]]) -> bool:
        run = self.runs.get(run_id)
        if run is None or run.status not in {"submitted", "running"} or run.cancel_requested_at is not None:
            return False
        jobs = list(run.jobs)
        for index, (old, ref) in moves.items():
            if jobs[index].job_id not in {old, ref.job_id}:
                return False
            jobs[index] = ref
        self.runs[run_id] = run.model_copy(update={"jobs": jobs})
        return True

    def mark_recovered(self, job_id: str, by: str) -> bool:
        job = self.jobs.get(job_id)
        if job is None or job.recovered_by not in {None, by}:
            return False
        self.jobs[job_id] = job.model_copy(update={"recovered_by": by})
        return True

    def mark_recovery_final(self, job_id: str, reason: str) -> bool:
        job = self.jobs.get(job_id)
        if job is None or job.recovered_by is not None:
            return False
        self.jobs[job_id] = job.model_copy(update={"recovery_final": reason, "recovery": None})
        return True


@dataclass
class FakeBatch:
    """Batch: each SubmitJob makes a job (or adopts one of the name when asked to look first)."""

    refuse: set[str] = field(default_factory=set)
    """Steps (by the job name's `-<step>-` part) Batch refuses for good."""
    submitted: list[dict[str, Any]] = field(default_factory=list)
    terminated: list[str] = field(default_factory=list)
    by_name: dict[str, str] = field(default_factory=dict)
    definitions: dict[str, DefinitionCommand] = field(default_factory=dict)
    """Job definitions' own commands, by reference; one not here is not in Batch."""
    described: list[str] = field(default_factory=list)
    """Every job definition read (DescribeJobDefinitions), in order."""
    definitions_unavailable: bool = False
    """DescribeJobDefinitions keeps failing (the gateway gave up retrying)."""
    _ids: Any = field(default_factory=lambda: (f"job-{n:04d}" for n in itertools.count()))

    def submit(self, request: Mapping[str, Any], *, look_first: bool = False) -> SubmittedJob:
        name = request["jobName"]
        if look_first and name in self.by_name:
            return SubmittedJob(job_id=self.by_name[name], job_name=name, adopted=True)
        if any(f"-{step}-" in name for step in self.refuse):
            raise BatchRefused(f"Batch refused job {name}: ClientException")
        self.submitted.append(dict(request))
        self.by_name[name] = next(self._ids)
        return SubmittedJob(job_id=self.by_name[name], job_name=name, adopted=False)

    def terminate(self, job_id: str, reason: str) -> None:
        self.terminated.append(job_id)

    def exists(self, name: str, queue: str) -> bool:
        return name in self.by_name

    def definition_command(self, definition: str) -> DefinitionCommand:
        self.described.append(definition)
        if self.definitions_unavailable:
            raise BatchUnavailable(f"cannot read job definition {definition}: throttled")
        return self.definitions.get(definition, DefinitionCommand(None, "is not in Batch"))


@dataclass
class FakeBucket:
    specs: dict[str, bytes] = field(default_factory=dict)

    def read_spec(self, source: SpecSource, size: int | None = None) -> bytes:
        if source.key not in self.specs:
            raise SpecUnreadable(Problem(path="", code="missing", message="the file was deleted"))
        return self.specs[source.key]


@dataclass
class FixedConfig:
    config: PlatformConfig

    def get(self) -> PlatformConfig:
        return self.config
