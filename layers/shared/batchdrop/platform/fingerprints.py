"""A planned step's content hash: what decides its outcome, so that a resumed run (docs/resume.md) can tell
an unchanged step from a changed one.

It covers the step's whole SubmitJob request (job definition, queue, command, parameters, environment,
resources, array size, sweep values, retries, timeout, tags) but what names the run — its job name, the
`batchdrop:run-id` tag and the `BATCHDROP_RUN_ID` variable — and the hashes of the steps it depends on,
so a change upstream changes every step after it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

RUN_TAG = "batchdrop:run-id"
RUN_VARIABLE = "BATCHDROP_RUN_ID"


def content_hash(request: Mapping[str, Any], upstream: Sequence[str] = ()) -> str:
    """sha256 (hex) of a step's SubmitJob request without what names its run, and of its upstream hashes."""
    kept = {key: value for key, value in request.items() if key not in {"jobName", "dependsOn"}}
    if "tags" in kept:
        kept["tags"] = {key: value for key, value in kept["tags"].items() if key != RUN_TAG}
    overrides = kept.get("containerOverrides")
    if overrides and "environment" in overrides:
        variables = [item for item in overrides["environment"] if item.get("name") != RUN_VARIABLE]
        kept["containerOverrides"] = {**overrides, "environment": variables}
    content = json.dumps({"request": kept, "upstream": list(upstream)}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def step_hashes(steps: Sequence[tuple[str, Mapping[str, Any], Sequence[str]]]) -> dict[str, str]:
    """Step -> content hash, for (step, request, upstream steps) in submission order (upstream first)."""
    hashes: dict[str, str] = {}
    for step, request, depends_on in steps:
        hashes[step] = content_hash(request, [hashes[upstream] for upstream in depends_on])
    return hashes
