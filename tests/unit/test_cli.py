"""The `batchdrop` command line, as a user or a script in CI would run it."""

from __future__ import annotations

import argparse
import importlib.metadata
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import jsonschema
import pytest

from batchdrop.spec.documents import load_document
from batchdrop_cli.log_streams import LogStreams
from batchdrop_cli.main import EXIT_INVALID, EXIT_OK, EXIT_USAGE, _parser, main, spec_schema
from batchdrop_cli.operations import OperationFailed, parse_since
from batchdrop_cli.run_logs import RunLogs
from batchdrop_cli.run_views import RunView, shown_status
from batchdrop_cli.stack import Colour
from tests.conftest import EXAMPLE_SPECS, EXAMPLES, ROOT
from tests.unit.test_telling import job

GOLDEN = ROOT / "tests" / "golden"
PLATFORM = str(EXAMPLES / "platform.yaml")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code, out, _ = run(capsys, *argv)
    return code, json.loads(out)


def test_every_example_validates(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", "--config", PLATFORM, *map(str, EXAMPLE_SPECS))
    assert code == EXIT_OK
    assert out.count("✓") == len(EXAMPLE_SPECS)


def test_validate_json_is_one_document_a_script_can_read(capsys: pytest.CaptureFixture[str]) -> None:
    code, document = run_json(capsys, "validate", "--json", "--config", PLATFORM, *map(str, EXAMPLE_SPECS))
    assert code == EXIT_OK
    assert document["valid"] is True
    pipeline = next(f for f in document["files"] if f["file"].endswith("resnet-pipeline.yaml"))
    assert pipeline["jobs"] == [
        {"step": "prep", "queue": "cpu-shared", "hardware": "cpu", "array_size": None},
        {"step": "train", "queue": "gpu-shared", "hardware": "gpu", "array_size": 4},
        {"step": "evaluate", "queue": "cpu-shared", "hardware": "cpu", "array_size": None},
    ]


def test_invalid_spec_exits_1_and_says_where(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: bad\nteam: vision\njob_definition: trainer\nresources: {vcpus: 2, memory: 1}\n")
    code, out, _ = run(capsys, "validate", "--config", PLATFORM, str(bad))
    assert code == EXIT_INVALID
    assert "line 5, column 23: resources.memory: unknown field `memory`; did you mean `memory_mib`?" in out
    assert "resources.memory_mib: this field is required" in out


def test_invalid_spec_json_lists_problems(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: bad\nteam: vision\njob_definition: trainer\nimage: x\n")
    code, document = run_json(capsys, "validate", "--json", "--config", PLATFORM, str(bad))
    assert code == EXIT_INVALID
    problems = document["files"][0]["problems"]
    assert {"path": "image", "code": "forbidden_field", "line": 5, "column": 1}.items() <= problems[0].items()


def test_a_gpu_spec_for_a_team_whose_route_is_cpu_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "platform.yaml"
    config.write_text(
        (EXAMPLES / "platform.yaml").read_text().replace("  - when: {hardware: gpu}\n    queue: gpu-shared\n", "")
    )
    code, out, _ = run(capsys, "validate", "--config", str(config), str(EXAMPLES / "specs" / "gpu-finetune.yaml"))
    assert code == EXIT_INVALID
    assert "no queue takes gpu jobs of team `vision` in `adhoc`" in out


def test_team_option_overrides_and_checks_the_spec(capsys: pytest.CaptureFixture[str]) -> None:
    spec = str(EXAMPLES / "specs" / "cpu-report.yaml")
    code, out, _ = run(capsys, "validate", "--config", PLATFORM, "--team", "vision", spec)
    assert code == EXIT_INVALID
    assert "belongs to team `vision` (its folder) but says team: forecasting" in out


def test_spec_without_team_needs_the_option(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("version: 1\nname: s\njob_definition: trainer\nresources: {vcpus: 1, memory_mib: 512}\n")
    assert run(capsys, "validate", "--config", PLATFORM, str(spec))[0] == EXIT_INVALID
    assert run(capsys, "validate", "--config", PLATFORM, "--team", "vision", str(spec))[0] == EXIT_OK


def test_plan_json_shows_gpu_step_on_gpu_queue_others_on_cpu(capsys: pytest.CaptureFixture[str]) -> None:
    code, plan = run_json(
        capsys, "plan", "--json", "--config", PLATFORM, str(EXAMPLES / "specs" / "resnet-pipeline.yaml")
    )
    assert code == EXIT_OK
    queues = {job["step"]: job["request"]["jobQueue"].rsplit("/", 1)[1] for job in plan["jobs"]}
    assert queues == {"prep": "cpu-shared", "train": "gpu-shared", "evaluate": "cpu-shared"}
    assert plan["jobs"][2]["request"]["dependsOn"] == [{"jobId": "<job id of train>"}]


@pytest.mark.parametrize("spec", EXAMPLE_SPECS, ids=lambda path: path.name)
def test_plan_json_matches_golden(capsys: pytest.CaptureFixture[str], spec: Path) -> None:
    code, plan = run_json(capsys, "plan", "--json", "--config", PLATFORM, str(spec))
    assert code == EXIT_OK
    golden = GOLDEN / f"plan-{spec.stem}.json"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(json.dumps(plan, indent=2, ensure_ascii=False) + "\n")
    assert plan == json.loads(golden.read_text()), f"regenerate with UPDATE_GOLDEN=1 if intended: {golden}"


def test_plan_human_output_names_queues_and_requests(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "plan", "--config", PLATFORM, "--run-id", "r" * 20, str(EXAMPLES / "specs" / "resnet-pipeline.yaml")
    )
    assert code == EXIT_OK
    assert "train: gpu queue gpu-shared, array of 4, after prep" in out
    assert '"jobName": "resnet-sweep-train-rrrrrrrrrrrrrrrrrrrr"' in out


def test_plan_of_invalid_spec_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 1}')
    code, document = run_json(capsys, "plan", "--json", "--config", PLATFORM, "--team", "vision", str(bad))
    assert code == EXIT_INVALID
    assert {p["path"] for p in document["problems"]} == {"name"}


def test_schema_is_valid_json_schema_that_accepts_the_examples(capsys: pytest.CaptureFixture[str]) -> None:
    code, schema = run_json(capsys, "schema")
    assert code == EXIT_OK
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for spec in EXAMPLE_SPECS:
        # Editors read YAML 1.2 (where `on` is a string, not true), as batchdrop does.
        validator.validate(load_document(spec.read_bytes(), "json" if spec.suffix == ".json" else "yaml").data)
    errors = list(validator.iter_errors({"version": 1, "name": "x", "gpu": 1}))
    assert any("gpu" in error.message for error in errors)


def test_published_schema_file_is_current() -> None:
    published = json.loads((ROOT / "docs" / "spec.schema.json").read_text())
    assert published == spec_schema(), "regenerate: .venv/bin/batchdrop schema > docs/spec.schema.json"


@pytest.mark.parametrize(
    "argv",
    [
        ["validate", "--config", PLATFORM, "/no/such/spec.yaml"],
        ["validate", "--config", "/no/such/platform.yaml", str(EXAMPLE_SPECS[0])],
        ["plan", "--config", PLATFORM],
    ],
    ids=["missing-spec", "missing-config", "no-file-argument"],
)
def test_usage_and_environment_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        raise SystemExit(main(argv))
    assert exited.value.code == EXIT_USAGE
    assert "Traceback" not in capsys.readouterr().err


def test_invalid_platform_config_exits_2_with_its_problems(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "platform.yaml"
    config.write_text("version: 1\nqueues: {}\n")
    code, _, err = run(capsys, "validate", "--config", str(config), str(EXAMPLE_SPECS[0]))
    assert code == EXIT_USAGE
    assert "is invalid" in err
    assert "queues: must have at least 1 item" in err


def test_submit_needs_a_team_from_the_spec_or_the_option(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    spec = tmp_path / "no-team.yaml"
    spec.write_text("version: 1\nname: x\njob_definition: trainer\ncommand: [true]\n")

    assert main(["submit", str(spec)]) == EXIT_INVALID  # refused before anything is uploaded
    assert "no team: say `team:` in the spec or pass --team" in capsys.readouterr().out

    assert main(["submit", str(tmp_path / "missing.yaml")]) == EXIT_USAGE
    assert "cannot read" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", datetime(2026, 11, 23, 11, 30, tzinfo=UTC)),
        ("12h", datetime(2026, 11, 23, 0, 0, tzinfo=UTC)),
        ("7d", datetime(2026, 11, 16, 12, 0, tzinfo=UTC)),
        ("2026-11-20", datetime(2026, 11, 20, tzinfo=UTC)),
        ("2026-11-20T08:00:00Z", datetime(2026, 11, 20, 8, tzinfo=UTC)),
    ],
)
def test_list_since_takes_durations_and_dates(text: str, expected: datetime) -> None:
    assert parse_since(text, datetime(2026, 11, 23, 12, 0, tzinfo=UTC)) == expected


def test_list_since_explains_what_it_takes() -> None:
    with pytest.raises(OperationFailed, match="say 30m, 12h, 7d"):
        parse_since("yesterday", datetime(2026, 11, 23, tzinfo=UTC))
    with pytest.raises(OperationFailed, match="before any run"):
        parse_since("1000000d", datetime(2026, 11, 23, tzinfo=UTC))  # past the year 1: not a trace


# ---------------------------------------------------------------------- the command line itself (issue 12)


def test_version_is_the_installed_packages(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == EXIT_OK
    assert capsys.readouterr().out.strip() == f"batchdrop {importlib.metadata.version('batchdrop')}"


def test_global_options_are_taken_after_the_command_too(capsys: pytest.CaptureFixture[str]) -> None:
    spec = str(EXAMPLES / "specs" / "cpu-report.yaml")
    code, document = run_json(capsys, "validate", spec, "--config", PLATFORM, "--json")
    assert code == EXIT_OK
    assert document["valid"] is True
    code, document = run_json(capsys, "--json", "validate", spec, "--config", PLATFORM)
    assert document["valid"] is True

    parser = _parser()
    after = parser.parse_args(["status", "r1", "--stack", "s2", "--region", "eu-west-1", "--profile", "p"])
    assert (after.stack, after.region, after.profile, after.json) == ("s2", "eu-west-1", "p", False)
    both = parser.parse_args(["--stack", "s1", "--endpoint-url", "http://x", "logs", "r1", "--stack", "s2", "--json"])
    assert (both.stack, both.endpoint_url, both.json) == ("s2", "http://x", True)  # after the command wins
    before = parser.parse_args(["--stack", "s1", "--json", "list"])
    assert (before.stack, before.json) == ("s1", True)


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_every_command_has_a_description_explained_arguments_and_an_example(name: str) -> None:
    parser = _subcommands()[name]
    assert parser.description
    assert parser.description.split(". ")[0].count("\n") == 0
    assert parser.epilog
    assert f"batchdrop {name}" in parser.epilog or f"batchdrop --stack batchdrop-prod {name}" in parser.epilog
    for action in parser._actions:
        assert action.help, f"{name}: {action.dest} is not explained"
    assert "examples:" in parser.format_help()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert Colour(_Terminal()).status("FAILED", width=10) == "\033[31mFAILED\033[0m    "
    assert Colour(io.StringIO()).status("FAILED", width=10) == "FAILED    "  # piped
    monkeypatch.setenv("NO_COLOR", "1")
    assert Colour(_Terminal()).status("FAILED") == "FAILED"
    assert Colour(_Terminal()).paint("✓", "green") == "✓"


def test_piped_output_has_no_colour(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    code, out, _ = run(capsys, "validate", "--config", PLATFORM, str(EXAMPLES / "specs" / "cpu-report.yaml"))
    assert code == EXIT_OK
    assert "\033[" not in out


def test_a_cancelled_job_shows_as_cancelled() -> None:
    assert shown_status(job(status="FAILED", failure_class="cancelled")) == "CANCELLED"
    assert shown_status(job(status="FAILED", failure_class="exit_code")) == "FAILED"
    assert shown_status(job(status="RUNNING")) == "RUNNING"


def test_shell_completion_completes_commands_and_options(tmp_path: Path) -> None:
    completions = tmp_path / "completions"
    for line, expected in [("batchdrop lo", {"logs"}), ("batchdrop logs r1 --ind", {"--index"})]:
        environment = {
            **os.environ,
            "_ARGCOMPLETE": "1",
            "COMP_LINE": line,
            "COMP_POINT": str(len(line)),
            "_ARGCOMPLETE_IFS": "\n",
            "_ARGCOMPLETE_STDOUT_FILENAME": str(completions),
        }
        done = subprocess.run(  # the installed command, as the shell runs it
            [str(Path(sys.executable).parent / "batchdrop")],
            check=False,
            env=environment,
            capture_output=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert set(completions.read_text().split()) == expected


# ---------------------------------------------------------------------- logs, offline (fakes of the stack)


class _Logs:
    """CloudWatch Logs' GetLogEvents over a stream that grows while the job runs."""

    meta = type("Meta", (), {"region_name": "us-east-1"})()

    def __init__(self, batches: list[list[str]]) -> None:
        self.batches = batches  # what is written before each read
        self.written: list[str] = []
        self.reads = 0

    def get_log_events(self, **arguments: Any) -> dict[str, Any]:
        if self.reads < len(self.batches):
            self.written += self.batches[self.reads]
        self.reads += 1
        start = int(arguments.get("nextToken", "f/0").split("/")[1])
        events = [{"timestamp": 1_700_000_000_000 + i, "message": m} for i, m in enumerate(self.written)][start:]
        return {"events": events, "nextForwardToken": f"f/{start + len(events)}"}


def test_follow_reads_each_line_once_and_the_last_ones_after_the_job_ends() -> None:
    logs = _Logs([["starting"], [], ["epoch 1"], ["epoch 2", "done"]])
    running = iter([True, True, True, False, False])
    streams = LogStreams(logs=cast(Any, logs), sleep=lambda _: None)
    lines = streams.follow("g", "s", still_running=lambda: next(running))
    assert [line for _, line in lines] == ["starting", "epoch 1", "epoch 2", "done"]


class _Batch:
    def __init__(self) -> None:
        self.asked: list[set[str]] = []

    def describe(self, job_ids: set[str]) -> dict[str, dict[str, Any]]:
        self.asked.append(job_ids)
        return {
            job_id: {
                "jobId": job_id,
                "jobName": "n",
                "jobQueue": "q",
                "status": "FAILED",
                "attempts": [{"container": {"exitCode": 3, "logStreamName": f"trainer/default/{job_id[-1]}"}}],
            }
            for job_id in job_ids
        }


def _array_operations(monkeypatch: pytest.MonkeyPatch, states: str) -> tuple[RunLogs, _Batch]:
    batch = _Batch()
    parent = job(job_id="p1", step="train", array_size=4, status="FAILED", children={"FAILED": 2, "SUCCEEDED": 2})
    view = RunView.model_construct(jobs=[parent])  # type: ignore[call-arg]  # only its jobs are read
    runs = argparse.Namespace(view=lambda run_id: view)
    streams = LogStreams(logs=cast(Any, _Logs([["boom"]])))
    run_logs = RunLogs(runs=cast(Any, runs), table=cast(Any, None), batch=cast(Any, batch), streams=streams)
    monkeypatch.setattr(run_logs, "_children_states", lambda parent_id: states)
    return run_logs, batch


def test_logs_of_a_sweep_are_its_failed_childrens(monkeypatch: pytest.MonkeyPatch) -> None:
    operations, batch = _array_operations(monkeypatch, "06050506")  # children 0 and 3 failed
    sections = operations.sections("r1")
    assert [(section.step, section.index, section.status) for section in sections] == [
        ("train", 0, "FAILED"),
        ("train", 3, "FAILED"),
    ]
    assert batch.asked == [{"p1:0", "p1:3"}]
    assert sections[0].log_stream == "trainer/default/0"
    assert sections[0].lines[0][1] == "boom"


def test_logs_index_reads_one_child_and_refuses_one_the_array_does_not_have(monkeypatch: pytest.MonkeyPatch) -> None:
    operations, _ = _array_operations(monkeypatch, "05050506")
    [section] = operations.sections("r1", index=2)
    assert (section.index, section.status, section.log_stream) == (2, "SUCCEEDED", "trainer/default/2")
    assert "not started" not in (section.missing or "")
    with pytest.raises(OperationFailed, match="children 0 to 3: there is no --index 4"):
        operations.sections("r1", index=4)


def test_logs_of_a_sweep_without_failures_say_how_to_read_a_child(monkeypatch: pytest.MonkeyPatch) -> None:
    operations, _ = _array_operations(monkeypatch, "05050505")
    [section] = operations.sections("r1")
    assert section.missing == "a sweep or array of 4: pass --index N (0 to 3) for one child's logs"
