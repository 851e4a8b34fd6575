"""DYNAMODB STREAMS TO LAMBDA: the records table's stream, read as Lambda's event source mapping reads it.

moto keeps a table's stream and serves it (DescribeStream, GetShardIterator,
GetRecords) but invokes nothing. `StreamReader` reads every shard from its
start, hands out the new records in the shape Lambda gives a function
(`aws:dynamodb` records), and keeps its place; `matches` applies the event
source's filter patterns (the forms the template uses: exact values, and `exists` on a leaf).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from batchdrop_local.stack_model import REGION


class StreamReader:
    def __init__(self, aws: Any, stream_arn: str) -> None:
        self.client = aws.client("dynamodbstreams")
        self.stream_arn = stream_arn
        self._after: dict[str, str] = {}
        """Shard -> the sequence number of the last record read from it."""

    def read(self) -> list[dict[str, Any]]:
        """Every record written since the last read, in order, as Lambda hands them over.

        Each read asks for a new iterator after the last record it saw (not the one GetRecords handed
        back last time): when a TransactWriteItems is cancelled, moto restores the table from a copy,
        stream shard included, and an iterator over the old shard would never see another record."""
        shards = self.client.describe_stream(StreamArn=self.stream_arn)["StreamDescription"].get("Shards", [])
        records: list[dict[str, Any]] = []
        for shard in shards:
            shard_id = shard["ShardId"]
            where: dict[str, str] = (
                {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": self._after[shard_id]}
                if shard_id in self._after
                else {"ShardIteratorType": "TRIM_HORIZON"}
            )
            iterator = self.client.get_shard_iterator(StreamArn=self.stream_arn, ShardId=shard_id, **where).get(
                "ShardIterator"
            )
            while iterator is not None:
                page = self.client.get_records(ShardIterator=iterator, Limit=1000)
                found = page.get("Records", [])
                records += [lambda_record(record, self.stream_arn) for record in found]
                if not found:
                    break
                self._after[shard_id] = found[-1]["dynamodb"]["SequenceNumber"]
                iterator = page.get("NextShardIterator")
        return records


def lambda_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record as Lambda's event source mapping hands it to a function."""
    images = dict(record["dynamodb"])
    created = images.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        images["ApproximateCreationDateTime"] = int(created.timestamp())
    return {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion", REGION),
        "dynamodb": images,
        "eventSourceARN": stream_arn,
    }


def matches(record: dict[str, Any], filters: list[dict[str, Any]]) -> bool:
    """Lambda's event filtering: a record passes if any pattern matches (no filters: every record)."""
    return not filters or any(_matches(record, json.loads(entry["Pattern"])) for entry in filters)


def _matches(value: Any, pattern: Any) -> bool:
    if isinstance(pattern, dict):  # a field absent is as good as an empty object: `exists: false` below it holds
        fields = value if isinstance(value, dict) else {}
        return all(_matches(fields.get(key), inner) for key, inner in pattern.items())
    if isinstance(pattern, list):  # allowed values, or `{"exists": bool}`: whether a leaf (not an object) is there
        return any(_allows(value, allowed) for allowed in pattern)
    return bool(value == pattern)


def _allows(value: Any, allowed: Any) -> bool:
    if isinstance(allowed, dict) and set(allowed) == {"exists"}:
        present = value is not None and not isinstance(value, dict | list)
        return present is bool(allowed["exists"])
    return bool(value == allowed)
