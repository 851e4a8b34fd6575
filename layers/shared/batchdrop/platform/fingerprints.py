"""A planned step's content hash: what decides its outcome, so that a resumed run (docs/resume.md) can tell
an unchanged step from a changed one.

It covers the step's whole SubmitJob request (job definition, queue, command, parameters, environment,
resources, array size, sweep values, retries, timeout, tags) but what names the run — its job name, the
`batchdrop:run-id` tag and the `BATCHDROP_RUN_ID` variable — and the hashes of the steps it depends on,
so a change upstream changes every step after it.

A child of an array or sweep has a hash of its own (`child_hashes`): what its children share (the request
without the array's size and the sweep's table of values) and what is its own (its sweep point, or for a
plain array its index). A resumed sweep reruns only the children whose hash no earlier child that
succeeded had: adding a point to a sweep runs just that point.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from batchdrop.spec.sweep import child_values, is_wrapped

RUN_TAG = "batchdrop:run-id"
RUN_VARIABLE = "BATCHDROP_RUN_ID"


CHILD_HASH_CHARACTERS = 16
"""A child's hash is kept to 64 bits (16 hex digits): 10,000 children's fit one item, and two different
children of one step agree by chance about once in 10^11 resumes."""


def content_hash(request: Mapping[str, Any], upstream: Sequence[str] = ()) -> str:
    """sha256 (hex) of a step's SubmitJob request without what names its run, and of its upstream hashes."""
    return _hash({"request": _unnamed(request), "upstream": list(upstream)})


def child_hashes(
    request: Mapping[str, Any], sweep: Mapping[str, Sequence[str]] | None, size: int, upstream: Sequence[str] = ()
) -> list[str]:
    """Each child's hash, by index, for an array of `size` children (`sweep` gives their points): what the
    children share, with the child's own point (or index, for a plain array)."""
    shared = _unnamed(request)
    shared.pop("arrayProperties", None)
    overrides = shared.get("containerOverrides")
    if overrides and is_wrapped(overrides.get("command") or []):  # the prelude holds every point: drop it
        shared["containerOverrides"] = {**overrides, "command": overrides["command"][4:]}
    common = _hash({"request": shared, "upstream": list(upstream)})
    return [
        _hash({"shared": common, "child": child_values(sweep, index) if sweep else index})[:CHILD_HASH_CHARACTERS]
        for index in range(size)
    ]


def _unnamed(request: Mapping[str, Any]) -> dict[str, Any]:
    """The request without what names its run: its job name, the run tag and variable, its dependencies' ids."""
    kept = {key: value for key, value in request.items() if key not in {"jobName", "dependsOn"}}
    if "tags" in kept:
        kept["tags"] = {key: value for key, value in kept["tags"].items() if key != RUN_TAG}
    if "containerOverrides" in kept:
        kept["containerOverrides"] = _unnamed_overrides(kept["containerOverrides"])
    if nodes := kept.get("nodeOverrides"):  # a multi-node job's: each node range's
        ranges = [
            {**item, "containerOverrides": _unnamed_overrides(item.get("containerOverrides") or {})}
            for item in nodes.get("nodePropertyOverrides") or []
        ]
        kept["nodeOverrides"] = {**nodes, "nodePropertyOverrides": ranges}
    return kept


def _unnamed_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    if "environment" not in overrides:
        return dict(overrides)
    variables = [item for item in overrides["environment"] if item.get("name") != RUN_VARIABLE]
    return {**overrides, "environment": variables}


def _hash(content: object) -> str:
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def step_hashes(steps: Sequence[tuple[str, Mapping[str, Any], Sequence[str]]]) -> dict[str, str]:
    """Step -> content hash, for (step, request, upstream steps) in submission order (upstream first)."""
    hashes: dict[str, str] = {}
    for step, request, depends_on in steps:
        hashes[step] = content_hash(request, [hashes[upstream] for upstream in depends_on])
    return hashes
