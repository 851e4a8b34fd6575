"""`batchdrop rerun`'s request: the run's own spec with `resume` (and `rerun`), under its team folder; the
runs it refuses to rerun, in words; and `--set`: what it changes, and the edits it refuses."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from batchdrop.store.records import RunRecord, SpecSource
from batchdrop_cli.main import main
from batchdrop_cli.operations import OperationFailed
from batchdrop_cli.reruns import request_problems, rerun_request
from batchdrop_cli.spec_edits import EditInvalid, parse_edits

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


PIPELINE = b"""\
version: 1
name: resnet
job_definition: trainer
resources: {vcpus: 2, memory_mib: 16384}
env: {DATA: /mnt/data}
steps:
  - {name: prep, command: [python, prep.py]}
  - {name: train, depends_on: [prep], command: [python, train.py], retries: {attempts: 2}}
  - {name: evaluate, depends_on: [train], command: [python, evaluate.py]}
"""


def edited(*arguments: str, body: bytes = PIPELINE) -> Any:
    record = run(body=body)
    bucket = Bucket({(record.source.key, "v1"): body})
    runs = Runs({record.run_id: record})
    return rerun_request(runs, cast(Any, bucket), record.run_id, [], now=NOW, edits=parse_edits(arguments))


def test_set_edits_the_named_step_starting_from_what_it_inherits_and_says_what_changed() -> None:
    made = edited("train.resources.memory_mib=65536", "evaluate.env.SEED=7", "train.retries.attempts=3")
    steps = {step["name"]: step for step in json.loads(made.body)["steps"]}
    assert steps["train"]["resources"] == {"vcpus": 2, "memory_mib": 65536}  # the top-level vcpus kept
    assert steps["train"]["retries"] == {"attempts": 3}
    assert steps["evaluate"]["env"] == {"DATA": "/mnt/data", "SEED": "7"}  # text, as env values are
    assert "resources" not in steps["prep"]
    assert [change.words() for change in made.changes] == [
        "train.resources.memory_mib: 16384 → 65536",
        "evaluate.env.SEED: not set → 7",
        "train.retries.attempts: 2 → 3",
    ]
    assert request_problems(made) == []


def test_set_on_a_spec_without_steps_names_its_one_job_main() -> None:
    single = edited("main.resources.memory_mib=4096", "main.retries.attempts=2", body=SINGLE)
    data = json.loads(single.body)
    assert (data["resources"]["memory_mib"], data["retries"]) == (4096, {"attempts": 2})
    assert request_problems(single) == []


SINGLE = b"""\
version: 1
name: report
job_definition: trainer
command: [python, report.py]
resources: {vcpus: 1, memory_mib: 2048}
"""


@pytest.mark.parametrize(
    ("argument", "words"),
    [
        ("deploy.resources.memory_mib=1", "no step `deploy`; its steps are prep, train, evaluate"),
        ("main.resources.memory_mib=1", "no step `main`; its steps are prep, train, evaluate"),
        ("train.environment.SEED=7", r"`environment` is not a field of `train` \(did you mean `env`\?\); its fields"),
        ("train.resources.memroy_mib=1", r"did you mean `memory_mib`\?\); its fields are vcpus, memory_mib, gpus"),
        ("train.resources.memory_mib.x=1", "`train.resources.memory_mib` holds a value, not fields"),
        ("train.name=fit", "a step's name cannot be set"),
    ],
)
def test_a_set_that_leads_nowhere_names_what_there_is(argument: str, words: str) -> None:
    with pytest.raises(EditInvalid, match=words):
        edited(argument)


@pytest.mark.parametrize("argument", ["train", "train=1", "train.resources.memory_mib", ".memory_mib=1", "a..b=1"])
def test_a_malformed_set_is_refused_before_anything_is_read(argument: str) -> None:
    with pytest.raises(EditInvalid, match=r"give STEP\.FIELD=VALUE"):
        parse_edits([argument])


def test_on_a_spec_without_steps_another_step_name_is_refused() -> None:
    with pytest.raises(EditInvalid, match="the spec has no steps; its one job is the step `main`"):
        edited("train.resources.memory_mib=1", body=SINGLE)


@pytest.mark.parametrize(
    ("argument", "words"),
    [
        ("train.resources.memory_mib=lots", "steps[1].resources.memory_mib"),
        ("train.retries.attempts=30", "steps[1].retries.attempts"),
        ("evaluate.env.lower=1", "steps[2].env.lower"),
    ],
)
def test_a_set_that_breaks_the_spec_is_refused_in_the_specs_own_words(argument: str, words: str) -> None:
    problems = request_problems(edited(argument))
    assert [problem.path for problem in problems][:1] == [words], problems


def test_values_are_read_as_a_spec_file_reads_them() -> None:
    made = edited("train.retries.on_spot_interruption=true", "train.timeout_minutes=90", "train.command=[python, t.py]")
    train = json.loads(made.body)["steps"][1]
    assert (train["retries"]["on_spot_interruption"], train["timeout_minutes"], train["command"]) == (
        True,
        90,
        ["python", "t.py"],
    )


def test_the_command_refuses_a_malformed_set_with_exit_2_and_no_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["rerun", "a" * 20, "--set", "train.resources.memory_mib"])  # no AWS is asked: none is needed
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("batchdrop: --set 'train.resources.memory_mib': give STEP.FIELD=VALUE")
    assert "Traceback" not in err
