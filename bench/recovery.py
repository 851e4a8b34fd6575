"""Recovering a sweep's failed children (issue 13): Batch jobs, child-hours rerun, DynamoDB writes.

On the whole control plane (the local Batch, the stack's functions, the embedded AWS), in one run:

- A 1,000-child sweep asking 4 GiB, of which 40 children run out of memory
  below 8 GiB (the scenario's `fail_children` and `below_memory_mib`), with
  `retries: {out_of_memory: {times: 2}}`: the recovery's Batch jobs (target: one
  array job, of the 40), and the child time it runs again against a rerun of
  the whole sweep (each child's own run time as tracking added it up, at the
  scenario's speed: seconds here where a real sweep's are hours).
- The same sweep with no child failing, dropped first: the DynamoDB write
  requests the recovery cost are the failing run's less this one's (tracking
  the 40 failures and their recovery, the decision, the new job's records and
  the run's rewiring), counted where the embedded AWS answers them.
- Resume (docs/resume.md): the same sweep whose 40 children fail for good (exit 1, not recovered), dropped
  again with `resume: latest`: the Batch jobs the resumed run submits (target: one array job, of the 40) and
  the child time it runs against the whole sweep's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from batchdrop_local.batch_lifecycle import JobFate, Scenario
from batchdrop_local.control_plane import ControlPlane
from batchdrop_local.demo import quiet_process_output
from batchdrop_local.emulator import EmbeddedAws

from batchdrop.report.publishing import report_page
from batchdrop.report.records import read_report_records
from batchdrop.store.job_states import JobStates
from batchdrop.store.records import RunRecord, utc_now
from bench.report import Figure

CHILDREN = 1000
OOM_CHILDREN = tuple(range(5, CHILDREN, 25))
WRITES = ("put_item", "update_item", "delete_item", "batch_write_item", "transact_write_items")
READS = ("get_item", "batch_get_item", "query")
SPEED = 10.0
SCENARIO = Scenario(
    fates=[
        JobFate(spec="bench-oom", outcome="out_of_memory", below_memory_mib=8192, fail_children=OOM_CHILDREN),
        JobFate(spec="bench-resume", outcome="fail", exit_code=1, fail_children=OOM_CHILDREN, first_job_only=True),
    ],
    seconds={"queued": 0.2, "starting": 0.2, "running": 0.5, "child": 0.2},
)
FINISHED = {"succeeded", "failed", "cancelled", "rejected"}


def spec(name: str, extra: str = "") -> bytes:
    lr = [f"0.{n}" for n in range(1, 11)]
    seeds = [str(n) for n in range(CHILDREN // 10)]
    return f"""\
version: 1
name: {name}
team: vision
job_definition: trainer
command: [python, train.py, --lr, Ref::lr]
resources: {{vcpus: 1, memory_mib: 4096}}
sweep: {{lr: {lr}, seed: {seeds}}}
retries: {{out_of_memory: {{times: 2}}}}
{extra}""".encode()


LOG = Path(".batchdrop") / "bench-recovery.log"
"""The functions' own output (JSON logs, EMF): kept out of the figures, as the demo keeps it out of its view."""


def run() -> list[Figure]:
    aws = EmbeddedAws().start()
    writes = _count_requests()
    try:
        with quiet_process_output(LOG), ControlPlane(aws, scenario=SCENARIO, speed=SPEED).running() as plane:
            started = time.monotonic()
            before = writes["count"]
            _drop(plane, "bench-ok")
            baseline = writes["count"] - before
            before = writes["count"]
            run_record = _drop(plane, "bench-oom")
            with_recovery = writes["count"] - before
            figures = _figures(plane, run_record, (baseline, with_recovery))
            figures.append(_report_figure(plane, run_record))
            failed = _drop(plane, "bench-resume")
            resumed = _drop(plane, "bench-resume", "resume: latest\n", after=failed.run_id)
            return [*figures, *_resume_figures(plane, failed, resumed), _bench_time(time.monotonic() - started)]
    finally:
        _count_requests(stop=True)
        aws.stop()


def _count_requests(*, stop: bool = False, operations: tuple[str, ...] = WRITES) -> dict[str, int]:
    """Count DynamoDB write requests (or `operations`) where the embedded AWS answers them (its server runs
    in this process; the functions run in processes of their own): every request, a refused conditional
    write included."""
    from moto.dynamodb.responses import DynamoHandler  # only a benchmark patches moto

    counted: dict[str, int] = {"count": 0}
    for operation in operations:
        original = getattr(DynamoHandler, operation)
        original = getattr(original, "counted_original", original)
        if stop:
            setattr(DynamoHandler, operation, original)
            continue

        def counting(self: Any, _original: Callable[..., Any] = original) -> Any:
            counted["count"] += 1
            return _original(self)

        counting.counted_original = original  # type: ignore[attr-defined]
        setattr(DynamoHandler, operation, counting)
    return counted


