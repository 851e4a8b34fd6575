"""`batchdrop rerun`: the request it drops. The run's own spec file, read back from the jobs bucket, with
`resume: <run id>` (and `rerun: [steps]` for `--steps`) set, as JSON under the run's team folder: the
drop is the front door, so a team's S3 permission is all a rerun needs, and the submit function decides
what is reused (docs/resume.md). It never calls Batch itself. `--set` edits the spec first
(`spec_edits`); the edited spec is checked by the layer's own rules before it is dropped (`request_problems`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from batchdrop.errors import InvalidInput, Problem, SpecRejected
from batchdrop.gateways.bucket import locate_drop
from batchdrop.spec.documents import format_for, load_document
from batchdrop.spec.parse import parse_spec
from batchdrop.store.records import RunRecord
from batchdrop_cli.drops import drop_problems
from batchdrop_cli.operations import OperationFailed
from batchdrop_cli.spec_edits import SpecChange, SpecEdit, apply_edits

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class RunReader(Protocol):  # `batchdrop.store.queries.RecordQueries`
    table_name: str

    def get_run(self, run_id: str) -> RunRecord | None: ...


@dataclass(frozen=True)
class RerunRequest:
    body: bytes
    team: str
    relative_path: str
    """Below incoming/<team>/: the run's file's path, `.rerun-<time>.json` in place of its extension."""
    changes: list[SpecChange] = field(default_factory=list)
    """What `--set` changed, in the order given."""


def rerun_request(
    table: RunReader,
    s3: S3Client,
    run_id: str,
    steps: list[str],
    *,
    now: datetime,
    edits: Sequence[SpecEdit] = (),
) -> RerunRequest:
    """The file that reruns `run_id`, forcing `steps` (and those after them) to run again, with `edits` made."""
    run = table.get_run(run_id)
    if run is None:
        raise OperationFailed(f"no run {run_id!r} in table {table.table_name}")
    if run.status not in {"succeeded", "failed", "cancelled"}:
        raise OperationFailed(f"run {run_id} is {run.status}: rerun it once it has ended (or cancel it first)")
    location = locate_drop(run.source.key)
    document_format = format_for(run.source.key)
    if location is None or not location.in_team_folder or document_format is None:
        raise OperationFailed(f"run {run_id} was not made from a spec file in a team folder: nothing to rerun")
    arguments: dict[str, Any] = {"Bucket": run.source.bucket, "Key": run.source.key}
    if run.source.version_id and run.source.version_id != "null":
        arguments["VersionId"] = run.source.version_id
    try:
        raw = s3.get_object(**arguments)["Body"].read()
    except ClientError as exc:
        raise OperationFailed(f"cannot read run {run_id}'s spec file {run.source.uri}: {exc}") from exc
    if run.spec_digest and hashlib.sha256(raw).hexdigest() != run.spec_digest:
        raise OperationFailed(
            f"{run.source.uri} has changed since run {run_id} was made from it (the bucket keeps no older "
            f"version): drop the spec you want with `resume: {run_id}` instead"
        )
    try:
        data = load_document(raw, document_format).data
    except InvalidInput as exc:
        raise OperationFailed(f"run {run_id}'s spec file cannot be read again: {exc}") from exc
    if not isinstance(data, dict):
        raise OperationFailed(f"run {run_id}'s spec file is not a mapping: nothing to rerun")
    data, changes = apply_edits({key: value for key, value in data.items() if key not in {"resume", "rerun"}}, edits)
    data["resume"] = run_id
    if steps:
        data["rerun"] = steps
    stem = location.relative_path.rsplit(".", 1)[0]
    return RerunRequest(
        body=json.dumps(data, indent=2, ensure_ascii=False, default=str).encode() + b"\n",
        team=run.team,
        relative_path=f"{stem}.rerun-{now.strftime('%Y%m%dT%H%M%S')}.json",
        changes=changes,
    )


def request_problems(request: RerunRequest) -> list[Problem]:
    """Why the stack would reject the request: what `batchdrop submit` checks before uploading, and the
    spec's own rules (a `--set` that breaks one is refused here, in the spec's words); none if it is fine."""
    problems = drop_problems(request.body, request.team, request.relative_path)
    try:
        parse_spec(request.body, request.relative_path)
    except SpecRejected as exc:
        problems += exc.problems
    return problems
