"""RunClaims: Runs as the submit function claims and records them: a claim (a conditional write, so one
delivery submits), taken over when its owner is gone, and finished with the run's jobs, all or
nothing; a batch's fresh runs written together."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from batchdrop.platform.fingerprints import CHILD_HASH_CHARACTERS
from batchdrop.store.items import (
    RETENTION,
    Claim,
    RecordConflict,
    batch_write,
    child_hashes_item,
    child_hashes_key,
    children_key,
    deserialize,
    error_code,
    expiry,
    history_item,
    job_item,
    read_jobs,
    read_run,
    read_runs_of_source,
    run_item,
    serialize,
    sweep_items,
)
from batchdrop.store.records import JobRecord, RunRecord

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef


@dataclass
class RunClaims:
    """Runs as the submit function claims and records them: a claim (a conditional write, so one
    delivery submits), taken over when its owner is gone, and finished with the run's jobs, all or
    nothing; a batch's fresh runs written together."""

    client: DynamoDBClient
    table_name: str
    _: KW_ONLY
    retention: timedelta = RETENTION
    sleep: Callable[[float], None] = time.sleep

    def claim_run(self, run: RunRecord) -> Claim:
        """Create the run record if there is none; otherwise return the stored one."""
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=run_item(run),
                ConditionExpression="attribute_not_exists(PK)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            stored: dict[str, Any] | None = exc.response.get("Item")  # type: ignore[assignment]
            existing = (
                RunRecord.model_validate(deserialize(stored))
                if stored
                else read_run(self.client, self.table_name, run.run_id)
            )
            if existing is None:  # deleted between the two calls: claim again
                return self.claim_run(run)
            return Claim(run=existing, fresh=False)
        return Claim(run=run, fresh=True)

    def reclaim_run(self, previous: RunRecord, owner: str, at: datetime) -> RunRecord:
        """Take over a claim (ours redelivered, or a dead one's); `RecordConflict` if it moved meanwhile."""
        claimed = previous.model_copy(update={"claim_owner": owner, "claimed_at": at})
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=run_item(claimed),
                ConditionExpression="claim_owner = :owner AND claimed_at = :at AND #status = :status",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=serialize(
                    {
                        ":owner": previous.claim_owner,
                        ":at": previous.model_dump(mode="json")["claimed_at"],
                        ":status": previous.status,
                    }
                ),
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise RecordConflict(f"run {previous.run_id} was claimed by someone else meanwhile") from exc
            raise
        return claimed

    def finish_run(
        self, run: RunRecord, jobs: Iterable[JobRecord] = (), child_hashes: Mapping[str, Sequence[str]] | None = None
    ) -> None:
        """Write the run's final submission record and its jobs, all or nothing, if we still own it; first their
        write-once items (children's hashes, by job id, sweeps, their SUBMITTED transitions), the same whoever
        writes them, so that the transaction stays within DynamoDB's 100 items (50 steps, each an array) and
        no job's record is ever without them. A job an earlier attempt of this run recorded already (its
        batch's records were written part way) is left as it is: tracking may have moved it on since."""
        jobs = list(jobs)
        once = self._child_hashes_requests(jobs, child_hashes)
        once += [{"PutRequest": {"Item": item}} for item in sweep_items(jobs, self.retention)]
        once += self._history_requests(jobs)
        batch_write(self.client, self.table_name, once, self.sleep)
        recorded = self._recorded({run.run_id}, jobs)
        items: list[TransactWriteItemTypeDef] = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": job_item(job),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            }
            for job in jobs
            if job.job_id not in recorded
        ]
        items.append(
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": run_item(run),
                    "ConditionExpression": "claim_owner = :owner AND #status = :submitting",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": serialize({":owner": run.claim_owner, ":submitting": "submitting"}),
                }
            }
        )
        try:
            if len(items) == 1:
                self.client.put_item(**items[0]["Put"])
            else:
                self.client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if error_code(exc) in {"ConditionalCheckFailedException", "TransactionCanceledException"}:
                raise RecordConflict(f"run {run.run_id} is no longer ours to finish: {exc}") from exc
            raise

    def _history_requests(self, jobs: Sequence[JobRecord]) -> list[dict[str, Any]]:
        """The jobs' transitions so far (SUBMITTED, or a refused run's FAILED), each expiring with its job."""
        return [
            {"PutRequest": {"Item": history_item(job.job_id, transition, expiry(transition.at, self.retention))}}
            for job in jobs
            for transition in job.history.values()
        ]

    def _child_hashes_requests(
        self, jobs: Sequence[JobRecord], child_hashes: Mapping[str, Sequence[str]] | None
    ) -> list[dict[str, Any]]:
        """The children's hashes of array jobs (by job id), each expiring as its job's sweep and history do."""
        submitted = {job.job_id: job.submitted_at for job in jobs}
        return [
            {"PutRequest": {"Item": child_hashes_item(job_id, hashes, expiry(submitted[job_id], self.retention))}}
            for job_id, hashes in (child_hashes or {}).items()
        ]

    def write_new(
        self,
        runs: Iterable[RunRecord],
        jobs: Iterable[JobRecord],
        child_hashes: Mapping[str, Sequence[str]] | None = None,
        *,
        keep_recorded: bool = False,
    ) -> None:
        """Write records no one else writes yet (fresh claims), with the children's hashes of array jobs (by
        job id) and sweeps' axes and values, 25 to a call, retrying what is left.

        The runs go last, in calls of their own: a run's record says `submitted` (its claim is over) only once
        every item of its jobs is written. A write that fails part way leaves the claims `submitting`, so the
        drops' retries resume them (adopting their jobs by name) and write them whole. `keep_recorded`: after
        such a write, the job records it did write are left as they are (tracking may have moved them on)."""
        runs, jobs = list(runs), list(jobs)
        recorded = self._recorded({run.run_id for run in runs}, jobs) if keep_recorded else set()
        requests = [{"PutRequest": {"Item": job_item(job)}} for job in jobs if job.job_id not in recorded]
        requests += self._child_hashes_requests(jobs, child_hashes)
        requests += [{"PutRequest": {"Item": item}} for item in sweep_items(jobs, self.retention)]
        requests += self._history_requests(jobs)
        batch_write(self.client, self.table_name, requests, self.sleep)
        batch_write(self.client, self.table_name, [{"PutRequest": {"Item": run_item(run)}} for run in runs], self.sleep)

    def _recorded(self, run_ids: set[str], jobs: Sequence[JobRecord]) -> set[str]:
        """Which of the runs' jobs have a record already (an earlier write of theirs, applied in part): one
        batch read."""
        found = read_jobs(
            self.client, self.table_name, [job.job_id for job in jobs if job.run_id in run_ids], self.sleep
        )
        return {job_id for job_id, job in found.items() if job.run_id in run_ids}

    # What resuming a run reads (submit.resume): the run to resume, its jobs, the runs of a file.
    def get_run(self, run_id: str) -> RunRecord | None:
        return read_run(self.client, self.table_name, run_id)

    def get_jobs(self, job_ids: Iterable[str]) -> dict[str, JobRecord]:
        return read_jobs(self.client, self.table_name, job_ids, self.sleep)

    def get_child_hashes(self, job_id: str) -> list[str]:
        """An array job's children's hashes by their index in its plan; [] for a job without them (one
        submitted before they were kept, or a recovery's, whose children are its first job's)."""
        found = self.client.get_item(TableName=self.table_name, Key=child_hashes_key(job_id)).get("Item")
        text = str(deserialize(found).get("hashes", "")) if found else ""
        return [text[start : start + CHILD_HASH_CHARACTERS] for start in range(0, len(text), CHILD_HASH_CHARACTERS)]

    def get_children_states(self, job_id: str) -> str:
        """An array job's children's states as tracking last merged them (`store.child_states`)."""
        found = self.client.get_item(
            TableName=self.table_name, Key=children_key(job_id), ProjectionExpression="states"
        ).get("Item")
        return str(deserialize(found).get("states", "")) if found else ""

    def runs_of_source(self, bucket: str, key: str, limit: int = 20) -> list[RunRecord]:
        """The newest runs made from an S3 key (GSI3), newest first."""
        return read_runs_of_source(self.client, self.table_name, (bucket, key), limit=limit, sleep=self.sleep)
