"""The report's timeline of a multi-node parallel job (docs/multinode.md, docs/report.md): a bar per attempt
of the job itself; its nodes' ends (`node <i> SUCCEEDED` in its history) are not attempts."""

from __future__ import annotations

from batchdrop.report.page import render_report
from batchdrop.report.timeline import attempt_bars
from batchdrop.store.records import AttemptEnd, JobRecord, SubmittedJobRef, Transition
from tests.report_scenarios import at, history, job, run
from tests.unit.test_report_page import parsed

NODES = 3


def node_ends(attempt: int, minute: float, *, status: str) -> dict[str, Transition]:
    """Every node's end of `attempt`, as tracking keeps them in the job's history."""
    ends = [
        Transition(
            status=f"node {node} {status}",
            at=at(minute),
            attempt=attempt,
            attempt_end=AttemptEnd(attempt=attempt, node=node, exit_code=0 if status == "SUCCEEDED" else None),
        )
        for node in range(NODES)
    ]
    return {end.key: end for end in ends}


def multi_node_job(**fields: object) -> JobRecord:
    return job("train-m", "train", nodes=NODES, finished_at=at(20), **fields)


def test_a_multi_node_job_that_succeeded_at_its_first_attempt_is_one_succeeded_bar() -> None:
    train = multi_node_job(
        status="SUCCEEDED",
        attempts=1,
        history=history(("SUBMITTED", 0, 0), ("RUNNABLE", 1, 0), ("RUNNING", 3, 0), ("SUCCEEDED", 20, 1))
        | node_ends(1, 19, status="SUCCEEDED"),
        attempt_ends=[AttemptEnd(attempt=1, started_at=at(3), stopped_at=at(20), exit_code=0)],
    )
    (bar,) = attempt_bars(train, now=at(60))
    assert (bar.attempt, bar.outcome, bar.last) == (1, "succeeded", True)
    assert bar.running_seconds == 17 * 60
    page = parsed(
        render_report(
            run("run-pipeline", status="succeeded", jobs=[SubmittedJobRef.of(train)]), [train], {}, now=at(60)
        )
    )
    bars = [(bar["data-attempt"], bar["data-outcome"]) for bar in page.with_class("bar")]
    assert bars == [("1", "succeeded")]


def test_a_multi_node_job_batch_retried_is_a_bar_per_attempt_of_the_job() -> None:
    train = multi_node_job(
        status="SUCCEEDED",
        attempts=2,
        max_attempts=2,
        history=history(
            ("SUBMITTED", 0, 0), ("RUNNABLE", 1, 0), ("RUNNING", 3, 0), ("RUNNABLE", 10, 1), ("RUNNING", 12, 1)
        )
        | history(("SUCCEEDED", 20, 2))
        | node_ends(1, 9, status="FAILED")
        | node_ends(2, 19, status="SUCCEEDED"),
        attempt_ends=[
            AttemptEnd(attempt=1, started_at=at(3), stopped_at=at(9), failure_class="spot_reclaim", failure="lost"),
            AttemptEnd(attempt=2, started_at=at(12), stopped_at=at(20), exit_code=0),
        ],
    )
    bars = attempt_bars(train, now=at(60))
    assert [(bar.attempt, bar.outcome) for bar in bars] == [(1, "failed"), (2, "succeeded")]
