"""What the notifier did with each action, read back for the Action list (this module never writes).

``pipelinebi notify`` leaves two files beside the database (:func:`.run.state_path`): the ledger
(SQLite, one row per output and action: sent or failed, how many runs, the last error, when) and
the dead-letter file (a JSON line per action a run could not deliver to the webhook).
:func:`read_deliveries` reads the ledger for the actions a page lists (only those: a viewer's row
scope decides the ids, so nothing about other actions is read out); the dead-letter file is read
only when the ledger cannot tell (missing or unreadable), as the record of what failed. A file
that is empty, truncated or not what it should be never raises: the record says
"delivery record unreadable: <file> (why)" and the states say what is still known.

Each action's state in words (:meth:`DeliveryRecord.text`), per output: ``webhook ✓ 2026-11-07
10:37`` (UTC), ``webhook failed 3× — retried next run (HTTP 500 after 3 attempts)`` (3×: the
notifier runs that failed it; each run retries ``PIPELINEBI_NOTIFY_RETRIES`` times), ``not sent
yet``. Errors are shown without the output's address (it may be internal; the ledger keeps it).

>>> import tempfile, pathlib
>>> from pipelinebi.notify.ledger import Ledger
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> led = Ledger(d / "n.sqlite")
>>> led.sent("webhook", ["a"]); led.failed("webhook", ["b"], "webhook http://h:1/…: HTTP 500 after 3 attempts")
>>> rec = read_deliveries(d / "n.sqlite", d / "n.dead-letter.jsonl", ["a", "b", "c"])
>>> rec.text("a")[:10], rec.text("b"), rec.text("c")
('webhook ✓ ', 'webhook failed 1× — retried next run (HTTP 500 after 3 attempts)', 'webhook not sent yet')
>>> rec.summary({"a": "open", "b": "open", "c": "open"})
'1 delivered, 1 failed (webhook: HTTP 500 after 3 attempts); retried at the next run · 1 not sent yet'
>>> _ = (d / "bad.sqlite").write_bytes(b"not a database at all, just words" * 40)
>>> read_deliveries(d / "bad.sqlite", d / "none.jsonl", ["a"]).problems
['delivery record unreadable: bad.sqlite (file is not a database)']
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

#: the outputs in the order a cell names them (others, from a newer ledger, after these)
OUTPUTS = ("webhook", "email")
STATES = ("sent", "failed")
#: "webhook http://host:8080/…: " / "e-mail via host:25: " before the reason (webhook.py, digest.py)
_ADDRESS = re.compile(r"^(?:webhook|e-mail via) \S+: ")


@dataclass(frozen=True)
class Attempt:
    """One output's last word on one action."""

    output: str
    state: str  #: "sent" or "failed"
    at: str  #: "2026-11-07 10:37" (UTC), "" when the record has no readable time
    runs: int  #: notifier runs that tried it (for a failure: the runs that failed)
    reason: str | None = None


