"""A function's execution environment: its module imported with its environment, in a process of its own.

Lambda gives every function its own process, and the functions rely on it: Powertools keeps the
Lambda context's keys (`function_name`, the request id, the correlation id) in one formatter per
service, its metric set in class attributes, and `load_handler` sets the function's environment
in `os.environ`. Five functions sharing one process share all of that, and a line one function
logs comes out labelled with whichever function was invoked last. So each function runs in a
`Sandbox`: a process started for it (its cold start), invoked over a socket, one invocation at a
time, as one Lambda instance is. Its standard output and error are the process's own: whatever
file descriptors 1 and 2 are when it starts (the demo points them at its log).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path
from types import ModuleType
from typing import Any

from batchdrop_local.stack_model import ACCOUNT_ID, REGION, LocalFunction


@dataclass(frozen=True)
class FakeLambdaContext:
    """The parts of Lambda's context object that Powertools and the handlers read."""

    function_name: str
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = ""
    aws_request_id: str = "local"
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"
    deadline: float = field(default_factory=lambda: time.monotonic() + 60.0)
    """When the invocation times out (`time.monotonic()`): the function's timeout after it began."""

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def load_handler(function: LocalFunction) -> ModuleType:
    """Import the function's module with its environment set, as a cold start does."""
    os.environ.update(function.environment)
    os.environ.setdefault("AWS_LAMBDA_FUNCTION_NAME", function.logical_id)
    os.environ.setdefault("AWS_REGION", REGION)
    module_file, _, _ = function.handler.rpartition(".")
    path = function.code_dir / f"{module_file}.py"
    name = f"batchdrop_function_{function.logical_id}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def invoke(function: LocalFunction, module: ModuleType, event: dict[str, Any]) -> Any:
    handler_name = function.handler.rpartition(".")[2]
    context = FakeLambdaContext(
        function_name=function.logical_id,
        invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function.logical_id}",
        deadline=time.monotonic() + function.timeout,
    )
    return getattr(module, handler_name)(event, context)


class FunctionError(Exception):
    """The function raised (or could not be imported): Lambda's `errorType` and `errorMessage`."""

    def __init__(self, function: str, error_type: str, message: str) -> None:
        super().__init__(f"{function}: {error_type}: {message}")
        self.error_type = error_type


class Sandbox:
    """One function's process. `start()` it, wait for `ready()`, `invoke()` it, `stop()` it."""

    def __init__(self, function: LocalFunction) -> None:
        self.function = function
        self._lock = threading.Lock()  # one invocation at a time, as one Lambda instance

    def start(self) -> Sandbox:
        # A fresh interpreter (never a fork of this one's threads and sockets) that imports no more
        # than the function needs: not multiprocessing's spawn, which imports this program's main module.
        ours, theirs = socket.socketpair()
        with theirs:
            self._process = subprocess.Popen(  # noqa: S603  # our own module, this interpreter, a descriptor
                [sys.executable, "-m", "batchdrop_local.sandbox", str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
            )
        self._connection = Connection(ours.detach())
        self._ended = False
        self._connection.send_bytes(json.dumps(_described(self.function)).encode())
        return self

    def ready(self) -> Sandbox:
        """Wait for the cold start: the module imported, or the error that stopped it."""
        self._reply()
        return self

    def invoke(self, event: dict[str, Any]) -> Any:
        payload = json.dumps(event, default=_json_value).encode()
        with self._lock:
            if self._ended or self._process.poll() is not None:  # it died: Lambda starts another (a cold start)
                self._restart()
            try:
                self._connection.send_bytes(payload)
            except OSError:  # it died since its last reply, unseen until now: a cold start, then this event
                self._restart()
                self._connection.send_bytes(payload)
            return self._reply()

    def stop(self) -> None:
        self._connection.close()  # the process ends when its connection closes
        self._reap(timeout=10)

    def _restart(self) -> None:
        self._connection.close()
        self._reap(timeout=5)
        self.start().ready()

    def _reap(self, timeout: float) -> None:
        try:
            self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=5)

    def _reply(self) -> Any:
        try:
            reply = json.loads(self._connection.recv_bytes())
        except EOFError as exc:
            # Its socket closes a moment before the process can be reaped: remember it ended, so the
            # next invocation starts another rather than writing to a closed socket.
            self._ended = True
            self._reap(timeout=5)
            raise FunctionError(self.function.logical_id, "Runtime.ExitError", "the function's process ended") from exc
        if "errorType" in reply:
            raise FunctionError(self.function.logical_id, reply["errorType"], reply["errorMessage"])
        return reply.get("result")


def _described(function: LocalFunction) -> dict[str, Any]:
    return {
        "logical_id": function.logical_id,
        "code_dir": str(function.code_dir),
        "handler": function.handler,
        "timeout": function.timeout,
        "environment": function.environment,
    }


def _serve(connection: Connection) -> None:
    """The function's process: import it, then answer invocations until its connection closes."""
    described = json.loads(connection.recv_bytes())
    function = LocalFunction(**{**described, "code_dir": Path(described["code_dir"])}, events={})
    # Many processes write to the same file: each line in one write, even under PYTHONUNBUFFERED (which
    # writes `print`'s text and its newline apart, and another process's line can land between them).
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(line_buffering=True, write_through=False)
    os.environ["AWS_LAMBDA_FUNCTION_NAME"] = function.logical_id  # its own, whatever its parent's says
    # Ctrl-C on the demo's terminal reaches every process of it: the parent ends this one (by closing
    # its pipe), never in the middle of an invocation.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        module = load_handler(function)
    except Exception as exc:
        traceback.print_exc()  # as Lambda logs an Init error
        connection.send_bytes(_error(exc))
        return
    connection.send_bytes(b"{}")
    while True:
        try:
            event = json.loads(connection.recv_bytes())
        except (EOFError, OSError):
            return
        try:
            reply = json.dumps({"result": invoke(function, module, event)}, default=_json_value).encode()
        except Exception as exc:
            traceback.print_exc()  # as Lambda logs an unhandled error
            reply = _error(exc)
        connection.send_bytes(reply)


def _error(exc: Exception) -> bytes:
    return json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}).encode()


def _json_value(value: Any) -> Any:
    """What Lambda's JSON has where boto3 gives Python values (binary attributes, times, numbers)."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


if __name__ == "__main__":  # a Sandbox's process: its argument is the file descriptor of its connection
    _serve(Connection(int(sys.argv[1])))
