"""The e-mail output: one digest per run over SMTP, the new actions grouped by team.

Connects with :mod:`smtplib` (STARTTLS and login when configured), retried like the webhook;
the password is never part of a message. The digest's text lists per team each action's time,
why it fired and what to do, with the deal's CRM link when one is configured.

>>> print(digest_text([{"team": "legal", "fired_at": "2026-11-07 10:37", "rule_label": "Negotiation",
...                     "message": "Acme entered Negotiation", "link": None}]))
Legal (1)
  2026-11-07 10:37  Negotiation: Acme entered Negotiation
<BLANKLINE>
"""

from __future__ import annotations

import smtplib
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from ..formatting import value_label
from .webhook import DeliveryError


def digest_text(actions: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    teams: dict[str, list[dict[str, Any]]] = {}
    for a in actions:
        teams.setdefault(str(a["team"]), []).append(a)
    for team, rows in teams.items():
        lines.append(f"{value_label(team)} ({len(rows)})")  # "SDR (3)", not "Sdr (3)"
        for a in rows:
            lines.append(f"  {str(a['fired_at'])[:16]}  {a['rule_label']}: {a['message']}"
                         + (f"  {a['link']}" if a.get("link") else ""))
        lines.append("")
    return "\n".join(lines)


@dataclass
class SmtpDigest:
    host: str
    port: int = 25
    sender: str = "pipelinebi@localhost"
    recipients: tuple[str, ...] = field(default_factory=tuple)
    user: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = 10.0
    retries: int = 3
    backoff: float = 1.0

    name = "email"

    def send(self, actions: list[dict[str, Any]]) -> None:
        """One message listing ``actions``; DeliveryError (host, port, attempts, reason) if it was not accepted."""
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg["Subject"] = f"PipelineBI: {len(actions)} new action{'s' if len(actions) != 1 else ''}"
        msg.set_content(digest_text(actions))
        last = "no attempt"
        for attempt in range(1, self.retries + 1):
            try:
                with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                    if self.starttls:
                        smtp.starttls()
                    if self.user:
                        smtp.login(self.user, self.password or "")
                    smtp.send_message(msg)
                return
            except smtplib.SMTPResponseException as e:
                last = f"SMTP {e.smtp_code}"
            except (smtplib.SMTPException, OSError) as e:
                last = type(e).__name__ + (f": {e.strerror}" if getattr(e, "strerror", None) else "")
            if attempt < self.retries:
                time.sleep(self.backoff * 2 ** (attempt - 1))
        raise DeliveryError(f"e-mail via {self.host}:{self.port}: {last} after {self.retries} attempt"
                            f"{'s' if self.retries != 1 else ''}")
