"""What was delivered where: one row per (output, action) in a small SQLite file.

A delivery is recorded only after the endpoint accepted it, so a crash mid-run resends at most
what was in flight (the webhook carries an ``Idempotency-Key`` for that case); a failure is
recorded with its attempts and reason, and stays pending.

>>> import tempfile, pathlib
>>> led = Ledger(pathlib.Path(tempfile.mkdtemp()) / "n.sqlite")
>>> led.pending("webhook", ["a", "b"])
['a', 'b']
>>> led.sent("webhook", ["a"]); led.failed("webhook", ["b"], "refused")
>>> led.pending("webhook", ["a", "b"]), led.failures("webhook")
(['b'], {'b': (1, 'refused')})
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path


class Ledger:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as con, con:
            con.execute("CREATE TABLE IF NOT EXISTS deliveries (output TEXT NOT NULL, action_id TEXT NOT NULL, "
                        "state TEXT NOT NULL, attempts INTEGER NOT NULL, last_error TEXT, updated_at TEXT NOT NULL, "
                        "PRIMARY KEY (output, action_id))")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def pending(self, output: str, action_ids: list[str]) -> list[str]:
        """``action_ids`` not yet delivered to ``output``, in the order given."""
        with closing(self._connect()) as con:
            done = {r[0] for r in con.execute("SELECT action_id FROM deliveries WHERE output = ? AND state = 'sent'",
                                              (output,))}
        return [a for a in action_ids if a not in done]

    def sent(self, output: str, action_ids: list[str]) -> None:
        self._write(output, action_ids, "sent", None)

    def failed(self, output: str, action_ids: list[str], error: str) -> None:
        self._write(output, action_ids, "failed", error)

    def failures(self, output: str) -> dict[str, tuple[int, str]]:
        """Actions whose last delivery to ``output`` failed: attempts (runs) and the reason."""
        with closing(self._connect()) as con:
            rows = con.execute("SELECT action_id, attempts, last_error FROM deliveries WHERE output = ? AND "
                               "state = 'failed' ORDER BY action_id", (output,)).fetchall()
        return {a: (n, e) for a, n, e in rows}

    def _write(self, output: str, action_ids: list[str], state: str, error: str | None) -> None:
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with closing(self._connect()) as con, con:
            con.executemany(
                "INSERT INTO deliveries VALUES (?, ?, ?, 1, ?, ?) ON CONFLICT (output, action_id) DO UPDATE SET "
                "state = excluded.state, attempts = deliveries.attempts + 1, last_error = excluded.last_error, "
                "updated_at = excluded.updated_at",
                [(output, a, state, error, now) for a in action_ids])
