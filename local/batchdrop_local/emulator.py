"""The embedded AWS: moto in server mode on 127.0.0.1, and the stack created from `template.yaml`.

Every resource is created from the template's own properties through the
ordinary AWS APIs (over HTTP, with real boto3 clients), in dependency order,
so the local stack has the table keys and indexes, queue settings, bucket
notifications and function environments a deployment has. What moto cannot
do is named in `batchdrop_local.bridges`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3

from batchdrop_local import batch_fates, batch_queues, bridges, creators
from batchdrop_local.stack_model import ACCOUNT_ID, REGION, STACK_NAME, Stack
from batchdrop_local.template import Resolver, load_template, parameter_defaults

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}


class EmbeddedAws:
    """moto on a free port of 127.0.0.1, with Docker use switched off for Batch and Lambda."""

    def __init__(self) -> None:
        self.endpoint = ""
        self._clients: dict[str, Any] = {}

    def _new_server(self) -> Any:
        # Imported here: processes that only talk to an emulator elsewhere need not load moto.
        from moto.moto_server.threaded_moto_server import ThreadedMotoServer  # noqa: PLC0415

        # moto is patched in the process that hosts it (the demo's emulator runs in a process of its own)
        bridges.back_up_only_what_a_transaction_writes()
        bridges.serialize_dynamodb_writes()
        batch_fates.keep_submitted_retry_strategies()
        batch_queues.answer_queue_snapshots()
        return ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)

    def start(self) -> EmbeddedAws:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
        self._server = self._new_server()
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.configure()
        return self

    def configure(self) -> None:
        """Batch without Docker finishes jobs at once instead of running containers (see bridges)."""
        self._post("/moto-api/config", {"batch": {"use_docker": False}, "lambda": {"use_docker": False}})

    def reset(self) -> None:
        """Forget every resource (and configuration), as a fresh emulator."""
        self._post("/moto-api/reset", {})
        self.configure()

    def stop(self) -> None:
        self._server.stop()

    def _post(self, path: str, body: dict[str, Any]) -> None:
        request = urllib.request.Request(  # noqa: S310  # loopback, our own server
            self.endpoint + path, data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310
            pass

    def environment(self) -> dict[str, str]:
        """What a process needs in its environment for boto3 to talk to this emulator."""
        return {
            **CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def session(self) -> boto3.Session:
        return boto3.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106  # the emulator takes any credentials
            region_name=REGION,
        )

    def client(self, service: str) -> Any:
        """A client for this emulator (made once per service: creating one costs ~50 ms)."""
        if service not in self._clients:
            self._clients[service] = self.session().client(  # type: ignore[call-overload]
                service, endpoint_url=self.endpoint
            )
        return self._clients[service]


class SeparateEmbeddedAws(EmbeddedAws):
    """The same emulator in a child process: its memory and CPU are not the caller's."""

    def __init__(self) -> None:
        super().__init__()
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> SeparateEmbeddedAws:
        self._process = subprocess.Popen(  # our own module, this interpreter
            [sys.executable, "-m", "batchdrop_local.serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        self.endpoint = self._process.stdout.readline().strip()
        if not self.endpoint.startswith("http://"):
            raise RuntimeError("the emulator process did not start")
        self.configure()
        return self

    def stop(self) -> None:
        if self._process is None:
            return
        assert self._process.stdin is not None
        self._process.stdin.close()  # asks it to stop; a moto busy with state may not, so then it is ended
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=5)
        self._process = None


@contextmanager
def environment_of(aws: EmbeddedAws) -> Iterator[None]:
    """Point boto3 in this process at the emulator for the duration."""
    saved = {name: os.environ.get(name) for name in aws.environment()}
    os.environ.update(aws.environment())
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class _Deployment:
    def __init__(self, aws: EmbeddedAws, template: dict[str, Any], parameters: dict[str, Any]) -> None:
        self.aws = aws
        self.template = template
        self.resolver = Resolver(
            template=template,
            parameters={**parameter_defaults(template), **parameters},
            pseudo={
                "AWS::AccountId": ACCOUNT_ID,
                "AWS::Region": REGION,
                "AWS::Partition": "aws",
                "AWS::StackName": STACK_NAME,
                # Only named in policies here (moto enforces none); the stand-in stack gets its own id.
                "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{STACK_NAME}/local",
                "AWS::URLSuffix": "amazonaws.com",
            },
        )
        self.stack = Stack(resolver=self.resolver)

    def physical_name(self, logical_id: str, *, lower: bool = False) -> str:
        name = f"{STACK_NAME}-{logical_id}"
        return name.lower() if lower else name

    def run(self) -> Stack:
        resources = self.template["Resources"]
        for logical_id in _creation_order(resources):
            declaration = resources[logical_id]
            kind = declaration["Type"]
            if kind in creators.SKIPPED:  # referable, but nothing to create
                self.resolver.refs[logical_id] = f"arn:aws:local:{REGION}:{ACCOUNT_ID}:{logical_id}"
                continue
            if "Condition" in declaration and not self.resolver.condition(declaration["Condition"]):
                continue
            creator = creators.CREATORS.get(kind)
            if creator is None:
                raise NotImplementedError(f"{logical_id}: the local stack cannot create {kind} yet")
            properties = self.resolver.resolve(declaration.get("Properties", {}))
            ref, attributes = creator(self, logical_id, properties)
            self.resolver.refs[logical_id] = ref
            for name, value in attributes.items():
                self.resolver.attributes[(logical_id, name)] = value
        for name, output in self.template.get("Outputs", {}).items():
            value = self.resolver.resolve(output["Value"])
            self.stack.outputs[name] = str(value)
        return self.stack


def deploy(aws: EmbeddedAws, parameters: dict[str, Any], template: dict[str, Any] | None = None) -> Stack:
    """Create every resource of the template in the emulator; return what was made."""
    return _Deployment(aws, template or load_template(), parameters).run()


def _references(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.add(item)
            elif key == "Fn::GetAtt":
                found.add(item[0])
            elif key == "Fn::Sub":
                text = item if isinstance(item, str) else item[0]
                found.update(match.split(".")[0] for match in re.findall(r"\$\{([^}!]+)\}", text))
                if not isinstance(item, str):
                    found.update(_references(item[1]))
            else:
                found.update(_references(item))
    elif isinstance(value, list):
        for item in value:
            found.update(_references(item))
    return found


def _creation_order(resources: dict[str, Any]) -> list[str]:
    depends: dict[str, set[str]] = {}
    for logical_id, declaration in resources.items():
        needed = _references(declaration.get("Properties", {}))
        explicit = declaration.get("DependsOn", [])
        needed.update([explicit] if isinstance(explicit, str) else explicit)
        depends[logical_id] = {name for name in needed if name in resources and name != logical_id}
    order: list[str] = []
    while len(order) < len(resources):
        ready = sorted(name for name in resources if name not in order and depends[name] <= set(order))
        if not ready:
            raise ValueError(f"circular references among {sorted(set(resources) - set(order))}")
        order.extend(ready)
    return order