@dataclass
class DeliveryRecord:
    ledger: Path
    dead_letter: Path
    #: outputs a cell reports: configured ones and those the ledger has rows for
    outputs: tuple[str, ...] = ()
    #: action id -> output -> its last attempt (only the ids asked for)
    found: dict[str, dict[str, Attempt]] = field(default_factory=dict)
    #: "delivery record unreadable: <file> (why)", for people
    problems: list[str] = field(default_factory=list)
    #: the ledger was read: what it lacks was not sent
    ledger_read: bool = False
    #: a ledger is there but could not be read: what it would say is unknown, not "not sent"
    ledger_unreadable: bool = False

    def kind(self, action_id: str) -> str:
        """``delivered`` (every output reported sent it), ``failed`` (one's last try failed),
        ``not sent`` or ``unknown`` (the ledger is unreadable and nothing else tells)."""
        got = self.found.get(action_id, {})
        if any(a.state == "failed" for a in got.values()):
            return "failed"
        if self.outputs and all(got.get(o) is not None and got[o].state == "sent" for o in self.outputs):
            return "delivered"
        return "unknown" if self.ledger_unreadable and not got else "not sent"

    def text(self, action_id: str, status: str | None = "open") -> str:
        """The action's delivery in words, per output (``status``: the action's; a failed
        action is retried only while it is open — the notifier sends open actions)."""
        got = self.found.get(action_id, {})
        blind = self.ledger_unreadable  # what the ledger would say is unknown, not "not sent"
        if blind and not got:
            return "unknown: delivery record unreadable"
        still_open = status in (None, "open")
        parts = []
        for out in self.outputs or ("",):
            a = got.get(out)
            name = f"{out} " if out else ""
            if a is None and blind:
                parts.append(f"{name}unknown")
            elif a is None:
                parts.append(f"{name}not sent yet" if still_open else f"{name}not sent ({status} before a run)")
            elif a.state == "sent":
                parts.append(f"{out} ✓ {a.at}".rstrip())
            else:
                then = "retried next run" if still_open else f"not retried: action {status}"
                parts.append(f"{out} failed {a.runs}× — {then}" + (f" ({a.reason})" if a.reason else ""))
        return " · ".join(parts)

    def summary(self, listed: dict[str, str | None]) -> str:
        """One line over ``listed`` (action id -> status): "12 delivered, 1 failed (webhook:
        HTTP 500 after 3 attempts): see <dead-letter file>; retried at the next run · 3 not sent yet"."""
        kinds = Counter(self.kind(a) for a in listed)
        if not self.ledger_read and not self.ledger_unreadable and not any(self.found.values()):
            return ("not sent yet: no notifier run recorded for this database (pipelinebi notify sends the open "
                    "actions to a webhook or an e-mail digest)")
        head = [f"{kinds['delivered']:,} delivered"]
        if kinds["failed"]:
            failures = [a for aid in listed for a in self.found.get(aid, {}).values() if a.state == "failed"]
            reasons = Counter(f"{a.output}: {a.reason}" if a.reason else a.output for a in failures)
            why = reasons.most_common(1)[0][0] + (f", and {len(reasons) - 1} other reason"
                                                 f"{'s' if len(reasons) > 2 else ''}" if len(reasons) > 1 else "")
            failed = f"{kinds['failed']:,} failed ({why})"
            if any(a.output == "webhook" for a in failures) and self.dead_letter.exists():
                failed += f": see {self.dead_letter.name}"
            reopen = any(listed[aid] in (None, "open") and self.kind(aid) == "failed" for aid in listed)
            failed += "; retried at the next run" if reopen else "; not retried: no longer open"
            head.append(failed)
        line = ", ".join(head)
        rest = [f"{kinds['not sent']:,} not sent yet"] if kinds["not sent"] else []
        rest += [f"{kinds['unknown']:,} unknown"] if kinds["unknown"] else []
        return " · ".join([line, *rest])


def unreadable(path: Path, why: str) -> str:
    return f"delivery record unreadable: {path.name} ({why})"


def reason(error: Any) -> str | None:
    """The ledger's error without the output's address.

    >>> reason("webhook https://hooks.example:8443/…: HTTP 503 after 3 attempts")
    'HTTP 503 after 3 attempts'
    >>> reason("e-mail via smtp.example:25: SMTP 550 after 1 attempt")
    'SMTP 550 after 1 attempt'
    """
    if not isinstance(error, str) or not error.strip():
        return None
    return _ADDRESS.sub("", error.strip())[:200]


def _when(value: Any) -> str:
    """An ISO time (the ledger's, UTC) as a person reads it, "" if it is not one."""
    try:
        t = datetime.fromisoformat(str(value))
    except (TypeError, ValueError):
        return ""
    if t.tzinfo is not None:
        t = t.astimezone(timezone.utc)
    return t.strftime("%Y-%m-%d %H:%M")


