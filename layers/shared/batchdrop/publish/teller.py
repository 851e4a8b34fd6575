"""Telling what was recorded: the records table's stream is batchdrop's outbox.

An event is part of the state change that causes it. The submit and track
functions only write records; every write that changes a run or a job reaches
the publish function on the table's DynamoDB stream, with the item as it was
and as it is, in the order written, until the function has handled it. From
that change alone this module decides what to tell:

- a run **decided** (`submitting` → `submitted` or `rejected`): its receipt
  (at `runs/<run id>/receipt.json`, and at its key's receipt path unless a
  newer upload of the key is there) and a `run.submitted` / `run.rejected`
  event;
- a run **ended** (`submitted`/`running` → `succeeded`, `failed` or `cancelled`): a `run.ended`
  event made of the step summaries tracking wrote with the run's end (`RunRecord.steps`);
- a job's **state change**: a `job.status` event for each status it passed
  through (`JobRecord.passed`) that the spec asked to hear of (failures
  always; an array only when it ends);
- a job **being recovered** (`recovery` written with its FAILED status): a `job.recovering` event,
  once per recovery, and its `job.status` failure says `recovering`; a recovery the submit function
  could not make (`recovery` replaced by `recovery_final`): the failure again, final, with why;
- a job **reported stuck** (`stuck_reported` changed): a `job.stuck` event
  with the advice written beside it;
- a team's month **crossing its budget** (`budget_warned` or `budget_exceeded` set on its
  `team_month` item, once each): a `team.budget` event (docs/budgets.md);
- a day the daily platform check found the config and the account **disagreeing** (its
  `platform_drift` item written, once a day): a `platform.drift` event (docs/platform-check.md).

So a transition that is recorded is always told, even when the function that
recorded it crashed the next instant, and a write that changes nothing tells
nothing. The stream may hand a change over twice (a retried batch): each
event's `event_id` is a function of the fact, and consumers drop duplicates
by it; the receipt written twice is the same receipt.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from batchdrop.events.contract import (
    MAX_EVENT_PROBLEMS,
    PLATFORM_TEAM,
    RUN_ENDED,
    AttemptTold,
    EventJob,
    JobRecovering,
    JobStatusChanged,
    JobStuck,
    PlatformDrift,
    RecoveryTold,
    RunEnded,
    RunRejected,
    RunSubmitted,
    TeamBudget,
    _Event,
    event_id,
    failure_told,
    fit,
)
from batchdrop.gateways.batch import console_url
from batchdrop.gateways.bucket import JobsBucket, locate, run_receipt_key, run_report_key, upload_order
from batchdrop.gateways.topic import EventPublisher
from batchdrop.platform.costs import cost_of, told_usd
from batchdrop.platform.recovery import RecoveryDue
from batchdrop.publish.nodes import nodes_told
from batchdrop.store.costs import BUDGET_MARKERS
from batchdrop.store.drift import DRIFT_KIND
from batchdrop.store.records import TERMINAL, AttemptEnd, JobRecord, Receipt, RunRecord, Transition, order_key

logger = logging.getLogger(__name__)

NOTIFY_ALWAYS = frozenset({"failed", "lost"})
DECIDED = frozenset({"submitted", "rejected"})
RECEIPT_WRITERS = 8
"""Receipts written at once: a batch of 100 changes holds up to 100 decided runs, each two S3 PUTs."""
ARRAY_SPEAKS_ON = frozenset({"succeeded", "failed", "lost"})


@dataclass(frozen=True)
class RecordChange:
    """One write to the records table, as the stream hands it over (plain attributes)."""

    change_id: str
    """The stream record's sequence number: what the function reports back when it failed."""
    old: dict[str, Any] | None
    new: dict[str, Any] | None


@dataclass
class Told:
    events: int = 0
    receipts: int = 0
    superseded_receipts: int = 0
    unreadable: int = 0
    failed: list[str] = field(default_factory=list)
    """Change ids whose telling failed: the stream hands them (and what follows) over again."""


