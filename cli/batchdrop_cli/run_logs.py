"""`logs`: which log streams of a run to show, attempt by attempt: a job's, an array's failed children's
(or one child's), a multi-node job's node's; and why there is nothing to show where there is not."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from batchdrop.gateways.batch import BatchGateway
from batchdrop.gateways.log_links import DEFAULT_LOG_GROUP
from batchdrop.store.child_states import CHILD_STATUS, failed_children
from batchdrop.store.job_states import JobStates
from batchdrop.store.queries import RecordQueries
from batchdrop.store.records import TERMINAL, JobRecord
from batchdrop.track.batch_events import JobDetail, log_streams
from batchdrop_cli.log_streams import LogStreams
from batchdrop_cli.operations import OperationFailed
from batchdrop_cli.run_views import RunReader, shown_status

NOT_STARTED = "it has not started yet"
MAX_FAILED_CHILDREN = 10
"""`logs` of an array step shows this many of its failed children by default; `--index N` shows any one."""


@dataclass(frozen=True)
class LogSection:
    """One attempt's CloudWatch log stream of a job, or why it cannot be shown."""

    step: str
    job_id: str
    attempt: int
    log_group: str | None
    log_stream: str | None
    url: str | None
    lines: list[tuple[datetime, str]]
    missing: str | None = None
    """Why there are no lines to show (the stream does not exist, the job has not started...)."""
    index: int | None = None
    """For an array child: its index (its job id is `<parent>:<index>`)."""
    status: str | None = None
    """The job's (or child's) status when its logs were read."""
    node: int | None = None
    """For a multi-node job's node: its index (its job id is `<job>#<node>`)."""

    @property
    def not_started(self) -> bool:
        """A job (or child) that has no log stream yet because it has not run yet."""
        return self.log_stream is None and self.missing == NOT_STARTED


