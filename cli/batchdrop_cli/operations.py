"""What the operator commands do against a deployed stack: drop a spec and follow its run, show and
list runs, cancel a run, read its logs. The command line (`batchdrop_cli.main`) parses and prints; this
module knows the stack's bucket, table, Batch and CloudWatch Logs, through clients it is given.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict

from batchdrop.errors import BatchdropError
from batchdrop.gateways.batch import BatchGateway
from batchdrop.gateways.bucket import INCOMING, DropLocation
from batchdrop.gateways.log_links import DEFAULT_LOG_GROUP, log_url
from batchdrop.platform.costs import cost_of, run_cost, told_usd
from batchdrop.platform.identity import run_id_for_object
from batchdrop.store.chains import chain_line, replaced_jobs
from batchdrop.store.child_states import CHILD_STATUS, failed_children
from batchdrop.store.job_states import JobStates
from batchdrop.store.queries import RecordQueries
from batchdrop.store.records import TERMINAL, JobRecord, Receipt, RunRecord, SpecSource, Transition, utc_now
from batchdrop.track.batch_events import JobDetail, log_streams
from batchdrop.track.queue_place import QueueStanding

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_s3 import S3Client

ENDED_RUN_STATES = frozenset({"succeeded", "failed", "cancelled", "rejected"})
STARTED_JOB_STATES = frozenset({"STARTING", "RUNNING"})
"""A job in these is terminated (killed); before them, stopping one cancels it."""
MAX_LOG_LINES = 10_000
"""Per stream: `logs` is for reading what happened; the console pages through the rest."""
NOT_STARTED = "it has not started yet"
MAX_FAILED_CHILDREN = 10
"""`logs` of an array step shows this many of its failed children by default; `--index N` shows any one."""


def shown_status(job: JobRecord) -> str:
    """The status people see: Batch says FAILED for a job it cancelled; batchdrop says CANCELLED."""
    return "CANCELLED" if job.status == "FAILED" and job.failure_class == "cancelled" else job.status


class OperationFailed(BatchdropError):
    """An operator command that cannot be done as asked (the command line exits 2 with the message)."""


class ReceiptTimedOut(OperationFailed):
    """No receipt for an upload in the time given: the stack has not decided it (yet)."""

    def __init__(self, upload: Upload, waited: float) -> None:
        super().__init__(f"no receipt for {upload.source.uri} after {waited:.0f} s")
        self.upload = upload
        self.waited = waited


class RunAlreadyEnded(OperationFailed):
    """`cancel` of a run that has ended: nothing to do, and not a mistake (the command line exits 0)."""

    def __init__(self, run_id: str, status: str) -> None:
        super().__init__(f"run {run_id} already ended: {status}")
        self.run_id = run_id
        self.status = status


@dataclass(frozen=True)
class StackResources:
    """What the commands need from a deployed stack, read from its CloudFormation outputs."""

    bucket: str
    table: str
    config_location: str | None = None
    intake_queue_url: str | None = None
    intake_dead_letters_url: str | None = None
    stage: str | None = None
    """The stack's `Stage` parameter: its functions are `batchdrop-<stage>-<function>` (template.yaml)."""

    @classmethod
    def from_stack(cls, cloudformation: CloudFormationClient, stack_name: str) -> StackResources:
        try:
            stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
        except ClientError as exc:
            raise OperationFailed(
                f"no stack {stack_name!r} here: deploy it (docs/deploy.md), pass --stack NAME or set BATCHDROP_STACK"
            ) from exc
        outputs = {output["OutputKey"]: output.get("OutputValue", "") for output in stacks[0].get("Outputs", [])}
        parameters = {
            parameter["ParameterKey"]: parameter.get("ParameterValue", "")
            for parameter in stacks[0].get("Parameters", [])
        }
        missing = [name for name in ("JobsBucketName", "RecordsTableName") if not outputs.get(name)]
        if missing:
            raise OperationFailed(f"stack {stack_name!r} has no output {', '.join(missing)}: is it a batchdrop stack?")
        return cls(
            bucket=outputs["JobsBucketName"],
            table=outputs["RecordsTableName"],
            config_location=outputs.get("PlatformConfigLocation"),
            intake_queue_url=outputs.get("IntakeQueueUrl") or None,
            intake_dead_letters_url=outputs.get("IntakeDeadLetterQueueUrl") or None,
            stage=parameters.get("Stage") or None,
        )


