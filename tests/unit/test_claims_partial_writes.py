"""A drop's records written again after a write of its batch that DynamoDB applied in part (`RunClaims`, moto
in-process): what the first write left, tracking may have moved on since, and it stays as it is."""

from __future__ import annotations

import boto3
from moto import mock_aws

from batchdrop.store.claims import RunClaims
from batchdrop.store.items import job_item, read_jobs, read_run
from tests.recordkit import create_records_table, job_record, run_of_jobs

TABLE = "records"


def test_a_drop_written_again_keeps_the_job_records_the_partial_write_made_and_adds_the_rest() -> None:
    with mock_aws():
        dynamodb = boto3.client(
            "dynamodb", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        create_records_table(dynamodb, TABLE)
        claims = RunClaims(dynamodb, TABLE, sleep=lambda _: None)
        first, second = job_record("a", "prep"), job_record("b", "train", depends_on=["a"])
        run = run_of_jobs([first, second])
        claims.write_new([], [first])  # what the batch's first BatchWriteItem applied
        moved = first.model_copy(update={"status": "RUNNABLE"})  # tracking, in the seconds since
        dynamodb.put_item(TableName=TABLE, Item=job_item(moved))

        claims.write_new([run], [first, second], keep_recorded=True)

        jobs = read_jobs(dynamodb, TABLE, ["a", "b"], lambda _: None)
        assert (jobs["a"].status, jobs["b"].status) == ("RUNNABLE", "SUBMITTED"), "not put back to SUBMITTED"
        stored = read_run(dynamodb, TABLE, run.run_id)
        assert stored is not None
        assert stored.status == run.status