class Teller:
    def __init__(self, *, publisher: EventPublisher, bucket: JobsBucket, region: str) -> None:
        self.publisher = publisher
        self.bucket = bucket
        self.region = region

    def tell(self, changes: Iterable[RecordChange]) -> Told:
        told = Told()
        decided: dict[str, RunRecord] = {}
        readable: list[RecordChange] = []
        for change in changes:
            try:
                run = _decided_run(change)
            except ValidationError:
                _skip_unreadable(change, told)
                continue
            if run is not None:
                decided[change.change_id] = run
            readable.append(change)
        receipts = self._write_receipts_of(decided, told)
        events: list[tuple[str, _Event]] = []
        for change in readable:
            try:
                receipt = receipts.get(change.change_id)
                if isinstance(receipt, Exception):
                    raise receipt
                events += [(change.change_id, fit(event)) for event in self._told_by(change, decided, receipt)]
            except ValidationError:
                _skip_unreadable(change, told)
            except Exception:  # S3 or a receipt race: this change is handed over again, its neighbours go on
                logger.exception("a change could not be told; retried", extra={"change_id": change.change_id})
                told.failed.append(change.change_id)
        unpublished = {id(event) for event in self.publisher.publish([event for _, event in events])}
        for change_id, event in events:
            if id(event) in unpublished:
                told.failed.append(change_id)
            else:
                told.events += 1
        return told

    def _told_by(self, change: RecordChange, decided: dict[str, RunRecord], receipt_uri: str | None) -> list[_Event]:
        new, old = change.new or {}, change.old or {}
        if change.change_id in decided:
            return self._run_told(decided[change.change_id], receipt_uri)
        if new.get("kind") == "run" and new.get("status") in RUN_ENDED and old.get("status") != new.get("status"):
            return [self._run_ended(RunRecord.model_validate(new), old.get("status"))]
        if new.get("kind") == "job":
            return self._job_told(old, new)
        if new.get("kind") == "team_month":
            return budget_told(old, new)
        if new.get("kind") == DRIFT_KIND and not old:
            return [drift_told(new)]
        return []

    # ------------------------------------------------------------------ runs

    def _write_receipts_of(self, decided: dict[str, RunRecord], told: Told) -> dict[str, str | Exception | None]:
        """Every decided run's receipts, written side by side (S3 calls wait on the network, not the
        CPU): for each change, the receipt URI its event names, or what went wrong."""
        if not decided:
            return {}
        written: dict[str, str | Exception | None] = {}
        with ThreadPoolExecutor(max_workers=min(RECEIPT_WRITERS, len(decided))) as pool:
            futures = {change_id: pool.submit(self._write_receipts, run) for change_id, run in decided.items()}
            for change_id, future in futures.items():
                try:
                    uri, newest = future.result()
                except Exception as exc:  # reported per change by `tell`
                    written[change_id] = exc
                    continue
                written[change_id] = uri
                if uri is not None:
                    told.receipts += newest
                    told.superseded_receipts += not newest
        return written

    def _run_told(self, run: RunRecord, receipt_uri: str | None) -> list[_Event]:
        common: dict[str, Any] = {
            "event_id": event_id(run.run_id, run.status),
            "time": run.submitted_at or run.received_at,
            "team": run.team,
            "environment": run.environment,
            "run_id": run.run_id,
            "spec_name": run.spec_name,
            "source_uri": run.source.uri,
            "dropped_by": run.dropped_by,
        }
        if run.status == "rejected":
            return [
                RunRejected(
                    **common,
                    reason=run.problems[0].render() if run.problems else None,
                    problems=run.problems[:MAX_EVENT_PROBLEMS],
                    problem_count=run.problem_count or len(run.problems),
                    receipt_uri=receipt_uri,
                )
            ]
        return [
            RunSubmitted(
                **common,
                jobs=[EventJob.model_validate(job.model_dump()) for job in run.jobs],
                receipt_uri=receipt_uri or "",
                notify_on=run.notify_on,
                warnings=run.warnings,
            )
        ]

    def _run_ended(self, run: RunRecord, previous: str | None) -> RunEnded:
        """The run's end, told from the step summaries written with it: the table is never read."""
        ended_at = run.finished_at or run.claimed_at
        started = run.submitted_at or run.received_at
        return RunEnded(
            event_id=event_id(run.run_id, run.status),
            time=ended_at,
            team=run.team,
            environment=run.environment,
            run_id=run.run_id,
            spec_name=run.spec_name,
            source_uri=run.source.uri,
            status=run.status,  # type: ignore[arg-type]  # one of RUN_ENDED
            previous_status=previous,
            reason=run.reason,
            steps=run.steps,
            step_count=max(len(run.jobs), len(run.steps)),
            duration_seconds=max(0.0, (ended_at - started).total_seconds()) if run.finished_at else None,
            usage=run.usage,
            cost_usd=run.cost_usd,
            dropped_by=run.dropped_by,
            receipt_uri=f"s3://{run.source.bucket}/{run.receipt_key}" if run.receipt_key else None,
            report_uri=f"s3://{run.source.bucket}/{run_report_key(run.run_id)}",
            notify_on=run.notify_on,
        )

    def _write_receipts(self, run: RunRecord) -> tuple[str | None, bool]:
        """The run's own receipt, and the one at its key's receipt path if no newer upload holds it: the
        URI its event names, and whether the key's receipt path is this run's."""
        if not run.receipt_key:  # a superseded upload: the newer one's receipt is the key's
            return None, False
        receipt = Receipt.for_run(run, run.problems).model_dump(mode="json", by_alias=True)
        self.bucket.write_receipt(run.source.bucket, run_receipt_key(run.run_id), receipt)
        if self.bucket.write_newest_receipt(run.source.bucket, run.receipt_key, receipt, upload_order(run.source)):
            return f"s3://{run.source.bucket}/{run.receipt_key}", True
        return f"s3://{run.source.bucket}/{run_receipt_key(run.run_id)}", False

    # ------------------------------------------------------------------ jobs

    def _job_told(self, old: dict[str, Any], new: dict[str, Any]) -> list[_Event]:
        events: list[_Event] = []
        if old and new.get("status_order") != old.get("status_order") and new.get("passed"):
            events += self._status_events(
                JobRecord.model_validate(new), str(old.get("status", "SUBMITTED")), old.get("status_order")
            )
        if old.get("recovery") and not new.get("recovery") and new.get("recovery_final"):
            events.append(self._recovery_abandoned(JobRecord.model_validate(new), int(old["recovery"]["number"])))
        if new.get("recovery") and not old.get("recovery"):
            failed = JobRecord.model_validate(new)
            if failed.recovery is not None:
                events.append(self._recovering_event(failed, failed.recovery))
        if new.get("stuck_reported") and new.get("stuck_reported") != old.get("stuck_reported"):
            events.append(self._stuck_event(JobRecord.model_validate(new)))
        return events

    def _status_events(self, record: JobRecord, previous: str, previous_order: str | None) -> list[_Event]:
        """One `job.status` per status the change moved the job through: those newer than where it was
        (the write carried every event of its batch; the older ones were told before)."""
        events: list[_Event] = []
        fresh = [
            transition
            for transition in record.passed
            if previous_order is None
            or order_key(transition.attempt, transition.status, transition.at) > previous_order
        ]
        for transition in fresh:
            status = transition.status.lower()
            was, previous = previous, transition.status
            if record.array_size and status not in ARRAY_SPEAKS_ON:
                continue  # an array job speaks once, when it ends
            if status not in NOTIFY_ALWAYS and status not in record.notify_on:
                continue
            events.append(self._status_event(record, transition, was))
        return events

    def _status_event(self, record: JobRecord, transition: Transition, was: str) -> JobStatusChanged:
        status = transition.status.lower()
        final = transition.status == record.status  # the fields of the record are this status's
        failed = final and status in NOTIFY_ALWAYS
        ended = final and transition.status in TERMINAL
        cost = cost_of(record) if ended else None
        return JobStatusChanged(
            **self._job_fields(record),
            time=transition.at,
            event_id=event_id(record.job_id, transition.attempt, status),
            status=status,  # type: ignore[arg-type]  # one of Batch's, lower-cased
            previous_status=was.lower(),
            reason=transition.reason,
            attempts=transition.attempt if transition.status in TERMINAL else transition.attempt + 1,
            attempt_history=[told_attempt(end) for end in record.attempt_ends if end.attempt <= transition.attempt]
            or None,
            exit_code=record.exit_code if ended else None,
            failure_class=record.failure_class if failed else None,  # type: ignore[arg-type]  # classify's
            failure=failure_told(record.failure, record.recovery_final) if failed else None,
            recovering=True if failed and record.recovery is not None else None,
            log_links=record.log_links,
            duration_seconds=record.duration_seconds if ended else None,
            usage=record.told_usage if ended else None,
            cost_usd=told_usd(cost) if cost is not None else None,
            children=record.told_children,
            nodes=nodes_told(record, self.region) if final and record.nodes else None,
        )

    def _recovery_abandoned(self, record: JobRecord, number: int) -> JobStatusChanged:
        """A recovery the submit function could not make (its spec no longer plans, Batch refused the new
        job): the job's failure is final after all, told once more with why (`job.recovering` had said
        it would be replaced)."""
        at = record.finished_at or record.last_event_at
        ended = Transition(status=record.status, at=at, reason=record.status_reason, attempt=record.attempts)
        told = self._status_event(record, ended, record.status)
        return told.model_copy(update={"event_id": event_id(record.job_id, "recovery", number, "final")})

    def _recovering_event(self, record: JobRecord, due: RecoveryDue) -> JobRecovering:
        """The recovery tracking decided with the job's failure: told once (its id is the failed job's and
        the recovery's number, however often the stream hands the change over)."""
        policy = record.recovery_policy
        return JobRecovering(
            **self._job_fields(record),
            time=record.finished_at or record.status_since or record.last_event_at,
            event_id=event_id(record.job_id, "recovery", due.number),
            previous_status=record.status.lower(),
            reason=record.status_reason,
            attempts=record.attempts,
            exit_code=record.exit_code,
            failure_class=record.failure_class,  # type: ignore[arg-type]  # classify's
            failure=record.failure,
            attempt_history=[told_attempt(end) for end in record.attempt_ends] or None,
            log_links=record.log_links,
            memory_mib=record.resources.memory_mib,
            recovery=RecoveryTold.model_validate({**due.model_dump(), "job_id": record.job_id}),
            number_of=policy.out_of_memory_times if policy and due.kind == "out_of_memory" else 1,
        )

    def _stuck_event(self, record: JobRecord) -> JobStuck:
        reason = record.stuck_reported
        return JobStuck(
            **self._job_fields(record),
            time=(record.status_since or record.submitted_at) + timedelta(seconds=record.stuck_seconds or 0.0),
            event_id=event_id(record.job_id, "stuck", reason),
            reason=reason,
            attempts=record.attempts + 1,  # waiting to run: the attempt after those that ended
            runnable_seconds=record.stuck_seconds or 0.0,
            advice=record.stuck_advice or "",
        )

    def _job_fields(self, record: JobRecord) -> dict[str, Any]:
        location = locate(record.source.key)
        return {
            "team": record.team,
            "environment": record.environment,
            "run_id": record.run_id,
            "spec_name": record.spec_name,
            "source_uri": record.source.uri,
            "job_id": record.job_id,
            "job_name": record.job_name,
            "step": record.step,
            "queue": record.queue,
            "hardware": record.hardware,
            "console_url": console_url(self.region, record.job_id),
            "array_size": record.array_size,
            "receipt_uri": f"s3://{record.source.bucket}/{location.receipt_key}" if location else None,
            "notify_on": record.notify_on,
            "step_count": record.step_count,
        }


