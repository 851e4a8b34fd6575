"""Reconciling with Batch: events get lost, so jobs quiet too long are asked about."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

from batchdrop.gateways.batch import BatchGateway
from batchdrop.store.records import TERMINAL, timestamp, utc_now
from batchdrop.track.batch_events import BatchEvent, JobDetail, epoch_ms
from batchdrop.track.batches import Delivery
from batchdrop.track.queue_place import QueueStanding
from batchdrop.track.tracker import Tracker, stuck_reason


class Reconciler:
    """Asks Batch about jobs that have been quiet too long, because events get lost.

    Batch sends no event at submission and forgets finished jobs after about a
    day, so a lost event could leave a job RUNNING in the table forever. Every
    run, jobs not heard of for `quiet_after` are described (100 to a call) and
    what Batch says goes through the same state machine; a job Batch no longer
    knows is marked LOST. A job RUNNABLE longer than `runnable_after` gets one
    `job.stuck` event with advice, which says where it stands: its place at the
    front of its queue and the queue's compute environments (`QueueStanding`).
    """

    def __init__(
        self,
        *,
        tracker: Tracker,
        batch: BatchGateway,
        quiet_after: timedelta = timedelta(minutes=10),
        runnable_after: timedelta = timedelta(minutes=30),
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.tracker = tracker
        self.batch = batch
        self.standing = QueueStanding(batch)
        self.quiet_after = quiet_after
        self.runnable_after = runnable_after
        self.clock = clock

    def reconcile(self) -> Counter[str]:
        now = self.clock()
        quiet = self.tracker.table.quiet_jobs(before=timestamp(now - self.quiet_after))
        waiting = [record for record in quiet if record.status in TERMINAL]  # failed, waiting for a recovery
        quiet = [record for record in quiet if record.status not in TERMINAL]
        counts: Counter[str] = Counter(QuietJobs=len(quiet))
        if waiting:
            counts.update(self.tracker.settle_recoveries(waiting))
        known = {
            job_id: JobDetail.model_validate(raw)
            for job_id, raw in self.batch.describe({record.job_id for record in quiet}).items()
        }
        deliveries = []
        for record in quiet:
            detail = known.get(record.job_id)
            if detail is None:
                counts["LostJobs"] += self.tracker.mark_lost(record, now)
                continue
            event = BatchEvent.model_validate(
                {
                    "id": f"reconcile-{record.job_id}",
                    "detail-type": "Batch Job State Change",
                    "source": "aws.batch",
                    # An end found late happened when Batch stopped the job: its month (for costs) and its
                    # history are then's, not the moment reconcile found it.
                    "time": (epoch_ms(detail.stoppedAt) if detail.status in TERMINAL else None) or now,
                    "region": self.tracker.region,
                    "detail": detail,
                }
            )
            deliveries.append(Delivery(message_id=record.job_id, event=event))
        result = self.tracker.track(deliveries)
        counts.update(result.counts)
        counts["ReconcileFailures"] += len(result.failed)
        for record in quiet:
            detail = known.get(record.job_id)
            if detail is None or detail.status != "RUNNABLE":
                continue
            since = record.status_since if record.status == "RUNNABLE" and record.status_since else now
            if now - since < self.runnable_after or record.stuck_reported == stuck_reason(detail.statusReason):
                continue  # not stuck yet, or already told: Batch is not asked where it stands
            standing = self.standing.words(queue_arn=record.queue_arn, queue=record.queue, job_id=record.job_id)
            if self.tracker.report_stuck(
                record.model_copy(update={"status_since": since}), detail.statusReason, now, standing=standing
            ):
                counts["StuckJobs"] += 1
        return counts