class RunLogs:
    """A run's log sections: its jobs from the table, an array's children and their streams from Batch,
    the lines from CloudWatch Logs."""

    def __init__(self, *, runs: RunReader, table: RecordQueries, batch: BatchGateway, streams: LogStreams) -> None:
        self.runs = runs
        self.table = table
        self.batch = batch
        self.streams = streams

    def sections(
        self,
        run_id: str,
        *,
        step: str | None = None,
        attempt: int | None = None,
        index: int | None = None,
        node: int | None = None,
    ) -> list[LogSection]:
        """Every attempt's log lines of the run's jobs (or of one step, one attempt). An array or sweep
        step shows its failed children (or, with `index`, that one child): the parent has no logs."""
        view = self.runs.view(run_id)
        if not view.jobs:
            raise OperationFailed(f"run {run_id} has no jobs ({view.run.status}): `batchdrop status {run_id}` says why")
        jobs = [job for job in view.jobs if step is None or job.step == step]
        if step is not None and not jobs:
            steps = ", ".join(job.step for job in view.jobs) or "none"
            raise OperationFailed(f"run {run_id} has no step {step!r} (its steps: {steps})")
        if index is not None:
            jobs = [job for job in jobs if job.array_size]
            if not jobs:
                raise OperationFailed(f"--index is for a sweep or array step; {step or f'run {run_id}'} has none")
        if node is not None:
            return self._node_sections([job for job in jobs if job.nodes], run_id, step, attempt, node)
        sections: list[LogSection] = []
        for job in jobs:
            if job.array_size:
                sections += self._array_sections(job, attempt, index)
                continue
            links = [link for link in job.log_links if attempt is None or link.attempt == attempt]
            if not links:
                why = NOT_STARTED if job.attempts == 0 else "Batch gave no log stream for it"
                if job.attempts == 0 and job.status in TERMINAL:
                    why = f"it ended ({shown_status(job)}) before it started"
                if attempt is not None and job.log_links:
                    why = f"it has no attempt {attempt} (attempts: {job.attempts})"
                sections.append(
                    LogSection(job.step, job.job_id, attempt or 0, None, None, None, [], why, status=shown_status(job))
                )
                continue
            for link in links:
                lines, missing = self.streams.read(link.log_group, link.log_stream)
                sections.append(
                    LogSection(
                        job.step,
                        job.job_id,
                        link.attempt,
                        link.log_group,
                        link.log_stream,
                        link.url,
                        lines,
                        missing,
                        status=shown_status(job),
                    )
                )
        return sections

    def _node_sections(
        self, jobs: list[JobRecord], run_id: str, step: str | None, attempt: int | None, node: int
    ) -> list[LogSection]:
        """Node `node`'s log of each multi-node job (each attempt's, as its end was tracked)."""
        if not jobs:
            raise OperationFailed(f"--node is for a multi-node step; {step or f'run {run_id}'} has none")
        sections: list[LogSection] = []
        for job in jobs:
            if not 0 <= node < (job.nodes or 0):
                raise OperationFailed(
                    f"step {job.step} has nodes 0 to {(job.nodes or 0) - 1}: there is no --node {node}"
                )
            ends = [
                t.attempt_end
                for t in self.table.with_history(job).ordered_history()
                if t.attempt_end
                and t.attempt_end.node == node
                and (attempt is None or t.attempt_end.attempt == attempt)
            ]
            # The node's log group: its kept end's (None there, or no end kept: Batch's default). Every attempt
            # of the node runs the same definition, so its latest end's group is its earlier attempts' too.
            kept = job.node_ends.get(str(node))
            group = (kept.log_group if kept else None) or DEFAULT_LOG_GROUP
            for end in ends:
                status = "FAILED" if end.failure_class else "SUCCEEDED"
                if end.log_stream is None:
                    why = "Batch gave no log stream for it"
                    sections.append(
                        LogSection(
                            job.step, job.job_id, end.attempt, None, None, None, [], why, status=status, node=node
                        )
                    )
                    continue
                lines, missing = self.streams.read(group, end.log_stream)
                sections.append(
                    LogSection(
                        job.step,
                        job.job_id,
                        end.attempt,
                        group,
                        end.log_stream,
                        None,
                        lines,
                        missing,
                        status=status,
                        node=node,
                    )
                )
            if not ends:
                why = "its end has not been tracked yet (a node's log is known once it ends)"
                sections.append(
                    LogSection(
                        job.step,
                        job.job_id,
                        attempt or 0,
                        None,
                        None,
                        None,
                        [],
                        why,
                        status=shown_status(job),
                        node=node,
                    )
                )
        return sections

    def _array_sections(self, job: JobRecord, attempt: int | None, index: int | None) -> list[LogSection]:
        """One child's logs (`index`), or the failed children's; a note where there is nothing to show."""
        size = job.array_size or 0
        if index is not None:
            if not 0 <= index < size:
                raise OperationFailed(f"step {job.step} has children 0 to {size - 1}: there is no --index {index}")
            states = self._children_states(job.job_id)
            recorded = CHILD_STATUS.get(states[2 * index + 1 : 2 * index + 2])  # as tracked, if it has been heard of
            found = self.batch.describe({f"{job.job_id}:{index}"})
            if not found:
                why = "Batch does not know this child (yet, or any more: it forgets jobs after about a week)"
                return [LogSection(job.step, job.job_id, attempt or 0, None, None, None, [], why, index, recorded)]
            detail = JobDetail.model_validate(found[f"{job.job_id}:{index}"])
            return self._child_sections(job, index, detail, attempt, recorded)
        states = self._children_states(job.job_id)
        failed = sorted(failed_children(states))
        if not failed:
            why = f"a sweep or array of {size:,}: pass --index N (0 to {size - 1}) for one child's logs"
            return [LogSection(job.step, job.job_id, 0, None, None, None, [], why, status=shown_status(job))]
        shown = failed[:MAX_FAILED_CHILDREN]
        found = self.batch.describe({f"{job.job_id}:{child}" for child in shown})
        sections: list[LogSection] = []
        for child in shown:
            described = found.get(f"{job.job_id}:{child}")
            if described is None:
                why = "Batch does not know this child any more (it forgets jobs after about a week)"
                sections.append(LogSection(job.step, job.job_id, 0, None, None, None, [], why, child, "FAILED"))
                continue
            sections += self._child_sections(job, child, JobDetail.model_validate(described), attempt, "FAILED")
        if len(failed) > len(shown):
            why = f"{len(failed) - len(shown):,} more failed children are not shown: pass --index N for one of them"
            sections.append(LogSection(job.step, job.job_id, 0, None, None, None, [], why))
        return sections

    def _children_states(self, parent_id: str) -> str:
        """The tracked states of an array's children, two characters a child (`track.arrays.CHILD_CODES`)."""
        return JobStates(self.table.client, self.table.table_name).get_children(parent_id).states

    def _child_sections(
        self, job: JobRecord, index: int, detail: JobDetail, attempt: int | None, recorded: str | None = None
    ) -> list[LogSection]:
        """A child's log streams, from Batch's description of it (`recorded`: its status as tracked)."""
        status = recorded or detail.status
        streams = [stream for stream in log_streams(detail) if attempt is None or stream[0] == attempt]
        if not streams:
            why = NOT_STARTED if status not in TERMINAL else "Batch gave no log stream for it"
            if attempt is not None:
                why = f"it has no attempt {attempt} (attempts: {len(detail.attempts)})"
            return [LogSection(job.step, detail.jobId, attempt or 0, None, None, None, [], why, index, status)]
        sections = []
        for number, _, group, stream in streams:
            lines, missing = self.streams.read(group, stream)
            sections.append(
                LogSection(
                    job.step,
                    detail.jobId,
                    number,
                    group,
                    stream,
                    self.streams.url(group, stream),
                    lines,
                    missing,
                    index,
                    status,
                )
            )
        return sections