def budget_told(old: dict[str, Any], new: dict[str, Any]) -> list[_Event]:
    """A team-month's budget markers just set: one `team.budget` each (its id: the team, month, crossing)."""
    events: list[_Event] = []
    for crossing, marker in BUDGET_MARKERS.items():
        crossed = new.get(marker)
        if not crossed or old.get(marker):
            continue
        team, month = str(new["team"]), str(new["month"])
        events.append(
            TeamBudget(
                event_id=event_id(team, month, "budget", crossing),
                time=crossed["at"],
                team=team,
                run_id=str(crossed.get("run_id") or ""),
                spec_name=crossed.get("spec_name") or None,
                source_uri=str(crossed.get("source_uri") or ""),
                status="warning" if crossing == "warning" else "exceeded",
                month=month,
                spent_usd=told_usd(float(new.get(f"{marker}_usd", new.get("usd", 0.0)))),
                monthly_usd=float(crossed["monthly_usd"]),
                threshold_usd=told_usd(float(crossed["threshold_usd"])),
                warn_at=float(crossed["warn_at"]),
            )
        )
        logger.info("a team's month crossed its budget", extra={"team": team, "month": month, "crossing": crossing})
    return events


def drift_told(new: dict[str, Any]) -> PlatformDrift:
    """A day's platform drift, as recorded by the daily check (`store/drift`): its id is the day."""
    day = str(new["day"])
    return PlatformDrift(
        event_id=event_id("platform", day, "drift"),
        time=new["checked_at"],
        team=PLATFORM_TEAM,
        run_id="",
        source_uri=str(new["config"]),
        status="error" if int(new["errors"]) else "warning",
        day=day,
        error_count=int(new["errors"]),
        warning_count=int(new["warnings"]),
        findings=new["findings"],
        finding_count=int(new["finding_count"]),
    )


def _decided_run(change: RecordChange) -> RunRecord | None:
    """The run this change decided (`submitting` → `submitted` or `rejected`), or None."""
    new, old = change.new or {}, change.old or {}
    if new.get("kind") != "run" or new.get("status") not in DECIDED or old.get("status") == new.get("status"):
        return None
    return RunRecord.model_validate(new)


def told_attempt(end: AttemptEnd) -> AttemptTold:
    """An ended attempt as events tell it."""
    seconds = (end.stopped_at - end.started_at).total_seconds() if end.started_at and end.stopped_at else None
    return AttemptTold(
        attempt=end.attempt,
        node=end.node,
        failure_class=end.failure_class,  # type: ignore[arg-type]  # classify's
        failure=end.failure,
        exit_code=end.exit_code,
        reason=end.reason or end.status_reason,
        duration_seconds=seconds if seconds is not None and seconds >= 0 else None,
    )


def _skip_unreadable(change: RecordChange, told: Told) -> None:
    """A change that is not a record this version can read: retrying cannot help, so it is counted and
    skipped (the stream would otherwise hold its shard on it)."""
    logger.exception("a change no event can be made of; skipped", extra={"change_id": change.change_id})
    told.unreadable += 1
