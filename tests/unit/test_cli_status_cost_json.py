"""`batchdrop status --json` carries the same cost as the text `status`: the run's (recoveries included,
reused steps left out; so far while it runs) and each job's (once it has ended)."""

from __future__ import annotations

import pytest

from batchdrop.events.contract import Usage
from batchdrop.platform.config import QueuePrice
from batchdrop.store.records import SubmittedJobRef
from batchdrop_cli.stack import _print_view
from tests.recordkit import run_record
from tests.unit.test_cli_status_chain import status_view
from tests.unit.test_recovery_chain import GIB, job, oom_due

PRICE = QueuePrice(vcpu_hour=0.05, gib_hour=0.005, gpu_hour=2.0)


def test_status_json_has_the_runs_cost_and_each_jobs_as_the_text_prints_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    one_hour = Usage(vcpu_hours=2.0, memory_gib_hours=16.0)  # 2 × $0.05 + 16 × $0.005 = $0.18
    prep = job("old-prep", memory=4096, status="SUCCEEDED", step="prep", run_id="run-before", price=PRICE)
    failed = job(
        "t1", memory=16 * GIB, status="FAILED", recovery=oom_due(1, 32 * GIB), recovered_by="t2", usage=one_hour
    )
    failed = failed.model_copy(update={"price": PRICE})
    train = job("t2", memory=32 * GIB, status="SUCCEEDED", recovers="t1", price=PRICE, usage=one_hour)
    reused_prep = SubmittedJobRef.of(prep).model_copy(update={"reused_from": "run-before"})
    run = run_record([reused_prep, SubmittedJobRef.of(train, ["prep"])], status="succeeded")
    view = status_view(run, prep, failed, train)

    _print_view(view)
    document = view.as_json()

    assert "  cost      $0.36, estimated" in capsys.readouterr().out  # the recovery's failed job ran too
    assert document["cost_usd"] == pytest.approx(0.36)
    assert document["unpriced_jobs"] == 0
    assert {each["step"]: each["cost_usd"] for each in document["jobs"]} == {"prep": None, "train": 0.18}


def test_status_json_cost_is_none_where_no_queue_has_prices() -> None:
    running = job("a", memory=4096, status="RUNNING")
    run = run_record([SubmittedJobRef.of(running)], status="running")
    document = status_view(run, running).as_json()
    assert document["cost_usd"] is None
    assert document["unpriced_jobs"] == 1
    assert document["jobs"][0]["cost_usd"] is None


def test_a_running_jobs_cost_is_told_once_it_has_ended_in_json_as_in_the_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    one_hour = Usage(vcpu_hours=2.0, memory_gib_hours=16.0)  # $0.18: its first attempt's, not the whole job's
    prep = job("p1", memory=4096, status="SUCCEEDED", step="prep", price=PRICE, usage=one_hour)
    train = job("t1", memory=4096, status="RUNNING", price=PRICE, usage=one_hour)
    run = run_record([SubmittedJobRef.of(prep), SubmittedJobRef.of(train, ["prep"])], status="running")
    view = status_view(run, prep, train)

    _print_view(view)
    out = capsys.readouterr().out
    document = view.as_json()

    assert "  cost      $0.36, estimated so far" in out  # the run's, so far: what the running job used too
    assert document["cost_usd"] == pytest.approx(0.36)
    assert "  prep:\n    cost: $0.18, estimated" in out
    assert out.count("    cost: ") == 1, "the running job's cost is not told yet"
    assert {each["step"]: each["cost_usd"] for each in document["jobs"]} == {"prep": 0.18, "train": None}