class RunView(BaseModel):
    """A run and its jobs (in the order of the spec's steps), as the table has them now."""

    model_config = ConfigDict(frozen=True)

    run: RunRecord
    jobs: list[JobRecord]
    replaced: dict[str, JobRecord] = {}
    """The jobs the run's jobs replaced (recoveries), and those they replaced, by id."""
    standing: dict[str, str] = {}
    """Where each RUNNABLE job stands in its queue, in words (`track.queue_place`), by id: `status` asks Batch."""

    @property
    def ended(self) -> bool:
        return self.run.status in ENDED_RUN_STATES

    def story(self, job: JobRecord) -> str | None:
        """The job's step's whole recovery chain on one line (`store.chains.chain_line`); None if it had none."""
        return chain_line(job, self.replaced)

    def as_json(self) -> dict[str, Any]:
        """What `status --json` prints: the run record and each job record with its history, with the run's
        cost and each job's as the text `status` prints them (estimates in US dollars, so far while running;
        None where no queue has prices, and for a step reused from another run, which paid for it)."""
        cost = run_cost(self.run.run_id, [*self.jobs, *self.replaced.values()])  # recoveries ran too
        return {
            "run": run_json(self.run),
            "cost_usd": told_usd(cost.usd) if cost.known else None,
            "unpriced_jobs": cost.unpriced_jobs,
            "jobs": [
                {
                    **job.model_dump(mode="json", exclude={"history", "status_order"}),
                    "cost_usd": _job_cost(self.run.run_id, job),
                    "shown_status": shown_status(job),
                    "recovery_chain": self.story(job),
                    "standing": self.standing.get(job.job_id),
                    "history": [transition.model_dump(mode="json") for transition in job.ordered_history()],
                }
                for job in self.jobs
            ],
        }


def _job_cost(run_id: str, job: JobRecord) -> float | None:
    """A job's cost as `status` tells it (None: no prices, or another run's job, reused)."""
    usd = cost_of(job) if job.run_id == run_id else None
    return None if usd is None else told_usd(usd)


@dataclass(frozen=True)
class Upload:
    """A spec file put under `incoming/<team>/`, and the run it becomes."""

    source: SpecSource
    location: DropLocation
    run_id: str


@dataclass(frozen=True)
class Progress:
    """One look at a followed run: where it is, and what happened since the last look."""

    view: RunView
    transitions: list[tuple[JobRecord, Transition]] = field(default_factory=list)
    """New history entries, oldest first, with the job they belong to."""
    children_changed: list[JobRecord] = field(default_factory=list)
    """Array jobs whose children's counts moved."""
    events: list[tuple[datetime, JobRecord, Transition | None]] = field(default_factory=list)
    """Both of the above in the order they happened, with when: a transition, or (None) an array
    job's children's counts as they stood at that time. Held back until `SETTLE` old (all of them at
    the run's end), so one written a moment late still comes in its place."""


SETTLE = timedelta(seconds=3)
"""How long `watch` holds a followed run's news back: a job's history and its children's counts are
written by different writes (and batches of events) that may land a few seconds apart."""


@dataclass(frozen=True)
class StopRequest:
    """What `cancel` did to one job of the run."""

    step: str
    job_id: str
    status: str
    action: Literal["cancelled", "terminated", "already ended", "failed"]
    detail: str | None = None


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


