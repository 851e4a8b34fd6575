"""Array jobs in the local Batch: a parent's children (with their original indices, for a resubmitted
array), how many run at once, and the parent's status as its children's summary. How a child's attempt
ends, and how a job moves (its event, its place in the queue), are the lifecycle's: given to
`ArrayChildren` as callables.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from batchdrop_local.batch_fates import ScenarioError, original_indices
from batchdrop_local.batch_jobs import LocalJob, Pace

logger = logging.getLogger(__name__)


class Move(Protocol):
    def __call__(self, job: LocalJob, status: str, *, reason: str | None = None) -> None: ...


class ArrayChildren:
    def __init__(self, *, pace: Pace, parallel: int, move: Move, finish_attempt: Callable[[LocalJob], None]) -> None:
        """`parallel`: how many of a parent's children run at once."""
        self.pace = pace
        self.parallel = parallel
        self.move = move
        self.finish_attempt = finish_attempt

    def start(self, parent: LocalJob) -> None:
        assert parent.array_size is not None
        try:
            indices = original_indices(parent.view, parent.array_size)
        except ScenarioError as error:
            logger.warning("job %s: %s; its children are taken as the originals", parent.view["jobId"], error)
            indices = list(range(parent.array_size))
        parent.children = [
            LocalJob(
                view={
                    **parent.view,
                    "jobId": f"{parent.view['jobId']}:{index}",
                    "arrayProperties": {"index": index},
                    "jobArn": f"{parent.view['jobArn']}:{index}",
                },
                fate=parent.fate,
                depends_on=[],
                array_size=None,
                status="PENDING",
                retry_strategy=parent.retry_strategy,
                memory_mib=parent.memory_mib,
                child_index=indices[index],
            )
            for index in range(parent.array_size)
        ]
        parent.status = "RUNNABLE"  # the parent itself says nothing until a child runs

    def advance(self, parent: LocalJob, now: float) -> None:
        running = sum(1 for child in parent.children if child.status == "RUNNING")
        for child in parent.children:
            if child.ended or now < child.next_at:
                continue
            if child.status == "PENDING":
                if running >= self.parallel:
                    continue
                running += 1
                child.started_at = datetime.now(UTC)
                child.status, child.next_at = "RUNNING", now + self.pace.seconds("child")
                # Each child tells only how it ended: Batch also tells RUNNABLE and RUNNING, but a
                # thousand children's every step is more than the emulator moves in a minute.
                if parent.status != "RUNNING":
                    self.summarized(parent, "RUNNING")
            elif child.status == "RUNNING":
                self.finish_attempt(child)
        if all(child.ended for child in parent.children):
            failed = any(child.status == "FAILED" for child in parent.children)
            self.summarized(
                parent, "FAILED" if failed else "SUCCEEDED", reason="Array Child Job failed" if failed else None
            )

    def summarized(self, parent: LocalJob, status: str, reason: str | None = None) -> None:
        summary: dict[str, int] = {}
        for child in parent.children:
            summary[child.status] = summary.get(child.status, 0) + 1
        parent.view["arrayProperties"] = {"size": parent.array_size, "statusSummary": summary}
        self.move(parent, status, reason=reason)
