"""What Batch's SubmitJob refuses, checked on a planned request before anything is submitted: a plan that
passes these is one Batch takes (the limits of its API reference)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from batchdrop.spec.model import MAX_ARRAY_SIZE, MAX_DEPENDENCIES, MIN_ARRAY_SIZE
from batchdrop.spec.nodes import MAX_NODES, MIN_NODES

MAX_REQUEST_BYTES = 30 * 1024
MAX_TAGS = 50
MIN_TIMEOUT_SECONDS = 60
MAX_PRIORITY = 9999
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


def batch_limit_violations(request: Mapping[str, Any]) -> list[str]:
    """What in a complete SubmitJob request Batch would refuse, in words; empty when none."""
    problems: list[str] = []
    size = len(_COMPACT_JSON.encode(request))  # ASCII: non-ASCII is escaped, as botocore sends it
    if size > MAX_REQUEST_BYTES:
        problems.append(
            f"the SubmitJob request would be {size / 1024:.1f} KiB; Batch accepts at most "
            f"{MAX_REQUEST_BYTES // 1024} KiB (shorten env, parameters, command or sweep values)"
        )
    tags = request.get("tags") or {}
    if len(tags) > MAX_TAGS:
        problems.append(f"{len(tags)} tags with batchdrop's own; Batch accepts at most {MAX_TAGS}")
    depends = request.get("dependsOn") or []
    if len(depends) > MAX_DEPENDENCIES:
        problems.append(f"{len(depends)} dependencies; Batch accepts at most {MAX_DEPENDENCIES}")
    array = request.get("arrayProperties")
    if array is not None and not MIN_ARRAY_SIZE <= array["size"] <= MAX_ARRAY_SIZE:
        problems.append(f"array size {array['size']}; Batch accepts {MIN_ARRAY_SIZE} to {MAX_ARRAY_SIZE:,}")
    nodes = request.get("nodeOverrides")
    if nodes is not None:
        if not MIN_NODES <= nodes["numNodes"] <= MAX_NODES:
            problems.append(f"{nodes['numNodes']} nodes; Batch runs {MIN_NODES} to {MAX_NODES:,} in one job")
        if array is not None or "containerOverrides" in request:
            problems.append("a multi-node job with an array or container overrides, which Batch refuses")
    timeout = request.get("timeout")
    if timeout is not None and timeout["attemptDurationSeconds"] < MIN_TIMEOUT_SECONDS:
        problems.append(f"a timeout under {MIN_TIMEOUT_SECONDS} seconds")
    priority = request.get("schedulingPriorityOverride")
    if priority is not None and not 0 <= priority <= MAX_PRIORITY:
        problems.append(f"scheduling priority {priority}; Batch accepts 0 to {MAX_PRIORITY}")
    if len(request["jobName"]) > 128 or not request["jobName"][:1].isalnum():
        problems.append(f"job name {request['jobName']!r} breaks Batch's naming rules")
    return problems
