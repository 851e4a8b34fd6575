"""Multi-node parallel jobs in the local Batch: each node tells its own events (`<job id>#<node index>`,
with `nodeDetails` and its node range's container) and writes its own log, and the main node's end is
the job's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from batchdrop_local.batch_jobs import LocalJob, attempt_record
from batchdrop_local.batch_output import BatchOutput
from batchdrop_local.state_changes import state_change


def node_view(job: LocalJob, index: int) -> dict[str, Any]:
    """Node `index` of a multi-node job, as Batch shows it: a job `<id>#<index>` with `nodeDetails` and
    its node range's container."""
    view = {key: value for key, value in job.view.items() if key != "nodeProperties"}
    container = job.view["nodeProperties"]["nodeRangeProperties"][0]["container"]
    return {
        **view,
        "jobId": f"{job.view['jobId']}#{index}",
        "jobArn": f"{job.view['jobArn']}#{index}",
        "nodeDetails": {"nodeIndex": index, "isMainNode": index == 0},
        "container": dict(container),
    }


class MultiNodeJobs:
    def __init__(self, output: BatchOutput) -> None:
        self.output = output

    def running(self, job: LocalJob, *, at: datetime) -> None:
        """Every node tells that it runs, when the job does (`at`: when it started)."""
        assert job.nodes is not None
        for index in range(job.nodes):
            self.output.publish(state_change(node_view(job, index), "RUNNING", at=at))

    def finish(self, job: LocalJob, outcome: str) -> int:
        """Every node's end, told as its own event with its log; the main node's exit code, returned, is
        the job's. A failing node that is not the main node takes the main node down (exit 1)."""
        assert job.nodes is not None
        failing = (job.fate.fail_node or 0) if outcome == "fail" else None
        number = len(job.attempts) + 1
        main_code = 0
        for index in range(job.nodes):
            code = job.fate.exit_code if index == failing else 1 if index == 0 and failing is not None else 0
            main_code = code if index == 0 else main_code
            node = LocalJob(view=node_view(job, index), fate=job.fate, depends_on=[], array_size=None)
            node.started_at = job.started_at
            node.attempts = [dict(attempt) for attempt in job.attempts]
            self.output.write_logs(node, "started")
            self.output.write_logs(node, f"exited with code {code}" if code else "done", attempt=number)
            node.attempts.append(attempt_record(node, exit_code=code))
            status = "FAILED" if code else "SUCCEEDED"
            self.output.publish(
                state_change(
                    node.view,
                    status,
                    at=datetime.now(UTC),
                    attempts=node.attempts,
                    reason="Essential container in task exited",
                    exit_code=code,
                )
            )
        return main_code