def _drop(plane: ControlPlane, name: str, extra: str = "", *, after: str | None = None) -> RunRecord:
    """Drop the sweep and wait for its run (a run that resumes `after`, if given) to end, and for its last
    changes to be told."""
    body = spec(name, extra)
    plane.aws.client("s3").put_object(Bucket=plane.bucket, Key=f"incoming/vision/{name}.yaml", Body=body)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        runs, _ = plane.table.list_runs("vision", limit=100)
        ended = [
            each
            for each in runs
            if each.spec_name == name and each.status in FINISHED and (after is None or each.resumes == after)
        ]
        if ended:
            time.sleep(2 / SPEED)  # the publish function's last reads and the settling writes
            return ended[0]
        time.sleep(0.1)
    raise RuntimeError(f"the run of {name} did not end in two minutes")


def _figures(plane: ControlPlane, run_record: RunRecord, writes: tuple[int, int]) -> list[Figure]:
    recovered = plane.table.get_job(run_record.jobs[0].job_id)
    if recovered is None or recovered.recovers is None:
        raise RuntimeError(f"run {run_record.run_id} ({run_record.status}) made no recovery")
    failed = plane.table.get_job(recovered.recovers)
    if failed is None:
        raise RuntimeError(f"the job {recovered.recovers} the recovery replaced has no record")
    # Only the run's job names its chain: one new job unless a recovered job was itself replaced.
    new_jobs = 1 + sum(1 for _ in _chain_after(plane, failed.recovered_by, recovered.job_id))
    size = recovered.array_size or 1
    # One vCPU a child: its vCPU-hours are its child-hours, as tracking added them up from each child's run.
    rerun = recovered.child_usage.vcpu_hours
    whole = failed.child_usage.vcpu_hours  # every child of the sweep ran once
    return [
        Figure(
            "Batch jobs submitted by the recovery",
            new_jobs,
            "jobs",
            target="1 array job",
            within=new_jobs == 1 and size == len(OOM_CHILDREN),
            detail=f"an array of {size} children of the sweep's {failed.array_size:,}; the run {run_record.status}",
        ),
        Figure(
            "child time run again",
            rerun * 3600,
            "child-seconds",
            target=f"the failed children's; a full rerun is {whole * 3600:,.0f}",
            within=0 < rerun < whole,
            detail=f"{rerun / whole:.1%} of a full rerun" if whole else "",
        ),
        Figure(
            "DynamoDB writes the recovery cost",
            writes[1] - writes[0],
            "writes",
            detail=f"{writes[1]:,} write requests for the failing run, {writes[0]:,} for the sweep with no failure",
        ),
    ]


def _report_figure(plane: ControlPlane, run_record: RunRecord) -> Figure:
    """The report of the sweep whose children recovered, built from the table as `batchdrop report` and the
    report function build it: its time, its size, and the DynamoDB read requests it takes."""
    reads = _count_requests(operations=READS)
    try:
        started = time.perf_counter()
        records = read_report_records(
            plane.table, JobStates(plane.table.client, plane.table.table_name), run_record.run_id
        )
        page = report_page(records, utc_now())
        seconds = time.perf_counter() - started
    finally:
        _count_requests(stop=True, operations=READS)
    return Figure(
        "report of the 1,000-child sweep with its recovery",
        seconds * 1000,
        "ms",
        target="< 1 s",
        within=seconds < 1,
        detail=f"{len(page.encode()) / 1024:.1f} KiB, {reads['count']} DynamoDB read requests, "
        f"{len(records.jobs)} job records",
    )


def _resume_figures(plane: ControlPlane, failed: RunRecord, resumed: RunRecord) -> list[Figure]:
    first = plane.table.get_job(failed.jobs[0].job_id)
    (ref,) = resumed.jobs
    again = plane.table.get_job(ref.job_id)
    if first is None or again is None or resumed.resumes != failed.run_id:
        raise RuntimeError(f"run {resumed.run_id} ({resumed.status}) did not resume run {failed.run_id}")
    size = again.array_size or 1
    rerun, whole = again.child_usage.vcpu_hours, first.child_usage.vcpu_hours
    return [
        Figure(
            "Batch jobs submitted by the resume",
            len([job for job in resumed.jobs if not job.reused_from]),
            "jobs",
            target="1 array job",
            within=size == len(OOM_CHILDREN) and ref.reused_children == CHILDREN - len(OOM_CHILDREN),
            detail=f"an array of {size} children; {ref.reused_children or 0:,} reused from run {failed.run_id[:8]}; "
            f"the run {resumed.status}",
        ),
        Figure(
            "child time the resume ran",
            rerun * 3600,
            "child-seconds",
            target=f"the failed children's; the whole sweep's is {whole * 3600:,.0f}",
            within=0 < rerun < whole,
            detail=f"{rerun / whole:.1%} of the whole sweep" if whole else "",
        ),
    ]


def _bench_time(seconds: float) -> Figure:
    return Figure("bench time", seconds, "s", target="< 150 s", within=seconds < 150)


def _chain_after(plane: ControlPlane, first: str | None, last: str) -> list[str]:
    """The jobs between the first new job and the run's last (none when one recovery did it all)."""
    chain: list[str] = []
    while first is not None and first != last:
        chain.append(first)
        record = plane.table.get_job(first)
        first = record.recovered_by if record else None
    return chain
