"""The webhook output: each action as one JSON POST, retried, with a dead-letter file.

The body is the action (id, rule, team, deal or lead, time, message, CRM link); the
``Idempotency-Key`` header is the action id, so a receiver can drop a repeat after a crash. A
non-2xx answer or no answer is retried ``retries`` times with doubling pauses; an action that
still failed is appended to the dead-letter file (one JSON line: the body, the error) and
stays pending for the next run. The address may hold a token: messages show only its scheme,
host and port.

>>> shown_url("https://hooks.example:8443/services/T0/B1/secret?token=x")
'https://hooks.example:8443/…'
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


def shown_url(url: str) -> str:
    """The address without its path, query or credentials (they may be secrets)."""
    p = urlsplit(url)
    host = p.hostname or "?"
    port = f":{p.port}" if p.port else ""
    return f"{p.scheme}://{host}{port}/…"


class DeliveryError(Exception):
    pass


@dataclass
class Webhook:
    url: str
    token: str | None = None
    timeout: float = 10.0
    retries: int = 3
    backoff: float = 1.0

    name = "webhook"

    def post(self, body: dict[str, Any]) -> None:
        """POST one action; DeliveryError (address without secrets, attempts, reason) if it never got a 2xx."""
        data = json.dumps(body, default=str).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": str(body.get("action_id", "")),
                   "User-Agent": "pipelinebi-notify"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        last = "no attempt"
        for attempt in range(1, self.retries + 1):
            req = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 (http(s) checked in settings)
                    if 200 <= resp.status < 300:
                        return
                    last = f"HTTP {resp.status}"
            except urllib.error.HTTPError as e:
                last = f"HTTP {e.code}"
            except urllib.error.URLError as e:
                last = str(getattr(e, "reason", e))
            except (TimeoutError, OSError) as e:
                last = str(e) or type(e).__name__
            if attempt < self.retries:
                time.sleep(self.backoff * 2 ** (attempt - 1))
        raise DeliveryError(f"webhook {shown_url(self.url)}: {last} after {self.retries} attempt"
                            f"{'s' if self.retries != 1 else ''}")


def dead_letter(path: Path, body: dict[str, Any], error: str) -> None:
    """Append one undelivered action (and why) to the dead-letter file, a JSON line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "error": error,
                            "action": body}, default=str) + "\n")
