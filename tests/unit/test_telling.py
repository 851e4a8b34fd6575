"""What a recorded change tells (the outbox's reader), against in-memory fakes: no AWS at all."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from batchdrop.events.contract import JobRecovering, RunEnded, RunStep, Usage, _Event
from batchdrop.platform.recovery import RecoveryCounts, RecoveryDue, RecoveryPolicy
from batchdrop.publish.teller import RecordChange, Teller
from batchdrop.spec.model import Resources
from batchdrop.store.items import deserialize, job_item, run_item
from batchdrop.store.records import (
    AttemptEnd,
    JobRecord,
    RunRecord,
    SpecSource,
    SubmittedJobRef,
    Transition,
    order_key,
)

T0 = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
SOURCE = SpecSource(bucket="jobs", key="incoming/vision/train.yaml", version_id="v1", sequencer="0A")


@dataclass
class FakePublisher:
    down: bool = False
    published: list[_Event] = field(default_factory=list)

    def publish(self, events: list[_Event]) -> list[_Event]:
        if self.down:
            return list(events)
        self.published += events
        return []


@dataclass
class FakeBucket:
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)

    def write_receipt(self, bucket: str, key: str, receipt: dict[str, Any]) -> None:
        self.objects[key] = receipt

    def write_newest_receipt(self, bucket: str, key: str, receipt: dict[str, Any], order: str) -> bool:
        stored = self.objects.get(key)
        if stored and stored["run_id"] != receipt["run_id"] and stored["source"]["sequencer"].rjust(32, "0") > order:
            return False
        self.objects[key] = receipt
        return True


def teller(publisher: FakePublisher | None = None, bucket: FakeBucket | None = None) -> Teller:
    return Teller(publisher=publisher or FakePublisher(), bucket=bucket or FakeBucket(), region="us-east-1")  # type: ignore[arg-type]


def stored_run(run: RunRecord) -> dict[str, Any]:
    return deserialize(run_item(run))


def stored_job(job: JobRecord) -> dict[str, Any]:
    return deserialize(job_item(job))


def run(status: str = "submitting", **fields: Any) -> RunRecord:
    return RunRecord(
        run_id="r1",
        team="vision",
        status=status,  # type: ignore[arg-type]
        source=SOURCE,
        received_at=T0,
        claim_owner="m1",
        claimed_at=T0,
        receipt_key="receipts/vision/train.yaml.json",
        **fields,
    )


def job(**fields: Any) -> JobRecord:
    base = JobRecord(
        job_id="j1",
        run_id="r1",
        team="vision",
        environment="adhoc",
        spec_name="train",
        step="main",
        job_name="train-main-r1",
        queue="gpu-shared",
        queue_arn="arn:aws:batch:us-east-1:123456789012:job-queue/gpu-shared",
        hardware="gpu",
        job_definition="trainer",
        job_definition_arn="arn:aws:batch:us-east-1:123456789012:job-definition/vision-trainer:3",
        resources=Resources(vcpus=8, memory_mib=61440, gpus=1),
        submitted_at=T0,
        last_event_at=T0,
        spec_digest="0" * 64,
        source=SOURCE,
        notify_on=["running", "succeeded"],
    )
    return base.model_copy(update=fields)


def moved(before: JobRecord, *statuses: str, attempt: int = 0, **fields: Any) -> tuple[JobRecord, JobRecord]:
    """The job before and after one state change through `statuses`, as the tracker writes it."""
    passed = [Transition(status=s, at=T0 + timedelta(minutes=i + 1), attempt=attempt) for i, s in enumerate(statuses)]
    last = passed[-1]
    after = before.model_copy(
        update={
            "status": last.status,
            "status_order": order_key(attempt, last.status, last.at),
            "passed": passed,
            "attempts": attempt,
            **fields,
        }
    )
    return before, after


def tell_jobs(subject: Teller, before: JobRecord, after: JobRecord) -> list[_Event]:
    publisher: FakePublisher = subject.publisher  # type: ignore[assignment]
    subject.tell([RecordChange("1", stored_job(before), stored_job(after))])
    return publisher.published


def test_a_decided_run_writes_its_receipts_and_one_event() -> None:
    publisher, bucket = FakePublisher(), FakeBucket()
    decided = run("rejected", problems=[], problem_count=0, submitted_at=T0)
    told = teller(publisher, bucket).tell([RecordChange("1", stored_run(run()), stored_run(decided))])
    assert told.failed == []
    assert [event.type for event in publisher.published] == ["run.rejected"]  # type: ignore[attr-defined]
    assert set(bucket.objects) == {"receipts/vision/train.yaml.json", "runs/r1/receipt.json"}


def test_a_run_write_that_decides_nothing_tells_nothing() -> None:
    publisher = FakePublisher()
    claimed = stored_run(run())
    teller(publisher).tell([RecordChange("1", None, claimed), RecordChange("2", claimed, claimed)])
    decided = stored_run(run("submitted", submitted_at=T0))
    teller(publisher).tell([RecordChange("3", decided, {**decided, "cancelled_by": "ana"})])
    assert publisher.published == []


def test_an_older_upload_decided_last_leaves_the_newer_receipt_in_place() -> None:
    bucket = FakeBucket()
    newer = run("submitted", submitted_at=T0).model_copy(
        update={"run_id": "r2", "source": SOURCE.model_copy(update={"sequencer": "0B"})}
    )
    older = run("submitted", submitted_at=T0)
    subject = teller(bucket=bucket)
    subject.tell([RecordChange("1", None, stored_run(newer))])
    told = subject.tell([RecordChange("2", None, stored_run(older))])
    assert bucket.objects["receipts/vision/train.yaml.json"]["run_id"] == "r2"
    assert bucket.objects["runs/r1/receipt.json"]["run_id"] == "r1"
    assert told.superseded_receipts == 1


def test_every_status_passed_through_that_the_spec_asked_for_is_told_in_order() -> None:
    before, after = moved(job(), "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", exit_code=0)
    events = tell_jobs(teller(), before, after)
    assert [(e.status, e.previous_status) for e in events] == [("running", "starting"), ("succeeded", "running")]
    assert events[-1].exit_code == 0  # type: ignore[attr-defined]
    assert events[0].exit_code is None  # type: ignore[attr-defined]


def test_statuses_older_than_where_the_job_was_are_not_told_again() -> None:
    _, running = moved(job(), "RUNNING")
    before, after = moved(running, "RUNNING", "SUCCEEDED")  # the batch carried RUNNING again
    assert [e.status for e in tell_jobs(teller(), before, after)] == ["succeeded"]


def test_failures_are_told_even_when_not_asked_for_and_an_array_speaks_only_when_it_ends() -> None:
    before, after = moved(job(notify_on=[]), "RUNNING", "FAILED", failure_class="out_of_memory", failure="oom")
    (failed,) = tell_jobs(teller(), before, after)
    assert (failed.status, failed.failure_class) == ("failed", "out_of_memory")  # type: ignore[attr-defined]

    array = job(array_size=10, notify_on=["running", "succeeded"])
    before, after = moved(array, "RUNNING")
    assert tell_jobs(teller(), before, after) == []
    before, after = moved(array, "RUNNING", "SUCCEEDED", status_summary={"SUCCEEDED": 10})
    (ended,) = tell_jobs(teller(), before, after)
    assert ended.children == {"SUCCEEDED": 10}  # type: ignore[attr-defined]


def test_a_write_that_is_not_a_state_change_tells_nothing() -> None:
    _, after = moved(job(), "RUNNING")
    progress = after.model_copy(update={"children": {"RUNNING": 3}})
    assert tell_jobs(teller(), after, progress) == []


def test_a_stuck_report_is_told_once_with_its_advice() -> None:
    before = job(status="RUNNABLE", status_since=T0)
    after = before.model_copy(
        update={"stuck_reported": "RUNNABLE too long", "stuck_advice": "ask less", "stuck_seconds": 3600.0}
    )
    (stuck,) = tell_jobs(teller(), before, after)
    assert (stuck.type, stuck.advice, stuck.time) == ("job.stuck", "ask less", T0 + timedelta(hours=1))  # type: ignore[attr-defined]
    assert tell_jobs(teller(), after, after.model_copy(update={"cancelled_by": "ana"})) == [], "once per reason"


def test_changes_whose_events_cannot_be_published_are_reported_for_the_stream_to_hand_over_again() -> None:
    before, after = moved(job(), "RUNNING")
    told = teller(FakePublisher(down=True)).tell(
        [RecordChange("7", stored_job(before), stored_job(after)), RecordChange("8", None, {"kind": "history"})]
    )
    assert told.failed == ["7"]


def test_a_change_that_is_not_a_readable_record_is_skipped_not_retried_forever() -> None:
    told = teller().tell([RecordChange("9", {"kind": "job"}, {"kind": "job", "status_order": "x", "passed": [1]})])
    assert (told.failed, told.unreadable) == ([], 1)


def test_a_jobs_first_record_tells_nothing() -> None:
    publisher = FakePublisher()
    teller(publisher).tell([RecordChange("1", None, stored_job(job()))])
    assert publisher.published == []


RECLAIM = AttemptEnd(
    attempt=1,
    started_at=T0 + timedelta(minutes=2),
    stopped_at=T0 + timedelta(minutes=2, seconds=7),
    status_reason="Host EC2 (instance i-0abc) terminated.",
    failure_class="spot_reclaim",
    failure="the instance was reclaimed (spot interruption)",
)


def test_a_retried_jobs_running_tells_the_attempt_in_progress_and_how_the_one_before_ended() -> None:
    before = job(status="RUNNING", status_order=order_key(0, "RUNNING", T0), attempts=0)
    _, after = moved(before, "RUNNABLE", "RUNNING", attempt=1, attempt_ends=[RECLAIM])
    (running,) = tell_jobs(teller(), before, after)
    assert running.attempts == 2, "the attempt in progress"  # type: ignore[attr-defined]
    (earlier,) = running.attempt_history  # type: ignore[attr-defined]
    assert (earlier.attempt, earlier.failure_class, earlier.duration_seconds) == (1, "spot_reclaim", 7.0)
    assert earlier.reason == "Host EC2 (instance i-0abc) terminated."
    assert running.duration_seconds is None, "no earlier attempt's run time as this one's"  # type: ignore[attr-defined]


def test_an_ended_job_tells_the_attempts_it_made() -> None:
    last = AttemptEnd(attempt=2, exit_code=0)
    before, after = moved(job(), "RUNNING", "SUCCEEDED", attempt=2, attempt_ends=[RECLAIM, last], duration_seconds=60.0)
    succeeded = tell_jobs(teller(), before, after)[-1]
    assert succeeded.attempts == 2, "attempts made"  # type: ignore[attr-defined]
    assert [a.attempt for a in succeeded.attempt_history] == [1, 2]  # type: ignore[attr-defined]
    assert succeeded.duration_seconds == 60.0  # type: ignore[attr-defined]


def ended_run(status: str = "succeeded", **fields: Any) -> RunRecord:
    steps = [
        RunStep(step="prep", job_id="j1", status="succeeded", queue="cpu", hardware="cpu", duration_seconds=60.0),
        RunStep(
            step="train",
            job_id="j2",
            status=status if status != "cancelled" else "failed",
            queue="gpu",
            hardware="gpu",
            array_size=4,
            children={"SUCCEEDED": 4},
        ),
    ]
    refs = [
        SubmittedJobRef(step=s.step, job_id=s.job_id, job_name=s.step, queue=s.queue, hardware=s.hardware)
        for s in steps
    ]
    return run(
        status,
        submitted_at=T0,
        finished_at=T0 + timedelta(hours=1),
        jobs=refs,
        steps=steps,
        usage=Usage(vcpu_hours=2.0),
        dropped_by="AWS:AROAEXAMPLE:alice",
        notify_on=["succeeded"],
        **fields,
    )


@pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled"])
def test_a_run_that_ends_is_told_once_with_its_steps_from_its_own_change(status: str) -> None:
    publisher = FakePublisher()
    running = run("running", submitted_at=T0)
    ended = ended_run(status, reason="step train: oom" if status != "succeeded" else None)
    change = RecordChange("1", stored_run(running), stored_run(ended))
    teller(publisher).tell([change])
    teller(publisher).tell([change])  # the stream hands it over again
    first, again = publisher.published
    assert isinstance(first, RunEnded)
    assert first.event_id == again.event_id, "the same fact, the same id: consumers drop the duplicate"
    assert (first.status, first.previous_status, first.dropped_by) == (status, "running", "AWS:AROAEXAMPLE:alice")
    assert [step.step for step in first.steps] == ["prep", "train"]
    assert first.steps[1].children == {"SUCCEEDED": 4}
    assert (first.step_count, first.duration_seconds) == (2, 3600.0)
    assert first.attributes()["type"] == "run.ended"


def test_a_run_write_after_its_end_tells_nothing_more() -> None:
    publisher = FakePublisher()
    ended = stored_run(ended_run())
    teller(publisher).tell([RecordChange("1", ended, {**ended, "cancelled_by": "ana"})])
    assert publisher.published == []


def test_a_run_end_with_more_steps_than_an_event_holds_is_shortened_with_its_count_kept() -> None:
    many = [
        RunStep(step=f"s{i}", job_id=f"j{i}", status="failed", queue="q", hardware="cpu", failure="x" * 999)
        for i in range(50)
    ]
    refs = [SubmittedJobRef(step=s.step, job_id=s.job_id, job_name=s.step, queue="q", hardware="cpu") for s in many]
    big = ended_run("failed").model_copy(update={"steps": many, "jobs": refs, "reason": "r" * 5000})
    publisher = FakePublisher()
    teller(publisher).tell([RecordChange("1", stored_run(run("running")), stored_run(big))])
    (event,) = publisher.published
    assert len(event.body().encode()) <= 64 * 1024
    assert event.step_count == 50  # type: ignore[attr-defined]


def oom_recovery(number: int = 1) -> dict[str, Any]:
    """What the tracker writes with the FAILED status of a job that ran out of memory and is to grow."""
    due = RecoveryDue(
        number=number,
        kind="out_of_memory",
        memory_mib=122880,
        queue="gpu-shared",
        queue_arn="arn:aws:batch:us-east-1:123456789012:job-queue/gpu-shared",
        attempts=1,
        counts=RecoveryCounts(out_of_memory=number),
        words=f"ran out of memory with 60 GiB; retrying with 120 GiB ({number} of 2)",
    )
    return {
        "recovery": due,
        "recovery_policy": RecoveryPolicy(out_of_memory_times=2, max_memory_mib=245760),
        "failure_class": "out_of_memory",
        "failure": "out of memory (exit code 137)",
        "exit_code": 137,
    }


def test_a_recovery_is_told_once_and_the_failure_it_answers_says_it_is_recovering() -> None:
    before, after = moved(job(notify_on=[]), "RUNNING", "FAILED", attempt=1, **oom_recovery())
    failed, recovering = tell_jobs(teller(), before, after)
    assert (failed.type, failed.status, failed.recovering) == ("job.status", "failed", True)  # type: ignore[attr-defined]
    assert isinstance(recovering, JobRecovering)
    assert (recovering.status, recovering.previous_status, recovering.job_id) == ("recovering", "failed", "j1")
    assert (recovering.failure_class, recovering.exit_code, recovering.memory_mib) == ("out_of_memory", 137, 61440)
    told = recovering.recovery
    assert (told.number, told.kind, told.memory_mib, told.queue, told.job_id) == (
        1,
        "out_of_memory",
        122880,
        "gpu-shared",
        "j1",
    )
    assert told.words == "ran out of memory with 60 GiB; retrying with 120 GiB (1 of 2)"
    assert recovering.number_of == 2
    again = tell_jobs(teller(), before, after)  # the stream hands the same change over again
    assert [event.event_id for event in again] == [failed.event_id, recovering.event_id], "the same ids: told once"
    later = after.model_copy(update={"recovered_by": "j2"})
    assert tell_jobs(teller(), after, later) == [], "the hand-over's own write tells nothing"


def test_a_failure_not_recovered_says_why_in_numbers() -> None:
    final = "ran out of memory with 240 GiB, all the largest instance of queue `gpu-shared` has: not resubmitted"
    before, after = moved(
        job(), "FAILED", attempt=1, failure_class="out_of_memory", failure="out of memory", recovery_final=final
    )
    (failed,) = tell_jobs(teller(), before, after)
    assert failed.failure == f"out of memory — {final}"  # type: ignore[attr-defined]
    assert failed.recovering is None  # type: ignore[attr-defined]


def test_a_recovery_that_could_not_be_made_tells_the_failure_again_final_with_why() -> None:
    _, failed = moved(job(notify_on=[]), "RUNNING", "FAILED", attempt=1, **oom_recovery())
    why = "recovery 1 was not submitted: Batch refused the new job (ClientException)"
    abandoned = failed.model_copy(update={"recovery": None, "recovery_final": why})
    (final,) = tell_jobs(teller(), failed, abandoned)
    assert (final.type, final.status, final.recovering) == ("job.status", "failed", None)  # type: ignore[attr-defined]
    assert final.failure == f"out of memory (exit code 137) — {why}"  # type: ignore[attr-defined]
    (again,) = tell_jobs(teller(), failed, abandoned)
    assert again.event_id == final.event_id, "told once"
    first, _ = tell_jobs(teller(), *moved(job(notify_on=[]), "RUNNING", "FAILED", attempt=1, **oom_recovery()))
    assert final.event_id != first.event_id, "not the failure that was told as recovering"
