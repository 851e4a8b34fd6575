"""`python -m bench.worker FUNCTION EVENTS.json`: a function's handler in a process of its own.

Imports the function (its cold start, not timed), then invokes it with every
event of the file (timed), counting the DynamoDB write requests it makes and
reading the process's peak memory. Prints one JSON line. The environment is
the function's (the caller passes the template's variables and the
emulator's endpoint), as Lambda would give it.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

from batchdrop_local.runtime import invoke, load_handler
from batchdrop_local.stack_model import LocalFunction

from bench.report import ROOT

WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")


def main(function_dir: str, events_path: str) -> None:
    events = json.loads(Path(events_path).read_text())
    function = LocalFunction(
        logical_id=function_dir.capitalize() + "Function",
        code_dir=ROOT / "functions" / function_dir,
        handler="app.lambda_handler",
        timeout=900,
        environment={},
        events={},
    )
    module = load_handler(function)
    writes = {"count": 0}

    def count(**_: Any) -> None:
        writes["count"] += 1

    for value in vars(module).values():
        for client in _clients_of(value):
            for operation in WRITES:
                client.meta.events.register(f"before-call.dynamodb.{operation}", count)
    stdout = os.dup(1)
    failures = 0
    with Path(os.devnull).open("w") as sink:
        os.dup2(sink.fileno(), 1)  # logs and EMF metrics: Lambda sends them down a pipe, not to a terminal
        try:
            started = time.perf_counter()
            for event in events:
                response = invoke(function, module, event)
                failures += len((response or {}).get("batchItemFailures", []))
            seconds = time.perf_counter() - started
        finally:
            sys.stdout.flush()
            os.dup2(stdout, 1)
    peak_mb = _peak_mb()
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "writes": writes["count"], "failures": failures}))


def _peak_mb() -> float:
    """This process's peak resident memory.

    Not `ru_maxrss`: on Linux, exec folds the forking parent's peak into it (the bench process,
    which holds every event, was the parent). `VmHWM` is the high-water mark of this process's own
    memory, which starts afresh at exec.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _clients_of(service: Any) -> list[Any]:
    """The DynamoDB clients inside a handler's service object (its gateways hold them)."""
    found = []
    for attribute in ("table",):
        table = getattr(service, attribute, None)
        client = getattr(table, "client", None)
        if client is not None and client.meta.service_model.service_name == "dynamodb":
            found.append(client)
    tracker = getattr(service, "tracker", None)
    if tracker is not None:
        found += _clients_of(tracker)
    return found


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
