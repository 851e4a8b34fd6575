# PYTHON_ARGCOMPLETE_OK
"""The `batchdrop` command line: check and plan specs offline, print the spec's JSON Schema; and,
against a deployed stack (`batchdrop_cli.stack`), submit, status, list, cancel and logs.

Exit codes: 0 ok, 1 invalid input, 2 usage or environment errors, 3 a run that
failed (submit --wait). With `--json`, standard output is one JSON document
(see README, "The command line").
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from batchdrop.errors import BatchdropError, ConfigInvalid, ConfigUnavailable, Problem, SpecRejected
from batchdrop.platform.budgets import WorstCase, budget_problems, worst_case
from batchdrop.platform.config import BudgetConfig, PlatformConfig, parse_platform_config
from batchdrop.platform.costs import money_words
from batchdrop.platform.identity import run_id_for_content
from batchdrop.platform.planning import Plan, plan_run
from batchdrop.platform.source import CONFIG_ENV_VAR, config_name, read_config_bytes
from batchdrop.spec.model import JobSpec
from batchdrop.spec.parse import parse_spec
from batchdrop_cli.costs import add_costs_command
from batchdrop_cli.drops import NO_TEAM
from batchdrop_cli.expected import Expected, add_expected_options, expected_json, expected_lines, read_expected
from batchdrop_cli.operations import OperationFailed
from batchdrop_cli.platform_check import add_platform_commands
from batchdrop_cli.reports import add_report_command
from batchdrop_cli.rerun_command import add_rerun_command
from batchdrop_cli.stack import (
    EXIT_RUN_FAILED,
    STDOUT,
    add_stack_commands,
    add_stack_options,
    command,
    print_json,
)

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
DEFAULT_CONFIG = Path("examples/platform.yaml")
SCHEMA_ID = "https://batchdrop.dev/schemas/spec-v1.json"
OFFLINE_EXPECTED = Expected()
MONTH_OFFLINE = "not known offline (the monthly budget is checked when the file is dropped)"


class UsageError(BatchdropError):
    """A command that cannot run as given (exit code 2)."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    _complete(parser)
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except (UsageError, OperationFailed, ConfigUnavailable, ConfigInvalid) as exc:
        print(f"batchdrop: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except NoCredentialsError as exc:
        print(f"batchdrop: {exc}: configure AWS credentials, or pass --profile", file=sys.stderr)
        return EXIT_USAGE
    except (ClientError, BotoCoreError) as exc:
        print(f"batchdrop: AWS refused or could not be reached: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        run = f": `batchdrop status {args.run_id}`" if getattr(args, "run_id", None) else ""
        print(f"\nbatchdrop: stopped waiting; anything submitted goes on{run}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `batchdrop plan ... | head` is fine
        return EXIT_OK
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="batchdrop",
        description="Check, plan and submit AWS Batch job specs, and follow their runs. Exit codes: 0 ok, "
        f"1 invalid input (a rejected spec), 2 usage or environment errors, {EXIT_RUN_FAILED} the run failed "
        "or was cancelled (submit --wait/--follow).",
    )
    parser.add_argument("--version", action="version", version=f"batchdrop {_version()}")
    add_stack_options(parser)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = command(
        commands,
        "validate",
        "check spec files: fields, steps, routing and limits (offline)",
        "batchdrop validate examples/specs/*.yaml",
        "batchdrop validate train.yaml --team vision --config s3://platform-configs/platform.yaml",
        "batchdrop validate train.yaml --json | jq '.files[].problems'",
        details="Exit codes: 0 every file is valid, 1 a file has problems, 2 usage or environment error.",
    )
    validate.add_argument("files", nargs="+", metavar="FILE", help="spec files to check (.yaml, .yml or .json)")
    _add_team_and_config(validate)
    validate.set_defaults(run=_validate)

    plan = command(
        commands,
        "plan",
        "print the exact SubmitJob requests a spec becomes (offline)",
        "batchdrop plan examples/specs/resnet-pipeline.yaml",
        "batchdrop plan train.yaml --team vision --run-id test123 --json",
        "batchdrop --stack batchdrop-prod plan train.yaml --expected",
        details="With --expected it also reads the spec's earlier runs from the stack, for the expected case.",
    )
    plan.add_argument("file", metavar="FILE", help="the spec to plan (.yaml, .yml or .json)")
    _add_team_and_config(plan)
    plan.add_argument("--run-id", help="the run id to plan with (default: derived from the file)")
    add_expected_options(plan)
    plan.set_defaults(run=_plan)

    schema = command(
        commands,
        "schema",
        "print the JSON Schema of the job spec (for editors)",
        "batchdrop schema > spec.schema.json",
        details="It takes no arguments; the schema is always JSON.",
    )
    schema.set_defaults(run=_schema)
    add_stack_commands(commands)
    add_rerun_command(commands)
    add_report_command(commands)
    add_costs_command(commands)
    add_platform_commands(commands)
    return parser


def _version() -> str:
    try:
        return importlib.metadata.version("batchdrop")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that is not installed
        return "unknown (not installed)"


def _complete(parser: argparse.ArgumentParser) -> None:
    """Shell completion where `argcomplete` is installed (README, "The command line"); nothing otherwise."""
    try:
        import argcomplete  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415  # only when completing
    except ImportError:  # a checkout whose environment predates the dependency
        return
    argcomplete.autocomplete(parser)


def _add_team_and_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--team", help="the team the spec runs as (default: the spec's `team`)")
    parser.add_argument(
        "--config",
        help="platform config: a path, s3://bucket/key or ssm:/name "
        f"(default: ${CONFIG_ENV_VAR}, then {DEFAULT_CONFIG})",
    )


def load_cli_config(location: str | None) -> PlatformConfig:
    """The platform config named by `--config`, the environment, or the example."""
    chosen = location or os.environ.get(CONFIG_ENV_VAR)
    if not chosen:
        if not DEFAULT_CONFIG.exists():
            raise UsageError(f"no platform config: pass --config or set {CONFIG_ENV_VAR}")
        chosen = str(DEFAULT_CONFIG)
    try:
        raw = read_config_bytes(chosen)
        return parse_platform_config(raw, config_name(chosen))
    except ConfigUnavailable as exc:
        raise UsageError(str(exc)) from exc
    except ConfigInvalid as exc:
        details = "\n".join(f"  {problem.render()}" for problem in exc.problems)
        raise UsageError(f"the platform config {chosen} is invalid:\n{details}") from exc


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _check_file(path: str, team_option: str | None, config: PlatformConfig, run_id: str | None) -> dict[str, Any]:
    """Validate and plan one file; a JSON-ready result whether it is valid or not."""
    raw = _read(path)
    result: dict[str, Any] = {"file": path, "valid": False, "team": team_option, "problems": [], "warnings": []}
    try:
        parsed = parse_spec(raw, path)
    except SpecRejected as exc:
        result["problems"] = [problem.model_dump() for problem in exc.problems]
        return result
    team = team_option or parsed.spec.team
    result["team"] = team
    if team is None:
        result["problems"] = [NO_TEAM.model_dump()]
        return result
    try:
        plan = plan_run(parsed, team=team, config=config, run_id=run_id or run_id_for_content(Path(path).name, raw))
    except SpecRejected as exc:
        result["problems"] = [problem.model_dump() for problem in exc.problems]
        return result
    worst = worst_case(plan)
    team_config = config.teams[team]
    over = budget_problems(worst, team=team, budget=team_config.budget)  # offline: no month total
    if over:
        result["problems"] = [problem.model_dump() for problem in over]
        return result
    result.update(valid=True, plan=plan, warnings=plan.warnings, worst=worst, budget=team_config.budget)
    return result


def budget_json(worst: WorstCase, budget: BudgetConfig | None, expected: Expected = OFFLINE_EXPECTED) -> dict[str, Any]:
    """A plan's worst case and its team's budget, as `plan --json` shows them (docs/budgets.md)."""
    return {
        "worst_case_usd": round(worst.usd, 2),
        "steps": [
            {
                "step": step.step,
                "worst_case_usd": None if step.usd is None else round(step.usd, 2),
                "words": step.words(),
            }
            for step in worst.steps
        ],
        "unbounded_steps": worst.unbounded,
        "expected": expected_json(expected),
        "per_run_usd": budget.per_run_usd if budget else None,
        "monthly_usd": budget.monthly_usd if budget else None,
        "month_to_date": MONTH_OFFLINE if budget and budget.monthly_usd is not None else None,
    }


def _print_budget(worst: WorstCase, budget: BudgetConfig | None, team: str, expected: Expected) -> None:
    print("\nworst case:")
    for step in worst.steps:
        print(f"  {step.words()}")
    total = f"up to {money_words(worst.usd)}"
    if worst.unbounded:
        total += f", and unbounded: {', '.join(worst.unbounded)} without a timeout"
    if worst.unpriced:
        total += f" ({', '.join(worst.unpriced)} on queues without prices, left out)"
    print(f"  in all: {total}")
    if budget is not None and budget.per_run_usd is not None:
        print(f"  team {team} allows {money_words(budget.per_run_usd)} per run")
    if budget is not None and budget.monthly_usd is not None:
        print(f"  team {team} allows {money_words(budget.monthly_usd)} a month; spent this month: {MONTH_OFFLINE}")
    print("\n".join(expected_lines(expected)))


def _validate(args: argparse.Namespace) -> int:
    config = load_cli_config(args.config)
    results = [_check_file(path, args.team, config, None) for path in args.files]
    valid = all(result["valid"] for result in results)
    if args.json:
        print_json({"valid": valid, "files": [_validation_json(result) for result in results]})
    else:
        for result in results:
            _print_validation(result)
    return EXIT_OK if valid else EXIT_INVALID


def _validation_json(result: dict[str, Any]) -> dict[str, Any]:
    plan: Plan | None = result.get("plan")
    return {
        "file": result["file"],
        "valid": result["valid"],
        "team": result["team"],
        "jobs": [
            {"step": job.step, "queue": job.queue, "hardware": job.hardware, "array_size": job.array_size}
            for job in (plan.jobs if plan else [])
        ],
        "problems": result["problems"],
        "warnings": result["warnings"],
    }


def _print_validation(result: dict[str, Any]) -> None:
    plan: Plan | None = result.get("plan")
    if plan is not None:
        jobs = ", ".join(
            f"{job.step} → {job.queue}" + (f" (array of {job.array_size:,})" if job.array_size else "")
            for job in plan.jobs
        )
        tick = STDOUT.paint("✓", "green")
        print(f"{tick} {result['file']}: valid for team {plan.team}; {len(plan.jobs)} job(s): {jobs}")
    else:
        count = len(result["problems"])
        print(f"{STDOUT.paint('✗', 'red')} {result['file']}: {count} problem{'s' if count != 1 else ''}")
        for problem in result["problems"]:
            print(f"    {Problem.model_validate(problem).render()}")
    for warning in result["warnings"]:
        print(f"    warning: {warning}")


def _plan(args: argparse.Namespace) -> int:
    config = load_cli_config(args.config)
    result = _check_file(args.file, args.team, config, args.run_id)
    plan: Plan | None = result.get("plan")
    if plan is None:
        if args.json:
            print_json(_validation_json(result))
        else:
            _print_validation(result)
        return EXIT_INVALID
    expected = read_expected(args, plan) if args.expected else OFFLINE_EXPECTED  # the stack's earlier runs
    document = plan_json(plan) | {"budget": budget_json(result["worst"], result["budget"], expected)}
    if args.json:
        print_json(document)
        return EXIT_OK
    print(f"run {plan.run_id}: {plan.spec_name} for team {plan.team} ({plan.environment}), {len(plan.jobs)} job(s)")
    for warning in plan.warnings:
        print(f"warning: {warning}")
    for job, shown in zip(plan.jobs, document["jobs"], strict=True):
        array = f", array of {job.array_size:,}" if job.array_size else f", {job.nodes} nodes" if job.nodes else ""
        after = f", after {', '.join(job.depends_on)}" if job.depends_on else ""
        print(f"\n{job.step}: {job.hardware} queue {job.queue}{array}{after}")
        print("SubmitJob request:")
        print(json.dumps(shown["request"], indent=2, ensure_ascii=False))
    _print_budget(result["worst"], result["budget"], plan.team, expected)
    return EXIT_OK


def plan_json(plan: Plan) -> dict[str, Any]:
    """The plan as printed by `plan --json`; dependency job ids are shown as placeholders."""
    document = plan.model_dump(mode="json")
    for shown, job in zip(document["jobs"], plan.jobs, strict=True):
        shown["request"] = job.submit_request({step: f"<job id of {step}>" for step in job.depends_on})
        if job.recovery is None:  # shown only where the spec's retries ask batchdrop to resubmit
            del shown["recovery"]
    return document


def spec_schema() -> dict[str, Any]:
    schema = JobSpec.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def _schema(_: argparse.Namespace) -> int:
    print_json(spec_schema())
    return EXIT_OK
