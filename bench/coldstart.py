"""Cold start of the submit function (issue 17): its import, and its import + first drop, against boto3's.

Each figure is the fastest of fresh interpreters, interleaved so that drift in the machine's load hits
every variant alike (the fastest: the run least slowed by the other processes on a shared machine; the
medians doubled between two runs of this benchmark when other work ran beside it):

- **boto3**: `import boto3` and the 4 clients the issue's target is measured against (s3, dynamodb,
  batch, sns); with the first drop, also the bare AWS calls that drop needs (GetObject, a conditional
  PutItem, SubmitJob, PutItem: `bench.submit`'s floor for one drop).
- **handler**: importing `functions/submit/app.py` as Lambda does (its services built, its clients
  made); with the first drop, also invoking it with one SQS record of a new drop, against the
  embedded AWS.
- **without the deferrals**: the same, having first imported what the handler imported before
  issue 17 and no longer does (Powertools' parser models and BatchProcessor, the recovery path,
  tracking and publishing) and built the recoverer on a session of its own, as it was.

The pieces say what each part of a cold start costs, measured one after another in one interpreter.
With SnapStart (docs/operations.md), the import is done once per published version, before the
snapshot; what remains per instance is the restore and what the first invocation does.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from batchdrop_local.emulator import SeparateEmbeddedAws
from batchdrop_local.local_stack import create_stack
from batchdrop_local.notifications import s3_put_event, upload

from batchdrop.platform.config import parse_platform_config
from batchdrop.platform.planning import check_and_plan
from bench.report import ROOT, Figure, against_separate_aws, median_seconds_of_python

COLD_TARGET = 1.3
COLD_RUNS = 15
SPEC = ROOT / "examples" / "specs" / "gpu-finetune.yaml"
CLIENTS = ("s3", "dynamodb", "batch", "sns")

_BOTO3 = """
import time
t0 = time.perf_counter()
import boto3
from botocore.config import Config
session = boto3.Session()
clients = {name: session.client(name, config=Config(retries={"mode": "standard"})) for name in %(clients)r}
print(time.perf_counter() - t0)
"""
_BOTO3_FIRST_DROP = (
    _BOTO3
    + """
import json, os
drop = json.loads(open(os.environ["BENCH_DROP"]).read())
clients["s3"].get_object(Bucket=drop["bucket"], Key=drop["key"])["Body"].read()
claim = drop["claim"]
clients["dynamodb"].put_item(TableName=drop["table"], Item=claim, ConditionExpression="attribute_not_exists(PK)")
job_id = clients["batch"].submit_job(**drop["request"])["jobId"]
clients["dynamodb"].put_item(TableName=drop["table"], Item={**drop["claim"], "PK": {"S": "JOB#" + job_id}})
print(time.perf_counter() - t0)
"""
)
# What the submit handler imported and built before issue 17's deferrals, and no longer does.
_EAGER = """
import boto3
import aws_lambda_powertools.utilities.batch
import aws_lambda_powertools.utilities.parser.models
import batchdrop.publish.teller, batchdrop.gateways.topic
import batchdrop.store.recoveries, batchdrop.submit.recovery
import batchdrop.store.job_states, batchdrop.track.tracker, batchdrop.track.reconcile, batchdrop.track.early_retry
"""
_HANDLER = """
import importlib.util, os, sys, time
timings = os.dup(1)
os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # logs and EMF metrics: Lambda sends them down a pipe
t0 = time.perf_counter()
%(eager)s
spec = importlib.util.spec_from_file_location("app", "functions/submit/app.py")
app = importlib.util.module_from_spec(spec)
sys.modules["app"] = app  # as Lambda's import does: pydantic resolves the module's annotations there
spec.loader.exec_module(app)
%(eager_build)s
os.write(timings, f"{time.perf_counter() - t0}\\n".encode())
"""
_EAGER_BUILD = "app.build_recoverer(app.submitter, app.settings, boto3.Session())"
_FIRST_DROP = """
import json, os
class Context:  # what Powertools and the handler read of Lambda's context
    function_name, memory_limit_in_mb, aws_request_id = "SubmitFunction", 512, "coldstart"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:SubmitFunction"
    def get_remaining_time_in_millis(self):
        return 120_000
event = json.loads(open(os.environ["BENCH_DROP"]).read())["event"]
%(before_snapshot)s
t1 = time.perf_counter()
response = app.lambda_handler(event, Context())
assert response == {"batchItemFailures": []}, response
now = time.perf_counter()
os.write(timings, f"{now - t0}\\n{now - t1}\\n".encode())
"""
# What SnapStart's before-snapshot hook does (`batchdrop.wiring.snapstart`): the validators built.
_BEFORE_SNAPSHOT = "from batchdrop.wiring.snapstart import build_validators; build_validators()"
# What any handler validating with pydantic and logging with Powertools imports, none of batchdrop's code:
# boto3 and the handler's own clients, pydantic and its first model, Powertools' Logger and Metrics.
_FLOOR = """
import time
t0 = time.perf_counter()
import boto3
from botocore.config import Config
session = boto3.Session()
clients = {name: session.client(name, config=Config(retries={"mode": "standard"})) for name in %(clients)r}
from pydantic import BaseModel
class Model(BaseModel):
    name: str