def _ledger(path: Path, ids: list[str], rec: DeliveryRecord) -> bool:
    """Rows of the ledger for ``ids`` into ``rec``; False when there is no ledger to read."""
    if not path.exists():
        return False
    try:
        if path.stat().st_size == 0:
            rec.problems.append(unreadable(path, "empty file"))
            return False
        # read-only: the app must not create a ledger, nor lock the notifier out for long
        with closing(sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=2)) as con:
            outputs = [r[0] for r in con.execute("SELECT DISTINCT output FROM deliveries")]
            rows = con.execute("SELECT output, action_id, state, attempts, last_error, updated_at FROM deliveries "
                               "WHERE action_id IN (SELECT value FROM json_each(?))", (json.dumps(ids),)).fetchall()
    except (sqlite3.Error, OSError, ValueError) as e:
        why = str(e) or type(e).__name__
        rec.problems.append(unreadable(path, "no deliveries table" if "no such table" in why else why))
        return False
    odd = 0
    for out, aid, state, runs, error, at in rows:
        if not (isinstance(out, str) and isinstance(aid, str) and state in STATES and isinstance(runs, int)
                and runs >= 1):
            odd += 1
            continue
        rec.found.setdefault(aid, {})[out] = Attempt(out, state, _when(at), runs, reason(error))
    rec.outputs = _ordered((*rec.outputs, *(o for o in outputs if isinstance(o, str))))
    if odd:
        rec.problems.append(unreadable(path, f"{odd:,} row{'s' if odd != 1 else ''} not understood"))
    return True


def _dead_letter(path: Path, ids: list[str], rec: DeliveryRecord) -> None:
    """Failures from the dead-letter file (one line per undelivered action per run), for when
    the ledger cannot tell; a line that is not a record (a run cut off mid-line) is skipped and said."""
    if not path.exists():
        return
    wanted = set(ids)
    runs: Counter[str] = Counter()
    last: dict[str, tuple[str, str | None]] = {}
    bad, first_bad = 0, 0
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                    aid = entry["action"]["action_id"]
                    if not isinstance(aid, str):
                        raise TypeError(aid)
                except (ValueError, KeyError, TypeError):
                    bad, first_bad = bad + 1, first_bad or n
                    continue
                if aid in wanted:
                    runs[aid] += 1
                    last[aid] = (_when(entry.get("at")), reason(entry.get("error")))
    except OSError as e:
        rec.problems.append(unreadable(path, e.strerror or type(e).__name__))
        return
    if bad:
        rec.problems.append(unreadable(path, f"{bad:,} line{'s' if bad != 1 else ''} not understood, "
                                             f"the first line {first_bad:,}"))
    for aid, n in runs.items():
        at, why = last[aid]
        rec.found.setdefault(aid, {})["webhook"] = Attempt("webhook", "failed", at, n, why)
    if runs:
        rec.outputs = _ordered((*rec.outputs, "webhook"))


def _ordered(outputs: Iterable[str]) -> tuple[str, ...]:
    seen = set(outputs)
    return tuple(o for o in OUTPUTS if o in seen) + tuple(sorted(seen - set(OUTPUTS)))


def read_deliveries(ledger: Path, dead_letter: Path, action_ids: Iterable[str],
                    configured: Iterable[str] = ()) -> DeliveryRecord:
    """What the notifier's files say about ``action_ids``; ``configured``: the outputs the
    settings name (``webhook``, ``email``), reported even before their first run."""
    ids = [a for a in dict.fromkeys(action_ids) if isinstance(a, str)]
    rec = DeliveryRecord(Path(ledger), Path(dead_letter), outputs=_ordered(configured))
    rec.ledger_read = _ledger(rec.ledger, ids, rec)
    rec.ledger_unreadable = not rec.ledger_read and rec.ledger.exists()
    if not rec.ledger_read:
        _dead_letter(rec.dead_letter, ids, rec)
    return rec


def deliveries_for(settings: Any, action_ids: Iterable[str]) -> DeliveryRecord:
    """:func:`read_deliveries` on the files ``pipelinebi notify`` writes with these settings."""
    from .run import dead_letter_path, state_path

    configured = [n for n, on in (("webhook", settings.notify_webhook_url is not None),
                                  ("email", bool(settings.notify_smtp_host))) if on]
    return read_deliveries(state_path(settings), dead_letter_path(settings), action_ids, configured)
