"""A stand-in for Slack's incoming webhooks on 127.0.0.1: it keeps every message it is sent, in
memory and, given a journal, one JSON object a line in that file (`batchdrop-local slack` reads it)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Received:
    channel: str
    """The webhook's path: one per team, as Slack gives one URL per channel."""
    payload: dict[str, Any]
    time: datetime

    @property
    def text(self) -> str:
        return str(self.payload.get("text", ""))

    def entry(self) -> dict[str, Any]:
        """What `slack.jsonl` keeps of it: when, where, its text and its blocks."""
        return {
            "time": self.time.isoformat(timespec="milliseconds"),
            "channel": self.channel,
            "text": self.text,
            "blocks": self.payload.get("blocks", []),
        }


class SlackReceiver:
    def __init__(self, journal: Path | None = None) -> None:
        self.received: list[Received] = []
        self.journal = journal
        self._lock = threading.Lock()  # the server answers each post on a thread of its own
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the name http.server calls
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.keep(Received(self.path.strip("/"), json.loads(body or b"{}"), datetime.now(UTC)))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_: Any) -> None:
                return  # quiet: the demo shows what arrives

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="slack-receiver", daemon=True)

    def keep(self, message: Received) -> None:
        with self._lock:
            self.received.append(message)
            if self.journal is not None:
                with self.journal.open("a", encoding="utf-8") as journal:
                    journal.write(json.dumps(message.entry(), ensure_ascii=False) + "\n")

    def start(self) -> SlackReceiver:
        if self.journal is not None:  # a fresh stack, a fresh journal
            self.journal.parent.mkdir(parents=True, exist_ok=True)
            self.journal.write_text("", encoding="utf-8")
        self._thread.start()
        return self

    def url(self, channel: str) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/{channel.strip('#')}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
