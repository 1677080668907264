"""Real local servers for the notifier's tests (#17), on 127.0.0.1: a webhook receiver (the
standard library's http.server) and an SMTP server (aiosmtpd, fixture ``smtp``) — no mocks.
Used by tests/test_notify.py and tests/test_notify_status.py."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

SECRET = "s3cr3t-path-token"


class Receiver:
    """A webhook receiver on 127.0.0.1: records each POST; ``fail_first`` answers 500 to the
    first attempt for each action id, ``refuse`` to every attempt for those action ids."""

    def __init__(self, port: int = 0, fail_first: bool = False, refuse: frozenset[str] = frozenset()):
        received: list[tuple[dict, dict]] = []
        attempts: dict[str, int] = {}

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = self.headers["Idempotency-Key"]
                attempts[key] = attempts.get(key, 0) + 1
                if (fail_first and attempts[key] == 1) or key in refuse:
                    self.send_response(500)
                    self.end_headers()
                    return
                received.append((body, dict(self.headers)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.received, self.attempts = received, attempts
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{SECRET}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Inbox:
    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content, policy=email.policy.default)))
        return "250 OK"

    def __init__(self):
        self.messages: list = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp():
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    ctl = Controller(inbox, hostname="127.0.0.1", port=free_port())
    ctl.start()
    yield inbox, ctl.port
    ctl.stop()
