"""`batchdrop` as a user types it against the local control plane, in a test: `Cli` runs a command and
checks that every AWS call it made is one the stack's OperatorPolicy grants."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from batchdrop_local.control_plane import ControlPlane
from batchdrop_local.stack_model import STACK_NAME
from batchdrop_local.template import load_template
from botocore.client import BaseClient

from batchdrop_cli.main import main


class Cli:
    def __init__(
        self, plane: ControlPlane, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.plane = plane
        self.capsys = capsys
        self.calls: set[str] = set()
        """The IAM actions of every AWS call the commands made."""
        make_api_call = BaseClient._make_api_call  # type: ignore[attr-defined]  # every AWS call passes here

        def recorded(client: BaseClient, operation: str, parameters: dict[str, Any]) -> Any:
            if threading.current_thread() is threading.main_thread():  # the command, not the control plane
                self.calls.add(_iam_action(client.meta.service_model.signing_name, operation))
            return make_api_call(client, operation, parameters)

        monkeypatch.setattr(BaseClient, "_make_api_call", recorded)

    def __call__(self, *arguments: str) -> tuple[int, str, str]:
        """Exit code, standard output and standard error of `batchdrop --stack … ARGUMENTS`; and
        every AWS call it made must be one the stack's OperatorPolicy grants."""
        self.capsys.readouterr()
        code = main(["--stack", STACK_NAME, "--endpoint-url", self.plane.aws.endpoint, *arguments])
        captured = self.capsys.readouterr()
        ungranted = self.calls - OPERATOR_ACTIONS - NEEDS_NO_PERMISSION
        assert not ungranted, f"`batchdrop {arguments[0]}` calls what OperatorPolicy does not grant: {ungranted}"
        return code, without_function_logs(captured.out), without_function_logs(captured.err)

    def json(self, *arguments: str) -> Any:
        code, out, err = self(*arguments, "--json")
        assert code == 0, err
        return json.loads(out)


def _granted_actions(statements: list[Any]) -> set[str]:
    """Every action the policy's statements grant, on either side of an `Fn::If`."""
    granted: set[str] = set()
    for statement in statements:
        if isinstance(statement, dict) and "Fn::If" in statement:
            granted |= _granted_actions([side for side in statement["Fn::If"][1:] if isinstance(side, dict)])
        elif isinstance(statement, dict) and statement.get("Effect") == "Allow":
            action = statement["Action"]
            granted |= {action} if isinstance(action, str) else set(action)
    return granted


def _iam_action(service: str, operation: str) -> str:
    # The few S3 operations whose IAM action has another name.
    return {"s3:HeadObject": "s3:GetObject", "s3:ListObjectsV2": "s3:ListBucket"}.get(
        f"{service}:{operation}", f"{service}:{operation}"
    )


OPERATOR_ACTIONS = _granted_actions(
    load_template()["Resources"]["OperatorPolicy"]["Properties"]["PolicyDocument"]["Statement"]
)
NEEDS_NO_PERMISSION = {"sts:GetCallerIdentity"}


def without_function_logs(text: str) -> str:
    """The functions run in this process and log one JSON object per line (as in Lambda: Powertools'
    `{"level": …}` and EMF's `{"_aws": …}`); the command's own output is the rest (its `--json` documents
    are indented, and the lines of `logs --json` are neither)."""
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith(('{"level"', '{"_aws"')))


def spec_file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return str(path)
