"""A job's record keeps its queue's prices from submission (`JobRecord.price`), so its cost is told in
dollars without the platform config: the job submitted, and a recovery's new job on another queue."""

from __future__ import annotations

from datetime import UTC, datetime

from batchdrop.platform.config import parse_platform_config
from batchdrop.platform.costs import cost_of
from batchdrop.platform.planning import check_and_plan
from batchdrop.store.records import SpecSource
from batchdrop.submit.job_records import submitted_job_record
from tests.conftest import EXAMPLES

CONFIG = parse_platform_config((EXAMPLES / "platform.yaml").read_bytes())
SOURCE = SpecSource(bucket="jobs", key="incoming/vision/gpu-finetune.yaml")
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def test_a_submitted_jobs_record_keeps_its_queues_prices() -> None:
    spec = EXAMPLES / "specs" / "gpu-finetune.yaml"
    plan = check_and_plan(spec.read_bytes(), spec.name, team="vision", config=CONFIG, run_id="r1")
    [job] = plan.jobs
    record = submitted_job_record(
        plan, job, job_id="j1", job_name=job.job_name, depends_on=[], source=SOURCE, spec_digest="0" * 64, at=T0
    )
    assert record.price == CONFIG.queues[job.queue].price
    assert cost_of(record) == 0.0  # priced, and nothing used yet


def test_a_recoverys_new_job_on_the_fallback_queue_has_the_fallback_queues_prices() -> None:
    spec = EXAMPLES / "specs" / "gpu-finetune.yaml"
    plan = check_and_plan(spec.read_bytes(), spec.name, team="vision", config=CONFIG, run_id="r1")
    [job] = plan.jobs
    fallback = CONFIG.queues["gpu-on-demand"]
    moved = job.model_copy(update={"queue": "gpu-on-demand", "queue_arn": fallback.arn})  # as the Recoverer does
    record = submitted_job_record(
        plan, moved, job_id="j2", job_name=job.job_name, depends_on=[], source=SOURCE, spec_digest="0" * 64, at=T0
    )
    assert record.price == fallback.price
    assert record.price != CONFIG.queues[job.queue].price
