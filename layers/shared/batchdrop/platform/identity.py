"""Run ids and Batch job names, derived so that the same input always gives the same ones.

S3 delivers an upload at least once. The run id comes from the object's
identity (its version id, or its ETag and sequencer where the bucket is not
versioned), so a second delivery is the same run and a new upload of the same
key is a new run. Job names come from the run id and step, so a crash between
SubmitJob and the table write is repaired by looking the name up in Batch.
"""

from __future__ import annotations

import base64
import hashlib

RUN_ID_LENGTH = 20
MAX_JOB_NAME = 128


def _digest(*parts: str) -> str:
    joined = "\0".join(parts).encode("utf-8")
    return base64.b32encode(hashlib.sha256(joined).digest()).decode("ascii").lower()[:RUN_ID_LENGTH]


def run_id_for_object(
    bucket: str, key: str, *, version_id: str | None = None, etag: str | None = None, sequencer: str | None = None
) -> str:
    """The run id of an uploaded S3 object (the same for every delivery of one upload)."""
    if version_id and version_id != "null":
        return _digest("s3", bucket, key, "version", version_id)
    return _digest("s3", bucket, key, "etag", etag or "", sequencer or "")


def run_id_for_content(name: str, content: bytes) -> str:
    """A run id for a spec that is not in S3 (the CLI's `plan`): its name and content."""
    return _digest("file", name, hashlib.sha256(content).hexdigest())


def job_name(spec_name: str, step: str, run_id: str) -> str:
    """`<spec>-<step>-<run id>`: readable in the Batch console, unique per run and step.

    Spec and step names are already letters, digits, `-` and `_` (the spec's rules); Batch also
    wants a first character that is a letter or digit, and at most 128 characters.
    """
    room = MAX_JOB_NAME - len(run_id) - 2
    head = spec_name.lstrip("-_") or "job"
    step_part = step[: room // 2]
    head = head[: room - len(step_part)]
    return f"{head}-{step_part}-{run_id}"