from aws_lambda_powertools import Logger, Metrics
Logger(); Metrics()
print(time.perf_counter() - t0)
"""
HANDLER_CLIENTS = ("s3", "dynamodb", "batch")
_PIECES = """
import sys, time
marks = [time.perf_counter()]
import boto3
marks.append(time.perf_counter())
import pydantic
marks.append(time.perf_counter())
from aws_lambda_powertools import Logger, Metrics
Logger(); Metrics()
marks.append(time.perf_counter())
import batchdrop.store.records, batchdrop.events.contract, batchdrop.spec.model, batchdrop.platform.config
marks.append(time.perf_counter())
import batchdrop.wiring.build, batchdrop.submit.submitter
marks.append(time.perf_counter())
import importlib.util
spec = importlib.util.spec_from_file_location("app", "functions/submit/app.py")
app = importlib.util.module_from_spec(spec)
sys.modules["app"] = app
spec.loader.exec_module(app)
marks.append(time.perf_counter())
import aws_lambda_powertools.utilities.batch, aws_lambda_powertools.utilities.parser.models
marks.append(time.perf_counter())
import batchdrop.store.recoveries, batchdrop.submit.recovery
marks.append(time.perf_counter())
import batchdrop.track.reconcile, batchdrop.track.early_retry, batchdrop.publish.teller
marks.append(time.perf_counter())
boto3.Session().client("dynamodb")
marks.append(time.perf_counter())
for start, end in zip(marks, marks[1:]):
    print(end - start)
"""
_TRACER = """
import time
from aws_lambda_powertools import Logger
t0 = time.perf_counter()
from aws_lambda_powertools import Tracer
Tracer()
print(time.perf_counter() - t0)
"""
PIECES = (
    "import boto3",
    "pydantic",
    "Powertools Logger + Metrics",
    "the records, events, spec and platform models (pydantic classes built at import)",
    "the submit path's services (gateways, stores, Submitter, planning, budgets, resume)",
    "the handler module: its clients made (s3, dynamodb, batch), its services built",
    "deferred: Powertools BatchProcessor + parser models",
    "deferred: the recovery path",
    "deferred: tracking and publishing (wiring.build imported them all)",
    "deferred: a second boto3 session's first client (the recoverer's, before)",
)


def run() -> list[Figure]:
    return against_separate_aws(_measure)


def _measure(aws: SeparateEmbeddedAws) -> list[Figure]:
    stack = create_stack(aws)
    function = stack.functions["SubmitFunction"]
    env = {
        key: value
        for key, value in {**os.environ, **aws.environment(), **function.environment}.items()
        if key != "PYTHONDONTWRITEBYTECODE"  # Lambda's packages carry their bytecode; so does the venv
    }
    env.setdefault("AWS_LAMBDA_FUNCTION_NAME", "SubmitFunction")
    samples: dict[str, list[float]] = {name: [] for name in ("boto3", "handler", "eager", "floor")}
    first: dict[str, list[float]] = {name: [] for name in ("boto3", "handler", "eager")}
    drop_only: dict[str, list[float]] = {name: [] for name in ("boto3", "handler", "primed")}
    pieces: list[list[float]] = []
    tracer: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        drops = _Drops(aws, stack, Path(folder))
        for _ in range(COLD_RUNS):  # interleaved, so drift in the machine's load hits all alike
            samples["boto3"] += median_seconds_of_python(_BOTO3 % {"clients": CLIENTS}, 1, env)
            samples["handler"] += median_seconds_of_python(_handler(eager=False), 1, env)
            samples["eager"] += median_seconds_of_python(_handler(eager=True), 1, env)
            samples["floor"] += median_seconds_of_python(_FLOOR % {"clients": HANDLER_CLIENTS}, 1, env)
            pieces.append(median_seconds_of_python(_PIECES, 1, env))
            tracer += median_seconds_of_python(_TRACER, 1, {**env, "POWERTOOLS_TRACE_DISABLED": "false"})
            imported, total = median_seconds_of_python(_BOTO3_FIRST_DROP % {"clients": CLIENTS}, 1, drops.next(env))
            first["boto3"].append(total)
            drop_only["boto3"].append(total - imported)
            _, total, dropped = median_seconds_of_python(_first_drop(eager=False), 1, drops.next(env))
            first["handler"].append(total)
            drop_only["handler"].append(dropped)
            first["eager"].append(median_seconds_of_python(_first_drop(eager=True), 1, drops.next(env))[1])
            drop_only["primed"].append(median_seconds_of_python(_first_drop(snapshot=True), 1, drops.next(env))[2])
    return [
        *_figures(samples, first, pieces),
        *_snapstart_figures(drop_only),
        Figure(
            "Powertools Tracer (the X-Ray SDK) would add",
            min(tracer) * 1000,
            "ms",
            detail="not used: Lambda's active tracing instead (template Globals)",
        ),
    ]


def _handler(eager: bool) -> str:  # one switch: with or without the deferrals
    return _HANDLER % {"eager": _EAGER if eager else "", "eager_build": _EAGER_BUILD if eager else ""}


def _first_drop(eager: bool = False, snapshot: bool = False) -> str:
    """The handler imported, then one drop; it prints the import, import + drop, and the drop alone.
    `snapshot`: SnapStart's before-snapshot hook runs between them, as on a restored instance."""
    return _handler(eager) + _FIRST_DROP % {"before_snapshot": _BEFORE_SNAPSHOT if snapshot else ""}


