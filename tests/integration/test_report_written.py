"""A run's report is written when it ends (docs/report.md), on the whole local control plane: the report
function, subscribed to `run.ended` events only, puts the page by run id and beside the file's receipt."""

from __future__ import annotations

import html
import time
from collections.abc import Iterator

import pytest
from batchdrop_local.batch_lifecycle import JobFate, Scenario
from batchdrop_local.control_plane import ControlPlane
from batchdrop_local.emulator import EmbeddedAws

from batchdrop.store.records import RunRecord

pytestmark = pytest.mark.integration

SCENARIO = Scenario(
    fates=[JobFate(spec="rep-fail", step="main", outcome="fail", exit_code=2)],
    seconds={"queued": 0.2, "starting": 0.2, "running": 0.3},
)
SPEC = """\
version: 1
name: {name}
team: vision
job_definition: trainer
command: [python, train.py]
resources: {{vcpus: 2, memory_mib: 4096}}
"""


@pytest.fixture(scope="module")
def plane(emulator: EmbeddedAws) -> Iterator[ControlPlane]:
    with ControlPlane(emulator, scenario=SCENARIO, speed=1.0).running() as running:
        yield running


def ended_run(plane: ControlPlane, name: str) -> RunRecord:
    plane.aws.client("s3").put_object(
        Bucket=plane.bucket, Key=f"incoming/vision/{name}.yaml", Body=SPEC.format(name=name).encode()
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        runs, _ = plane.table.list_runs("vision", limit=50)
        ended = [run for run in runs if run.spec_name == name and run.status in {"succeeded", "failed"}]
        if ended:
            return ended[0]
        time.sleep(0.2)
    pytest.fail(f"the run of {name} did not end")


def report_at(plane: ControlPlane, key: str) -> tuple[str, str]:
    """The page at `key` and its content type, once written (the report function runs after the run ends)."""
    s3 = plane.aws.client("s3")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            found = s3.get_object(Bucket=plane.bucket, Key=key)
        except s3.exceptions.NoSuchKey:
            time.sleep(0.2)
            continue
        return found["Body"].read().decode(), found["ContentType"]
    pytest.fail(f"no report at s3://{plane.bucket}/{key}")


@pytest.mark.parametrize(("name", "status"), [("rep-ok", "succeeded"), ("rep-fail", "failed")])
def test_an_ended_runs_report_is_written_by_run_id_and_beside_its_receipt(
    plane: ControlPlane, name: str, status: str
) -> None:
    run = ended_run(plane, name)
    assert run.status == status

    by_id, content_type = report_at(plane, f"runs/{run.run_id}/report.html")
    beside, _ = report_at(plane, f"receipts/vision/{name}.yaml.report.html")

    assert content_type.startswith("text/html")
    assert run.run_id in by_id
    assert name in by_id
    assert beside == by_id
    assert "<script" not in by_id, "the page loads and runs nothing"
    if status == "failed":  # the failure in the records' words
        job = plane.table.get_job(run.jobs[0].job_id)
        assert job is not None
        assert job.failure is not None
        assert html.escape(job.failure) in by_id


def test_the_report_function_hears_of_ended_runs_only(plane: ControlPlane) -> None:
    """The subscription's filter policy hands the function `run.ended` events only (not the runs' submitted
    and job status events, several a run): one invocation per ended run."""
    run = ended_run(plane, "rep-count")
    report_at(plane, f"runs/{run.run_id}/report.html")
    runs, _ = plane.table.list_runs("vision", limit=50)
    ended = [each for each in runs if each.status in {"succeeded", "failed"}]
    assert plane.runtime.invocations["ReportFunction"] == len(ended)
