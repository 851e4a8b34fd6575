"""`batchdrop platform check [--config C] [--json]` and `batchdrop platform generate [--output FILE]`: the
platform config against what the account has (docs/platform-check.md).

`check` reads the queues, compute environments, scheduling policies and job definitions the config names
(and the instance types those environments launch) and prints a table per queue and job definition; it
exits 1 when a finding is an error, so a config upload can be gated on it. `generate` writes a starting
config from the account: every queue with its true maxima, hardware, capacity and fair share.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import boto3
import yaml

from batchdrop.gateways.account import AccountGateway, AccountUnreadable
from batchdrop.platform.config import PlatformConfig, parse_platform_config
from batchdrop.platform.drift import DriftReport, JobDefinition, JobQueue, capacity_of, check_account, largest_of
from batchdrop.platform.source import config_name, read_config_bytes
from batchdrop_cli.operations import OperationFailed
from batchdrop_cli.stack import CLIENT_CONFIG, EXIT_INVALID, EXIT_OK, STDOUT, Stack, command, print_json

SEVERITY_WORDS = {"ok": "ok", "warning": "warning", "error": "ERROR"}
SEVERITY_COLOURS = {"ok": "green", "warning": "yellow", "error": "red"}


def add_platform_commands(commands: Any) -> None:
    platform = command(
        commands,
        "platform",
        "check the platform config against the account, or write one from it (docs/platform-check.md)",
        "batchdrop platform check",
        "batchdrop platform check --config new-platform.yaml --json",
        "batchdrop platform generate --output platform.yaml",
    )
    actions = platform.add_subparsers(
        dest="platform_command",
        required=True,
        metavar="ACTION",
        help="check: the config against the account; generate: a config from it",
    )
    check = command(
        actions,
        "check",
        "check the platform config against the account's queues, environments and job definitions",
        "batchdrop platform check",
        "batchdrop platform check --config new-platform.yaml && aws s3 cp new-platform.yaml s3://platform-configs/platform.yaml",
        details="Exit codes: 0 no error (warnings allowed), 1 an error: the config and the account disagree "
        "so that jobs would sit RUNNABLE or be refused, 2 usage or environment error. Default config: the "
        "stack's (its PlatformConfigLocation output).",
    )
    check.add_argument("--config", metavar="C", help="the config to check: a file, s3://bucket/key or ssm:/name")
    check.set_defaults(run=_check)
    generate = command(
        actions,
        "generate",
        "write a starting platform config from the account's job queues and job definitions",
        "batchdrop platform generate",
        "batchdrop platform generate --output platform.yaml",
        details="Every queue with its largest instance's vCPUs, usable memory and GPUs, hardware, capacity "
        "and fair share; one team `platform` with the newest ACTIVE revision of each job definition, and a "
        "route per hardware: add your teams and routes, then `batchdrop platform check --config FILE`.",
    )
    generate.add_argument("--output", metavar="FILE", help="where to write it (default: standard output)")
    generate.set_defaults(run=_generate)


def _account(args: argparse.Namespace) -> AccountGateway:
    session = boto3.Session(profile_name=args.profile, region_name=args.region)
    return AccountGateway(
        session.client("batch", endpoint_url=args.endpoint_url, config=CLIENT_CONFIG),
        session.client("ec2", endpoint_url=args.endpoint_url, config=CLIENT_CONFIG),
    )


def _config(args: argparse.Namespace) -> tuple[str, PlatformConfig]:
    location = args.config
    stack = None
    if not location:
        stack = Stack(args)
        location = stack.resources.config_location
        if not location:
            raise OperationFailed("the stack does not say where its platform config is: pass --config")
    if location.startswith(("s3://", "ssm:")):
        session = stack.session if stack else boto3.Session(profile_name=args.profile, region_name=args.region)
        raw = read_config_bytes(
            location,
            s3_client=session.client("s3", endpoint_url=args.endpoint_url, config=CLIENT_CONFIG),
            ssm_client=session.client("ssm", endpoint_url=args.endpoint_url, config=CLIENT_CONFIG),
        )
    else:
        try:
            raw = Path(location).read_bytes()
        except OSError as exc:
            raise OperationFailed(f"cannot read {location}: {exc.strerror or exc}") from exc
    return location, parse_platform_config(raw, config_name(location))


def _check(args: argparse.Namespace) -> int:
    location, config = _config(args)
    definitions = [arn for team in config.teams.values() for arn in team.job_definitions.values()]
    try:
        account = _account(args).account_for([queue.arn for queue in config.queues.values()], definitions)
    except AccountUnreadable as exc:
        raise OperationFailed(f"cannot read the account: {exc}") from exc
    report = check_account(config, account)
    if args.json:
        print_json(
            {
                "config": location,
                "ok": not report.errors,
                "errors": len(report.errors),
                "warnings": len(report.drifted) - len(report.errors),
                "findings": [asdict(finding) for finding in report.findings],
            }
        )
    else:
        print_report(report, location)
    return EXIT_INVALID if report.errors else EXIT_OK


def print_report(report: DriftReport, location: str) -> None:
    """A table per queue and per job definition, then the verdict in words."""
    subjects: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    for finding in report.findings:
        subjects.setdefault((finding.subject, finding.name), []).append(
            (finding.severity, finding.check, finding.detail)
        )
    width = max(len(check) for rows in subjects.values() for _, check, _ in rows)
    for (subject, name), rows in subjects.items():
        print(f"{subject} {name}")
        for severity, check, detail in rows:
            word = SEVERITY_WORDS[severity]
            shown = STDOUT.paint(word, SEVERITY_COLOURS[severity]) + " " * (7 - len(word))
            print(f"  {shown}  {check.ljust(width)}  {detail}")
        print()
    errors, warnings = len(report.errors), len(report.drifted) - len(report.errors)
    verdict = "the config and the account agree" if not report.drifted else f"{errors} error(s), {warnings} warning(s)"
    print(f"{location}: {verdict}" + (": fix the config or the account before uploading it" if errors else ""))


def _generate(args: argparse.Namespace) -> int:
    gateway = _account(args)
    try:
        queues, definitions = gateway.job_queues(), gateway.latest_definitions()
    except AccountUnreadable as exc:
        raise OperationFailed(f"cannot read the account: {exc}") from exc
    if not queues:
        raise OperationFailed("the account has no job queue in this region: nothing to generate from")
    text = generated_config(queues, definitions)
    if args.output:
        try:
            Path(args.output).write_text(text)
        except OSError as exc:
            raise OperationFailed(f"cannot write {args.output}: {exc.strerror or exc}") from exc
        print(args.output, file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def generated_config(queues: Sequence[JobQueue], definitions: Sequence[JobDefinition]) -> str:
    """A platform config of the account's queues and definitions (loadable as it is, if the account has a
    job definition), with comments saying what is left to the platform team."""
    described: dict[str, dict[str, Any]] = {}
    for queue in sorted(queues, key=lambda queue: queue.name):
        largest = largest_of(queue.environments)
        if largest is None:  # unmanaged or disabled: its maxima are not the account's to tell
            continue
        entry: dict[str, Any] = {
            "arn": queue.arn,
            "hardware": "gpu" if largest.gpus else "cpu",
            "max_vcpus": largest.vcpus,
            "max_memory_mib": largest.memory_mib,
            "max_gpus": largest.gpus,
            "fair_share": queue.scheduling_policy_arn is not None,
        }
        capacity = capacity_of(queue.environments)
        if capacity is not None:
            entry["capacity"] = capacity
        described[queue.name] = entry
    routes = [
        {
            "when": {"hardware": hardware},
            "queue": next(name for name, q in described.items() if q["hardware"] == hardware),
        }
        for hardware in ("gpu", "cpu")
        if any(q["hardware"] == hardware for q in described.values())
    ]
    team: dict[str, Any] = {"job_definitions": {d.name[:64]: d.arn for d in definitions}}
    if multinode := [d.name[:64] for d in definitions if d.type == "multinode"]:
        team["multinode_job_definitions"] = multinode
    if any(q["fair_share"] for q in described.values()):
        team["share_identifier"] = "platform"
    document = {"version": 1, "queues": described, "teams": {"platform": team}, "routes": routes}
    head = (
        "# Written by `batchdrop platform generate` from the account: each queue's largest instance (its vCPUs,\n"
        "# its memory less what the kernel and ECS agent keep, its GPUs), hardware, capacity and fair share.\n"
        "# Add your teams (one `platform` team has every job definition's newest ACTIVE revision), their routes\n"
        "# and prices, then check it: batchdrop platform check --config FILE (docs/platform-check.md).\n"
    )
    return head + yaml.safe_dump(document, sort_keys=False, width=120)
