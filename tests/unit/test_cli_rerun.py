"""`batchdrop rerun`'s request: the run's own spec with `resume` (and `rerun`), under its team folder; and
the runs it refuses to rerun, in words."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from batchdrop.store.records import RunRecord, SpecSource
from batchdrop_cli.operations import OperationFailed
from batchdrop_cli.reruns import rerun_request

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
SPEC = b"""\
# a comment
version: 1
name: resnet
resume: latest
steps:
  - {name: prep, command: [python, prep.py], resources: {vcpus: 1, memory_mib: 2048}, job_definition: trainer}
"""


@dataclass
class Runs:
    runs: dict[str, RunRecord]
    table_name: str = "records"

    def get_run(self, run_id: str) -> RunRecord | None:
        return self.runs.get(run_id)


@dataclass
class Bucket:
    objects: dict[tuple[str, str | None], bytes]
    asked: list[dict[str, Any]] = field(default_factory=list)

    def get_object(self, **arguments: Any) -> dict[str, Any]:
        self.asked.append(arguments)
        return {"Body": io.BytesIO(self.objects[(arguments["Key"], arguments.get("VersionId"))])}


def run(status: str = "failed", body: bytes = SPEC, key: str = "incoming/vision/exp/resnet.yaml") -> RunRecord:
    return RunRecord(
        run_id="a" * 20,
        team="vision",
        status=status,  # type: ignore[arg-type]
        source=SpecSource(bucket="jobs", key=key, version_id="v1"),
        received_at=NOW,
        claim_owner="m",
        claimed_at=NOW,
        spec_digest=hashlib.sha256(body).hexdigest(),
    )


def request(record: RunRecord, stored: bytes = SPEC, steps: list[str] | None = None) -> Any:
    bucket = Bucket({(record.source.key, "v1"): stored})
    return rerun_request(Runs({record.run_id: record}), cast(Any, bucket), record.run_id, steps or [], now=NOW)


def test_the_request_is_the_runs_own_spec_with_resume_and_rerun_as_json_beside_it() -> None:
    made = request(run(), steps=["prep"])
    assert (made.team, made.relative_path) == ("vision", "exp/resnet.rerun-20261130T030000.json")
    data = json.loads(made.body)
    assert (data["resume"], data["rerun"], data["name"]) == ("a" * 20, ["prep"], "resnet")


@pytest.mark.parametrize(
    ("record", "stored", "words"),
    [
        (run(status="running"), SPEC, "is running: rerun it once it has ended"),
        (run(), SPEC + b"# edited\n", "has changed since run"),
        (run(key="incoming/stray.yaml"), SPEC, "not made from a spec file in a team folder"),
    ],
)
def test_runs_that_cannot_be_rerun_are_refused_in_words(record: RunRecord, stored: bytes, words: str) -> None:
    with pytest.raises(OperationFailed, match=words):
        request(record, stored)


def test_an_unknown_run_is_refused() -> None:
    with pytest.raises(OperationFailed, match="no run 'nope'"):
        rerun_request(Runs({}), cast(Any, Bucket({})), "nope", [], now=NOW)