class _Drops:
    """A new drop for each first-drop run (a drop seen before is a duplicate, not a cold start's work):
    the object uploaded, its SQS event, and the bare calls' payloads, in a file the run reads."""

    def __init__(self, aws: SeparateEmbeddedAws, stack: Any, folder: Path) -> None:
        self.s3 = aws.client("s3")
        self.bucket = stack.outputs["JobsBucketName"]
        self.table = stack.outputs["RecordsTableName"]
        self.folder = folder
        self.count = 0
        self.body = SPEC.read_bytes()

    def next(self, env: dict[str, str]) -> dict[str, str]:
        self.count += 1
        stored = upload(self.s3, self.bucket, f"incoming/vision/coldstart/{self.count:03d}-{SPEC.name}", self.body)
        drop = {
            "event": s3_put_event(stored),
            "bucket": stored.bucket,
            "key": stored.key,
            "table": self.table,
            "claim": {"PK": {"S": f"RUN#coldstart-{self.count}"}, "SK": {"S": "RUN"}},
            "request": _request(self.count),
        }
        path = self.folder / f"drop-{self.count}.json"
        path.write_text(json.dumps(drop))
        return {**env, "BENCH_DROP": str(path)}


def _request(index: int) -> dict[str, Any]:
    """The SubmitJob request the example spec plans (its first job), named for this run."""
    config = parse_platform_config((ROOT / "examples" / "platform.yaml").read_bytes())
    plan = check_and_plan(SPEC.read_bytes(), SPEC.name, team="vision", config=config, run_id=f"{index:020d}")
    return {**plan.jobs[0].request, "jobName": f"coldstart-floor-{index}"}


def _snapstart_figures(drop_only: dict[str, list[float]]) -> list[Figure]:
    """With SnapStart the import is done before the snapshot, once per version; a restored instance's cold
    start is its restore (Lambda's, not measurable here) and its first drop."""
    ms = {name: min(values) * 1000 for name, values in drop_only.items()}
    return [
        Figure(
            "SnapStart: a restored instance's first drop",
            ms["primed"],
            "ms",
            detail=f"its validators built before the snapshot; built on first use instead: {ms['handler']:.0f} ms;"
            f" the drop's bare calls: {ms['boto3']:.0f} ms",
        ),
        Figure("SnapStart: first drop / the drop's bare calls", ms["primed"] / ms["boto3"], "×"),
    ]


def _figures(samples: dict[str, list[float]], first: dict[str, list[float]], pieces: list[list[float]]) -> list[Figure]:
    ms = {name: min(values) * 1000 for name, values in samples.items()}
    first_ms = {name: min(values) * 1000 for name, values in first.items()}
    ratio, eager_ratio, floor_ratio = (ms[name] / ms["boto3"] for name in ("handler", "eager", "floor"))
    first_ratio, first_eager_ratio = first_ms["handler"] / first_ms["boto3"], first_ms["eager"] / first_ms["boto3"]
    figures = [
        Figure(f"import boto3 + {len(CLIENTS)} clients (fastest of {COLD_RUNS})", ms["boto3"], "ms"),
        Figure("import the submit handler", ms["handler"], "ms", detail=f"without the deferrals: {ms['eager']:.0f} ms"),
        Figure(
            "import: handler / boto3",
            ratio,
            "×",
            target=f"≤ {COLD_TARGET}",
            within=ratio <= COLD_TARGET,
            detail=f"without the deferrals: {eager_ratio:.2f}×",
        ),
        Figure(
            "floor: boto3 + the handler's 3 clients + pydantic's first model + Powertools Logger, Metrics",
            floor_ratio,
            "×",
            detail=f"{ms['floor']:.0f} ms: what any handler that validates with pydantic pays, before its own code",
        ),
        Figure(
            "import + first drop: handler",
            first_ms["handler"],
            "ms",
            detail=f"boto3 + clients + the drop's bare calls: {first_ms['boto3']:.0f} ms;"
            f" without the deferrals: {first_ms['eager']:.0f} ms",
        ),
        Figure(
            "import + first drop: handler / boto3",
            first_ratio,
            "×",
            target=f"≤ {COLD_TARGET}",
            within=first_ratio <= COLD_TARGET,
            detail=f"without the deferrals: {first_eager_ratio:.2f}×",
        ),
    ]
    fastest = [min(column) * 1000 for column in zip(*pieces, strict=True)]
    return figures + [Figure(f"piece: {name}", value, "ms") for name, value in zip(PIECES, fastest, strict=True)]


if __name__ == "__main__":
    for figure in run():
        print(figure.line())
