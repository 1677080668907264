"""The notifier (#17) against real local servers started here on 127.0.0.1: a webhook receiver
(the standard library's http.server) and an SMTP server (aiosmtpd) — no mocks.

Checked: every open action of the demo database (counted by hand SQL) is POSTed once as JSON
and listed once in one e-mail digest; a rerun sends nothing; an endpoint that is down gives a
clear error (the address without its secret path), a dead-letter line per action, and the
actions are delivered at the next run once it is up, none twice; a flaky endpoint is retried;
no secret appears in any message.
"""

from __future__ import annotations

import json

import duckdb
import pytest

from app_support import ACTION_TEAMS
from notify_support import SECRET, Receiver, free_port, smtp  # noqa: F401 (smtp: a fixture)
from pipelinebi.errors import ConfigError
from pipelinebi.notify.run import notify
from pipelinebi.settings import Settings, get_settings
from pipelinebi.warehouse import open_readonly


@pytest.fixture(scope="module")
def open_ids(demo_db) -> list[str]:
    with duckdb.connect(str(demo_db), read_only=True) as con:
        ids = [r[0] for r in con.execute("SELECT action_id FROM actions WHERE status = 'open'").fetchall()]
    assert ids
    return ids


def _settings(demo_db, tmp_path, **kw) -> Settings:
    return Settings(database=demo_db, notify_state=tmp_path / "notify.sqlite", notify_backoff=0.01,
                    notify_timeout=5, **kw)


def _notify(settings, layer):
    with open_readonly(settings.database) as con:
        return notify(settings, layer, con)


def test_each_open_action_sent_once_by_webhook_and_email(demo_db, tmp_path, layer, open_ids, smtp):
    inbox, port = smtp
    hook = Receiver()
    try:
        s = _settings(demo_db, tmp_path, notify_webhook_url=hook.url(), notify_webhook_token="tok-" + SECRET,
                      notify_smtp_host="127.0.0.1", notify_smtp_port=port, notify_email_to=("revops@example.com",))
        report = _notify(s, layer)
        assert not report.failed, report.render()
        ids = [b["action_id"] for b, _ in hook.received]
        assert sorted(ids) == sorted(open_ids) and len(set(ids)) == len(ids)
        body, headers = hook.received[0]
        assert headers["Idempotency-Key"] == body["action_id"]
        assert headers["Authorization"] == "Bearer tok-" + SECRET
        assert set(body) >= {"rule", "rule_label", "team", "deal_id", "lead_id", "fired_at", "message"}
        assert len(inbox.messages) == 1
        rcpt, msg = inbox.messages[0]
        assert rcpt == ["revops@example.com"] and msg["Subject"] == f"PipelineBI: {len(open_ids)} new actions"
        text = msg.get_content().replace("\r\n", "\n")
        with duckdb.connect(str(demo_db), read_only=True) as con:
            teams = dict(con.execute("SELECT team, count(*) FROM actions WHERE status = 'open' GROUP BY team").fetchall())
            one = con.execute("SELECT message FROM actions WHERE status = 'open' ORDER BY action_id LIMIT 1").fetchone()[0]
        for team, n in teams.items():
            assert f"{ACTION_TEAMS[team]} ({n})" in text  # "SDR (1)", not "Sdr (1)"
        assert one in text
        assert report.render().splitlines() == [
            f"webhook: {len(open_ids)} sent, 0 already sent",
            f"email: a digest of {len(open_ids)} actions to 1 recipient, 0 already sent"]
        # a rerun (or a re-ingest of the same data) sends nothing again
        again = _notify(s, layer)
        assert len(hook.received) == len(open_ids) and len(inbox.messages) == 1
        assert again.render().splitlines() == [f"webhook: 0 sent, {len(open_ids)} already sent",
                                               f"email: nothing new ({len(open_ids)} already sent)"]
        assert SECRET not in report.render() + again.render()
    finally:
        hook.close()


def test_endpoint_down_is_said_dead_lettered_and_retried_next_run(demo_db, tmp_path, layer, open_ids):
    port = free_port()  # nothing listens here yet
    url = f"http://127.0.0.1:{port}/hooks/{SECRET}"
    s = _settings(demo_db, tmp_path, notify_webhook_url=url, notify_retries=2)
    report = _notify(s, layer)
    assert report.failed
    line = report.render()
    assert f"webhook http://127.0.0.1:{port}/…" in line and "after 2 attempts" in line and SECRET not in line
    assert f"{len(open_ids)} not delivered" in line and "retried at the next run" in line
    dead = tmp_path / "notify.dead-letter.jsonl"
    lines = [json.loads(x) for x in dead.read_text().splitlines()]
    assert sorted(x["action"]["action_id"] for x in lines) == sorted(open_ids)
    assert SECRET not in dead.read_text()
    hook = Receiver(port=port)  # the endpoint is back
    try:
        report = _notify(s, layer)
        assert not report.failed and report.render() == f"webhook: {len(open_ids)} sent, 0 already sent"
        assert sorted(b["action_id"] for b, _ in hook.received) == sorted(open_ids)
        _notify(s, layer)
        assert len(hook.received) == len(open_ids)
    finally:
        hook.close()


def test_a_flaky_endpoint_is_retried(demo_db, tmp_path, layer, open_ids):
    hook = Receiver(fail_first=True)
    try:
        report = _notify(_settings(demo_db, tmp_path, notify_webhook_url=hook.url()), layer)
        assert not report.failed, report.render()
        assert sorted(b["action_id"] for b, _ in hook.received) == sorted(open_ids)
        assert set(hook.attempts.values()) == {2}
    finally:
        hook.close()


def test_smtp_down_and_misconfigured(demo_db, tmp_path, layer):
    port = free_port()
    s = _settings(demo_db, tmp_path, notify_smtp_host="127.0.0.1", notify_smtp_port=port, notify_retries=1,
                  notify_smtp_user="bot", notify_smtp_password=SECRET, notify_email_to=("a@example.com",))
    report = _notify(s, layer)
    assert report.failed
    assert report.render().startswith(f"email: e-mail via 127.0.0.1:{port}: ConnectionRefusedError")
    assert SECRET not in report.render()
    with pytest.raises(ConfigError, match="nobody receives the digest"):
        _notify(_settings(demo_db, tmp_path, notify_smtp_host="127.0.0.1"), layer)
    with pytest.raises(ConfigError, match="no notifier output"):
        _notify(_settings(demo_db, tmp_path), layer)


def test_a_bad_secret_setting_is_not_repeated(monkeypatch):
    monkeypatch.setenv("PIPELINEBI_NOTIFY_WEBHOOK_URL", "ftp://hooks.example/" + SECRET)
    with pytest.raises(ConfigError) as e:
        get_settings()
    assert "PIPELINEBI_NOTIFY_WEBHOOK_URL" in str(e.value) and SECRET not in str(e.value)
    assert "http:// or https://" in str(e.value)


