"""A delivery is visible (#17): what ``pipelinebi notify`` did with each action, read back from its
ledger and dead-letter file (``pipelinebi.notify.status``) and shown on the Action list.

Unit tests read ledgers and dead-letter files written here by hand (sqlite3 and plain JSON lines
in the notifier's format), the broken ones included: missing, empty, truncated, garbage, a
directory, rows or lines that are not records — none may raise, each is said ("delivery record
unreadable: <file>"). The end-to-end test runs the real notifier against a real webhook receiver
(which refuses two chosen actions) and a real SMTP server on 127.0.0.1, twice, then opens the
Action list (AppTest) as everyone and as a manager: each listed action's "Notified" cell and the
line above are checked against what the receiver and the SMTP server actually got.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import datetime, timezone

import duckdb
import pandas as pd
import pytest

from app_support import app_test
from notify_support import Receiver, smtp  # noqa: F401 (smtp: a fixture)
from pipelinebi.notify.run import notify
from pipelinebi.notify.status import read_deliveries
from pipelinebi.settings import Settings
from pipelinebi.warehouse import open_readonly

MANAGER = "apac.manager@pipelinebi.example"  # manager of team APAC (semantic/access.yml)
BOTH = ("webhook", "email")


def _ledger(path, rows) -> None:
    """A ledger as the notifier writes it (table ``deliveries``), from hand-written rows."""
    with closing(sqlite3.connect(path)) as con, con:
        con.execute("CREATE TABLE deliveries (output TEXT NOT NULL, action_id TEXT NOT NULL, state TEXT NOT NULL, "
                    "attempts INTEGER NOT NULL, last_error TEXT, updated_at TEXT NOT NULL, "
                    "PRIMARY KEY (output, action_id))")
        con.executemany("INSERT INTO deliveries VALUES (?, ?, ?, ?, ?, ?)", rows)


def _dead(path, lines) -> None:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines), encoding="utf-8")


def _entry(aid: str, at: str, error: str) -> dict:
    return {"at": at, "error": error, "action": {"action_id": aid, "team": "legal", "message": "m"}}


HOOK_503 = "webhook http://10.0.0.5:9000/…: HTTP 503 after 3 attempts"
ROWS = [("webhook", "a", "sent", 1, None, "2026-11-07T10:37:12+00:00"),
        ("email", "a", "sent", 1, None, "2026-11-07T10:38:00+00:00"),
        ("webhook", "b", "failed", 3, HOOK_503, "2026-11-09T08:00:59+00:00"),
        ("email", "b", "sent", 2, None, "2026-11-07T12:38:00+02:00"),  # written with an offset: shown in UTC
        ("webhook", "z", "failed", 1, "webhook http://10.0.0.5:9000/…: HTTP 500 after 3 attempts",
         "2026-11-09T08:00:00+00:00")]


def test_each_action_in_words(tmp_path):
    _ledger(tmp_path / "n.sqlite", ROWS)
    rec = read_deliveries(tmp_path / "n.sqlite", tmp_path / "n.dead-letter.jsonl", ["a", "b", "c"])
    assert rec.problems == [] and rec.outputs == BOTH
    assert rec.text("a") == "webhook ✓ 2026-11-07 10:37 · email ✓ 2026-11-07 10:38"
    assert rec.text("b") == "webhook failed 3× — retried next run (HTTP 503 after 3 attempts) · email ✓ 2026-11-07 10:38"
    assert rec.text("c") == "webhook not sent yet · email not sent yet"
    # an action no longer open is not sent again: its failure stays, and "not sent" says why
    assert rec.text("b", "done") == ("webhook failed 3× — not retried: action done (HTTP 503 after 3 attempts) · "
                                     "email ✓ 2026-11-07 10:38")
    assert rec.text("c", "expired") == "webhook not sent (expired before a run) · email not sent (expired before a run)"
    assert rec.summary({"a": "open", "b": "open", "c": "open"}) == \
        "1 delivered, 1 failed (webhook: HTTP 503 after 3 attempts); retried at the next run · 1 not sent yet"
    assert rec.summary({"a": "open", "b": "done"}) == \
        "1 delivered, 1 failed (webhook: HTTP 503 after 3 attempts); not retried: no longer open"
    # only the actions asked for are read (the page asks for those the viewer may see): z is not
    assert set(rec.found) == {"a", "b"}
    assert "10.0.0.5" not in " ".join(rec.text(a) for a in "abc") + rec.summary({"b": "open"})
    # with a dead-letter file, the line says where the undelivered messages are
    _dead(tmp_path / "n.dead-letter.jsonl", [_entry("b", "2026-11-09T08:00:59+00:00", HOOK_503)])
    rec = read_deliveries(tmp_path / "n.sqlite", tmp_path / "n.dead-letter.jsonl", ["b"])
    assert rec.summary({"b": "open"}) == ("0 delivered, 1 failed (webhook: HTTP 503 after 3 attempts): "
                                          "see n.dead-letter.jsonl; retried at the next run")


def test_configured_outputs_before_their_first_run(tmp_path):
    _ledger(tmp_path / "n.sqlite", [("webhook", "a", "sent", 1, None, "2026-11-07T10:37:12+00:00")])
    rec = read_deliveries(tmp_path / "n.sqlite", tmp_path / "none.jsonl", ["a"], configured=["email"])
    assert rec.text("a") == "webhook ✓ 2026-11-07 10:37 · email not sent yet" and rec.kind("a") == "not sent"


def test_no_notifier_run_yet(tmp_path):
    rec = read_deliveries(tmp_path / "n.sqlite", tmp_path / "n.dead-letter.jsonl", ["a", "b"])
    assert rec.problems == [] and rec.text("a") == "not sent yet" and rec.kind("a") == "not sent"
    assert rec.summary({"a": "open", "b": "open"}).startswith("not sent yet: no notifier run recorded")
    assert not (tmp_path / "n.sqlite").exists()  # reading never creates a ledger


def _truncated(path):
    _ledger(path, [("webhook", f"action-{i:05d}", "sent", 1, None, "2026-11-07T10:37:12+00:00") for i in range(3000)])
    data = path.read_bytes()
    assert len(data) > 16 * 4096
    path.write_bytes(data[: len(data) // 3])  # a copy cut short, a disk that filled up


def _no_table(path):
    with closing(sqlite3.connect(path)) as con, con:
        con.execute("CREATE TABLE something_else (x INTEGER)")


BROKEN_LEDGERS = {
    "empty": (lambda p: p.write_bytes(b""), "empty file"),
    "garbage": (lambda p: p.write_bytes(bytes(range(256)) * 64), "file is not a database"),
    "text": (lambda p: p.write_text('{"output": "webhook"}\n' * 300), "file is not a database"),
    "truncated": (_truncated, "malformed"),
    "another table": (_no_table, "no deliveries table"),
    "a directory": (lambda p: p.mkdir(), "error"),  # "disk I/O error" or "unable to open", by SQLite version
}


@pytest.mark.parametrize("case", list(BROKEN_LEDGERS))
def test_a_broken_ledger_is_said_never_raised(tmp_path, case):
    make, why = BROKEN_LEDGERS[case]
    make(tmp_path / "n.sqlite")
    rec = read_deliveries(tmp_path / "n.sqlite", tmp_path / "n.dead-letter.jsonl", ["action-00001", "b"])
    assert len(rec.problems) == 1 and rec.problems[0].startswith("delivery record unreadable: n.sqlite (")
    assert why in rec.problems[0]
    # nothing is claimed: not "not sent yet" (it may well have been sent)
    assert rec.text("action-00001") == "unknown: delivery record unreadable" and rec.kind("b") == "unknown"
    assert rec.summary({"action-00001": "open", "b": "open"}) == "0 delivered · 2 unknown"


def test_ledger_rows_that_are_not_records_are_skipped_and_said(tmp_path):
    _ledger(tmp_path / "n.sqlite", [("webhook", "a", "sent", 1, None, "2026-11-07T10:37:12+00:00"),
                                    ("webhook", "b", "maybe", 1, None, "2026-11-07T10:37:12+00:00"),
                                    ("webhook", "c", "failed", 0, "x", "yesterday"),
                                    ("email", "a", "sent", 1, None, "not a time")])
    with closing(sqlite3.connect(tmp_path / "n.sqlite")) as con, con:  # SQLite keeps whatever type it is given
        con.execute("UPDATE deliveries SET attempts = 'two' WHERE action_id = 'c'")
    rec = read_deliveries(tmp_path / "n.sqlite", tmp_path / "none.jsonl", ["a", "b", "c"])
    assert rec.problems == ["delivery record unreadable: n.sqlite (2 rows not understood)"]
    assert rec.text("a") == "webhook ✓ 2026-11-07 10:37 · email ✓"  # the time that is no time is left out
    assert rec.text("b") == "webhook not sent yet · email not sent yet"


def test_without_a_ledger_the_dead_letter_file_tells_the_failures(tmp_path):
    dead = tmp_path / "n.dead-letter.jsonl"
    _dead(dead, [_entry("b", "2026-11-08T09:00:00+00:00", "webhook http://h:1/…: HTTP 500 after 3 attempts"),
                 "this line is not JSON",
                 _entry("b", "2026-11-09T09:00:00+00:00", HOOK_503),
                 [1, 2, 3],
                 {"at": "x", "error": "y", "action": None},
                 _entry("c", "2026-11-09T09:00:00+00:00", HOOK_503),
                 _entry("zz", "2026-11-09T09:00:00+00:00", HOOK_503)])
    with open(dead, "a", encoding="utf-8") as f:
        f.write('{"at": "2026-11-09T09:01:00+00:00", "error": "webh')  # a run cut off mid-line
    rec = read_deliveries(tmp_path / "n.sqlite", dead, ["a", "b", "c"])
    assert rec.problems == ["delivery record unreadable: n.dead-letter.jsonl (4 lines not understood, the first line 2)"]
    assert rec.text("b") == "webhook failed 2× — retried next run (HTTP 503 after 3 attempts)"
    assert rec.text("c") == "webhook failed 1× — retried next run (HTTP 503 after 3 attempts)"
    assert rec.text("a") == "webhook not sent yet" and set(rec.found) == {"b", "c"}
    assert rec.summary({"a": "open", "b": "open", "c": "open"}) == (
        "0 delivered, 2 failed (webhook: HTTP 503 after 3 attempts): see n.dead-letter.jsonl; retried at the next run"
        " · 1 not sent yet")


@pytest.mark.parametrize("content", [b"", b"\xff\xfe\x00garbage\n\x80\x81", b"[[[[\n", b"\n\n"])
def test_a_broken_dead_letter_file_never_raises(tmp_path, content):
    (tmp_path / "n.dead-letter.jsonl").write_bytes(content)
    rec = read_deliveries(tmp_path / "n.sqlite", tmp_path / "n.dead-letter.jsonl", ["a"])
    assert rec.found == {} and rec.text("a") == "not sent yet"
    lines = [x for x in content.split(b"\n") if x.strip()]
    assert rec.problems == ([f"delivery record unreadable: n.dead-letter.jsonl ({len(lines)} line"
                             f"{'s' if len(lines) > 1 else ''} not understood, the first line 1)"] if lines else [])


def test_an_unreadable_ledger_falls_back_on_the_dead_letter_file(tmp_path):
    (tmp_path / "n.sqlite").write_bytes(b"\x00" * 5000)
    _dead(tmp_path / "n.dead-letter.jsonl", [_entry("b", "2026-11-09T09:00:00+00:00", HOOK_503)])
    (tmp_path / "other").mkdir()
    rec = read_deliveries(tmp_path / "n.sqlite", tmp_path / "n.dead-letter.jsonl", ["a", "b"], configured=BOTH)
    assert rec.problems == ["delivery record unreadable: n.sqlite (file is not a database)"]
    assert rec.text("b") == "webhook failed 1× — retried next run (HTTP 503 after 3 attempts) · email unknown"
    assert rec.text("a") == "unknown: delivery record unreadable"
    assert rec.summary({"a": "open", "b": "open"}) == (
        "0 delivered, 1 failed (webhook: HTTP 503 after 3 attempts): see n.dead-letter.jsonl; retried at the next run"
        " · 1 unknown")
    rec = read_deliveries(tmp_path / "n.sqlite", tmp_path / "other", ["b"])  # a directory where the file should be
    assert len(rec.problems) == 2 and rec.problems[1].startswith("delivery record unreadable: other (")


# ----------------------------------------------------------------- the real notifier, then the page
def _open_actions(db) -> pd.DataFrame:
    """Open actions in the notifier's order (oldest first), with the owner's team (row scope)."""
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("""SELECT a.action_id, r.team AS owner_team FROM actions a
                              LEFT JOIN reps r ON r.rep_id = a.owner_id
                              WHERE a.status = 'open' ORDER BY a.fired_at, a.action_id""").df()


def _minutes(t0: datetime, t1: datetime) -> set[str]:
    return {t.strftime("%Y-%m-%d %H:%M") for t in (t0, t1)}


def _notified(at) -> dict[str, str]:
    lists = [d.value for d in at.dataframe if "action_id" in d.value.columns]
    assert lists and all("notified" in df.columns for df in lists)
    shown = pd.concat(lists)
    assert shown["action_id"].is_unique
    return dict(zip(shown["action_id"], shown["notified"]))


def _line(at) -> str:
    found = [w for w in (w.value.replace("\\", "") for w in at.warning) if w.startswith("Delivery:")]
    assert len(found) == 1, [w.value for w in at.warning]
    return found[0]


def test_the_action_list_shows_what_was_delivered_and_what_failed(demo_db, tmp_path, layer, smtp, monkeypatch):  # noqa: F811
    inbox, port = smtp
    actions = _open_actions(demo_db)
    # refused for good by the receiver: the newest open action of team APAC, and the newest of another
    # team (neither is the first sent, which would make the notifier call the whole endpoint down)
    apac = actions[actions["owner_team"] == "APAC"]["action_id"].iloc[-1]
    other = actions[actions["owner_team"].notna() & (actions["owner_team"] != "APAC")]["action_id"].iloc[-1]
    refused = frozenset({apac, other})
    assert actions["action_id"].iloc[0] not in refused
    hook = Receiver(refuse=refused)
    try:
        s = Settings(database=demo_db, notify_state=tmp_path / "notify.sqlite", notify_backoff=0.01, notify_timeout=5,
                     notify_retries=2, notify_webhook_url=hook.url(), notify_smtp_host="127.0.0.1",
                     notify_smtp_port=port, notify_email_to=("revops@example.com",))
        t0 = datetime.now(timezone.utc)
        for _ in range(2):  # the second run retries the two, and fails them again
            with open_readonly(demo_db) as con:
                report = notify(s, layer, con)
            assert report.failed
        t1 = datetime.now(timezone.utc)
    finally:
        hook.close()
    delivered = {b["action_id"] for b, _ in hook.received}
    assert delivered == set(actions["action_id"]) - refused
    # run 1 tried each twice; run 2 tried the older twice and, the endpoint failing its first action of
    # that run, wrote the other off as failed again without waiting on it (notify/run.py)
    assert sorted(hook.attempts[a] for a in refused) == [2, 4]
    assert len(inbox.messages) == 1  # the digest listed every action once, in the first run
    digest = inbox.messages[0][1].get_content()
    with duckdb.connect(str(demo_db), read_only=True) as con:
        messages = dict(con.execute("SELECT action_id, message FROM actions WHERE status = 'open'").fetchall())
    assert all(messages[a] in digest for a in actions["action_id"])
    when = _minutes(t0, t1)

    def expected(aid: str) -> set[str]:
        if aid in refused:
            return {f"webhook failed 2× — retried next run (HTTP 500 after 2 attempts) · email ✓ {t}" for t in when}
        return {f"webhook ✓ {t} · email ✓ {u}" for t in when for u in when}

    # the app knows nothing of the outputs' settings (no secret needed): only where the ledger is
    monkeypatch.setenv("PIPELINEBI_DATABASE", str(demo_db))
    monkeypatch.delenv("PIPELINEBI_SEMANTIC_DIR", raising=False)
    monkeypatch.setenv("PIPELINEBI_NOTIFY_STATE", str(tmp_path / "notify.sqlite"))
    at = app_test("actions").run()
    assert not at.exception, [e.value for e in at.exception]
    shown = _notified(at)
    assert sorted(shown) == sorted(actions["action_id"])
    wrong = {a: v for a, v in shown.items() if v not in expected(a)}
    assert not wrong, wrong
    n = len(actions)
    assert _line(at) == (f"Delivery: {n - 2} delivered, 2 failed (webhook: HTTP 500 after 2 attempts): see "
                         "notify.dead-letter.jsonl; retried at the next run")
    assert "127.0.0.1" not in _line(at) + " ".join(shown.values())  # the address stays in the ledger

    # a manager: only their team's actions, and the line counts only those
    monkeypatch.setenv("PIPELINEBI_AUTH", "oidc")
    at = app_test("actions")
    at.user = {"is_logged_in": True, "email": MANAGER, "email_verified": True, "name": "Ivan Brown"}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    mine = actions[actions["owner_team"] == "APAC"]["action_id"]
    shown = _notified(at)
    assert sorted(shown) == sorted(mine) and apac in shown and other not in shown
    assert not {a: v for a, v in shown.items() if v not in expected(a)}
    assert _line(at) == (f"Delivery: {len(mine) - 1} delivered, 1 failed (webhook: HTTP 500 after 2 attempts): see "
                         "notify.dead-letter.jsonl; retried at the next run")


def test_the_action_list_before_any_notifier_run_and_with_a_broken_ledger(env, tmp_path, monkeypatch):
    monkeypatch.setenv("PIPELINEBI_NOTIFY_STATE", str(tmp_path / "notify.sqlite"))
    at = app_test("actions").run()
    assert not at.exception, [e.value for e in at.exception]
    assert set(_notified(at).values()) == {"not sent yet"}
    assert any(c.value.replace("\\", "").startswith("Delivery: not sent yet: no notifier run recorded")
               for c in at.caption)
    (tmp_path / "notify.sqlite").write_bytes(b"SQLite format 3\x00" + b"\x07" * 3000)  # a header, then garbage
    at = app_test("actions").run()
    assert not at.exception, [e.value for e in at.exception]
    assert set(_notified(at).values()) == {"unknown: delivery record unreadable"}
    warnings = [w.value.replace("\\", "") for w in at.warning]
    assert any(w.startswith("delivery record unreadable: notify.sqlite (") for w in warnings), warnings