class Operations:
    def __init__(
        self,
        *,
        table: RecordQueries,
        s3: S3Client,
        batch: BatchGateway,
        logs: CloudWatchLogsClient,
        bucket: str,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.table = table
        self.s3 = s3
        self.batch = batch
        self.logs = logs
        self.bucket = bucket
        self.clock = clock
        self.sleep = sleep

    # ------------------------------------------------------------------ submit

    def upload(self, body: bytes, team: str, relative_path: str) -> Upload:
        """Put the file's bytes at `incoming/<team>/<relative path>`, as `aws s3 cp` would."""
        location = DropLocation(team=team, relative_path=relative_path)
        key = f"{INCOMING}{team}/{location.relative_path}"
        response = self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        source = SpecSource(
            bucket=self.bucket, key=key, version_id=response.get("VersionId"), etag=response["ETag"].strip('"')
        )
        run_id = run_id_for_object(self.bucket, key, version_id=source.version_id, etag=source.etag)
        return Upload(source=source, location=location, run_id=run_id)

    def wait_for_receipt(self, upload: Upload, *, timeout: float, poll: float = 0.5) -> Receipt:
        """The receipt the submit function writes for this upload (not an earlier upload's at the same key)."""
        deadline = time.monotonic() + timeout
        while True:
            receipt = self._receipt(upload)
            if receipt is not None:
                return receipt
            if time.monotonic() >= deadline:
                raise ReceiptTimedOut(upload, timeout)
            self.sleep(poll)

    def _receipt(self, upload: Upload) -> Receipt | None:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=upload.location.receipt_key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                return None
            raise
        receipt = Receipt.model_validate(json.loads(body))
        if upload.source.version_id:  # a versioned bucket: the run id says which upload it is
            return receipt if receipt.run_id == upload.run_id else None
        return receipt if receipt.source.etag == upload.source.etag else None

    # ------------------------------------------------------------------ status and list

    def view(self, run_id: str, *, with_history: bool = False, with_standing: bool = False) -> RunView:
        """A run and its jobs; `with_standing`: Batch is asked where each RUNNABLE job stands (what the stuck
        advice says), leaving out what it does not answer."""
        run = self.table.get_run(run_id)
        if run is None:
            raise OperationFailed(f"no run {run_id!r} in table {self.table.table_name}")
        found = self.table.get_jobs(ref.job_id for ref in run.jobs)
        jobs = [found[ref.job_id] for ref in run.jobs if ref.job_id in found]
        if with_history:
            jobs = [self.table.with_history(job) for job in jobs]
        replaced = replaced_jobs(self.table.get_jobs, jobs) if any(job.recovers for job in jobs) else {}
        standing: dict[str, str] = {}
        if with_standing:
            asker = QueueStanding(self.batch)
            for job in jobs:
                if job.status == "RUNNABLE" and (
                    words := asker.words(queue_arn=job.queue_arn, queue=job.queue, job_id=job.job_id)
                ):
                    standing[job.job_id] = words
        return RunView(run=run, jobs=jobs, replaced=replaced, standing=standing)

    def runs(
        self, teams: Iterable[str], *, status: str | None = None, since: datetime | None = None, limit: int = 20
    ) -> tuple[list[RunRecord], bool]:
        """The newest `limit` runs of these teams (merged newest first), and whether there are more."""
        found: list[RunRecord] = []
        for team in teams:
            team_runs: list[RunRecord] = []
            start: dict[str, Any] | None = None
            while len(team_runs) <= limit:
                page, start = self.table.list_runs(
                    team, status=status, since=since, limit=limit + 1 - len(team_runs), start=start
                )
                team_runs += page
                if start is None:
                    break
            found += team_runs
        found.sort(key=lambda run: (run.received_at, run.run_id), reverse=True)
        more = len(found) > limit
        return found[:limit], more

    # ------------------------------------------------------------------ follow

    def watch(self, run_id: str, *, poll: float = 2.0) -> Iterator[Progress]:
        """A run's progress every `poll` seconds, with every transition its jobs made, until it has ended."""
        seen: set[tuple[str, str]] = set()
        ended: set[str] = set()
        settled: set[str] = set()
        children: dict[str, dict[str, int]] = {}
        held: list[tuple[datetime, JobRecord, Transition | None]] = []
        last_look = False
        while True:
            view = self.view(run_id)
            timed: list[tuple[datetime, JobRecord, Transition | None]] = []
            changed: list[JobRecord] = []
            for job in view.jobs:
                if job.job_id in settled:
                    continue
                latest: datetime | None = None
                for transition in self.table.get_history(job.job_id):  # in the order it happened
                    # Clocks differ (SUBMITTED is the submit function's, the rest Batch's): never let a
                    # job's transition sort before the one it followed.
                    latest = transition.at if latest is None else max(latest, transition.at)
                    if (job.job_id, transition.key) not in seen:
                        seen.add((job.job_id, transition.key))
                        timed.append((latest, job, transition))
                if job.children and job.children != children.get(job.job_id):
                    children[job.job_id] = dict(job.children)
                    changed.append(job)
                    # The counts as of the job's last news, never before the transitions it made.
                    moment = job.last_event_at if latest is None else max(latest, job.last_event_at)
                    timed.append((moment, job, None))
                if job.status in TERMINAL:
                    # Looked at once more after it ended: its last transitions and its children's final
                    # counts are written beside its status, and may land a moment after it.
                    (settled if job.job_id in ended else ended).add(job.job_id)
            timed.sort(key=lambda entry: entry[0])  # stable: a job's own order holds among equal times
            transitions = [(job, transition) for _, job, transition in timed if transition is not None]
            held = sorted(held + timed, key=lambda entry: entry[0])
            horizon = self.clock() - SETTLE
            due = held if last_look else [entry for entry in held if entry[0] <= horizon]
            held = held[len(due) :]
            if view.ended and not last_look:  # one more look for what the run's last moments wrote
                last_look = True
                self.sleep(min(poll, 1.0))
                if timed or due:
                    yield Progress(view=view, transitions=transitions, children_changed=changed, events=due)
                continue
            yield Progress(view=view, transitions=transitions, children_changed=changed, events=due)
            if view.ended:
                return
            self.sleep(poll)

    # ------------------------------------------------------------------ cancel

    def cancel(self, run_id: str, *, who: str, reason: str | None = None) -> list[StopRequest]:
        """Cancel the run's queued jobs and terminate its running ones (array parents stop their children)."""
        view = self.view(run_id)
        status = view.run.status
        if status == "submitting":
            raise OperationFailed(f"run {run_id} is still being submitted: cancel it again in a few seconds")
        if view.ended:
            raise RunAlreadyEnded(run_id, status)
        words = f"cancelled by {who} with batchdrop" + (f": {reason}" if reason else "")
        unfinished = [job for job in view.jobs if job.status not in TERMINAL]
        # Recorded first: the events Batch sends for the stopped jobs then find who stopped them.
        self.table.record_cancel_request(
            run_id, (job.job_id for job in unfinished), who=who, reason=reason, at=self.clock()
        )
        requests: list[StopRequest] = []
        for job in view.jobs:
            if job.status in TERMINAL:
                requests.append(StopRequest(job.step, job.job_id, job.status, "already ended"))
                continue
            started = job.status in STARTED_JOB_STATES
            try:
                # TerminateJob whatever the recorded state: it cancels a job that has not started and
                # kills one that has. CancelJob would silently ignore a job that started since its
                # record was written (records trail Batch by an event's journey).
                self.batch.terminate(job.job_id, words)
            except (ClientError, BotoCoreError) as exc:
                requests.append(StopRequest(job.step, job.job_id, job.status, "failed", str(exc)))
                continue
            requests.append(StopRequest(job.step, job.job_id, job.status, "terminated" if started else "cancelled"))
        return requests

    # ------------------------------------------------------------------ logs

    def log_sections(
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
        view = self.view(run_id)
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
                lines, missing = self._read_stream(link.log_group, link.log_stream)
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
                lines, missing = self._read_stream(DEFAULT_LOG_GROUP, end.log_stream)
                sections.append(
                    LogSection(
                        job.step,
                        job.job_id,
                        end.attempt,
                        DEFAULT_LOG_GROUP,
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
            lines, missing = self._read_stream(group, stream)
            url = log_url(self.logs.meta.region_name, group, stream)
            sections.append(
                LogSection(job.step, detail.jobId, number, group, stream, url, lines, missing, index, status)
            )
        return sections

    def follow_stream(
        self, group: str, stream: str, *, still_running: Callable[[], bool], poll: float = 2.0
    ) -> Iterator[tuple[datetime, str]]:
        """A log stream's lines as they are written, until the job has ended (and its last lines are read)."""
        arguments: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
        while True:
            running = still_running()  # asked before reading, so that nothing written before the end is missed
            events: list[Any] = []
            try:
                page = self.logs.get_log_events(**arguments)
                events = list(page.get("events", []))
                if page.get("nextForwardToken"):
                    arguments["nextToken"] = page["nextForwardToken"]
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                    raise  # not found: not created yet
            for event in events:
                yield datetime.fromtimestamp(event["timestamp"] / 1000, tz=UTC), event["message"]
            if events:
                continue  # more may be waiting
            if not running:
                return
            self.sleep(poll)

    def _read_stream(self, group: str, stream: str) -> tuple[list[tuple[datetime, str]], str | None]:
        lines: list[tuple[datetime, str]] = []
        arguments: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
        try:
            while len(lines) < MAX_LOG_LINES:
                page = self.logs.get_log_events(**arguments)
                lines += [
                    (datetime.fromtimestamp(event["timestamp"] / 1000, tz=UTC), event["message"])
                    for event in page.get("events", [])
                ]
                token = page.get("nextForwardToken")
                if not page.get("events") or token == arguments.get("nextToken"):
                    break
                arguments["nextToken"] = token
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return [], "the log stream does not exist (yet, or any more): see the console link"
            if exc.response.get("Error", {}).get("Code") == "AccessDeniedException":
                return [], "you may not read this log group here: see the console link"
            raise
        return lines, None


def run_json(run: RunRecord) -> dict[str, Any]:
    """A run record as the commands print it (without the submit function's bookkeeping)."""
    return run.model_dump(mode="json", exclude={"claim_owner", "claimed_at"})


def parse_since(text: str, now: datetime) -> datetime:
    """`30m`, `12h`, `7d` (ago) or an ISO 8601 date or time (UTC unless it says otherwise)."""
    units = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    if text[-1:] in units and text[:-1].isdigit():
        return now - timedelta(**{units[text[-1]]: int(text[:-1])})
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise OperationFailed(f"--since {text!r}: say 30m, 12h, 7d, or a date such as 2026-11-20") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=now.tzinfo)
