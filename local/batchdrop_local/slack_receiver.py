"""A stand-in for Slack's incoming webhooks on 127.0.0.1: it keeps every message it is sent."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    channel: str
    """The webhook's path: one per team, as Slack gives one URL per channel."""
    payload: dict[str, Any]

    @property
    def text(self) -> str:
        return str(self.payload.get("text", ""))


class SlackReceiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the name http.server calls
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.received.append(Received(self.path.strip("/"), json.loads(body or b"{}")))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_: Any) -> None:
                return  # quiet: the demo shows what arrives

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="slack-receiver", daemon=True)

    def start(self) -> SlackReceiver:
        self._thread.start()
        return self

    def url(self, channel: str) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/{channel.strip('#')}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
