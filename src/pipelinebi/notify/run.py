"""``pipelinebi notify``: the open actions, each sent once to every configured output.

>>> from pipelinebi.settings import Settings
>>> outputs_from(Settings(notify_webhook_url=None, notify_smtp_host=None))
[]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..compiler.query import Filter, Query
from ..crm_links import deal_url
from ..errors import ConfigError, Problem
from ..settings import Settings
from .digest import SmtpDigest
from .ledger import Ledger
from .webhook import DeliveryError, Webhook, dead_letter

#: what an action says, as dimensions of the semantic layer (model ``actions``)
FIELDS = {"action_id": "action_id", "action_rule": "rule", "action_rule_label": "rule_label", "action_team": "team",
          "action_subject": "subject", "deal_id": "deal_id", "action_lead_id": "lead_id", "deal_name": "deal_name",
          "fired_at": "fired_at", "action_message": "message"}
OPEN_ACTIONS = Query(metrics=("actions_fired",), dimensions=tuple(FIELDS),
                     filters=(Filter(dimension="action_status", value="open"),),
                     order_by=(("fired_at", False), ("action_id", False)))


@dataclass
class NotifyReport:
    lines: list[str] = field(default_factory=list)
    failed: bool = False

    def render(self) -> str:
        return "\n".join(self.lines)


def outputs_from(settings: Settings) -> list[Any]:
    """The outputs the settings configure (webhook, e-mail digest), secrets read here and nowhere shown."""
    out: list[Any] = []
    common = dict(timeout=settings.notify_timeout, retries=settings.notify_retries, backoff=settings.notify_backoff)
    if settings.notify_webhook_url is not None:
        token = settings.notify_webhook_token.get_secret_value() if settings.notify_webhook_token else None
        out.append(Webhook(settings.notify_webhook_url.get_secret_value(), token=token, **common))
    if settings.notify_smtp_host:
        if not settings.notify_email_to:
            raise ConfigError(Problem("PIPELINEBI_NOTIFY_SMTP_HOST is set but nobody receives the digest",
                                      hint='set PIPELINEBI_NOTIFY_EMAIL_TO, e.g. ["revops@example.com"]'))
        password = settings.notify_smtp_password.get_secret_value() if settings.notify_smtp_password else None
        out.append(SmtpDigest(settings.notify_smtp_host, settings.notify_smtp_port, settings.notify_email_from,
                              tuple(settings.notify_email_to), settings.notify_smtp_user, password,
                              settings.notify_smtp_starttls, **common))
    return out


def state_path(settings: Settings) -> Path:
    """The ledger (:mod:`.ledger`): ``PIPELINEBI_NOTIFY_STATE``, else ``<database>.notify.sqlite``."""
    return settings.notify_state or settings.database.with_name(settings.database.name + ".notify.sqlite")


def dead_letter_path(settings: Settings) -> Path:
    """The webhook's dead-letter file, beside the ledger: ``<database>.notify.dead-letter.jsonl``."""
    return state_path(settings).with_suffix(".dead-letter.jsonl")


def open_actions(layer: Any, con: Any, crm_deal_url: str | None) -> list[dict[str, Any]]:
    """Every open action as a dict (keys: FIELDS' values, plus ``link``), oldest first."""
    df = layer.query(OPEN_ACTIONS, con).df()
    rows = []
    for rec in df.to_dict("records"):
        a = {FIELDS[k]: (None if v is None or v != v else v) for k, v in rec.items() if k in FIELDS}
        a["fired_at"] = str(a["fired_at"])
        a["link"] = deal_url(crm_deal_url, a["deal_id"]) if crm_deal_url and a.get("deal_id") else None
        rows.append(a)
    return rows


def notify(settings: Settings, layer: Any, con: Any, *, dry_run: bool = False) -> NotifyReport:
    outputs = outputs_from(settings)
    report = NotifyReport()
    if not outputs:
        raise ConfigError(Problem("no notifier output is configured",
                                  hint="set PIPELINEBI_NOTIFY_WEBHOOK_URL and/or PIPELINEBI_NOTIFY_SMTP_HOST "
                                       "(README: Rules, playbooks and actions)"))
    actions = open_actions(layer, con, settings.crm_deal_url)
    ledger = Ledger(state_path(settings))
    by_id = {a["action_id"]: a for a in actions}
    dead = dead_letter_path(settings)
    for out in outputs:
        todo = ledger.pending(out.name, list(by_id))
        already = len(by_id) - len(todo)
        if dry_run:
            report.lines.append(f"{out.name}: would send {len(todo)} of {len(by_id)} open actions "
                                f"({already} already sent)")
            continue
        if isinstance(out, Webhook):
            sent, failed = [], []
            for aid in todo:
                try:
                    out.post(by_id[aid])
                    ledger.sent(out.name, [aid])
                    sent.append(aid)
                except DeliveryError as e:
                    ledger.failed(out.name, [aid], str(e))
                    dead_letter(dead, by_id[aid], str(e))
                    failed.append((aid, str(e)))
                    if not sent:
                        # the endpoint is down: do not wait out every action's retries
                        rest = [x for x in todo if x not in sent and x != aid]
                        ledger.failed(out.name, rest, str(e))
                        for x in rest:
                            dead_letter(dead, by_id[x], str(e))
                        failed += [(x, str(e)) for x in rest]
                        break
            line = f"webhook: {len(sent)} sent, {already} already sent"
            if failed:
                report.failed = True
                line += (f"; {len(failed)} not delivered ({failed[0][1]}): written to {dead}; "
                         "they are retried at the next run")
            report.lines.append(line)
        else:
            if not todo:
                report.lines.append(f"email: nothing new ({already} already sent)")
                continue
            try:
                out.send([by_id[a] for a in todo])
                ledger.sent(out.name, todo)
                report.lines.append(f"email: a digest of {len(todo)} action{'s' if len(todo) != 1 else ''} "
                                    f"to {len(out.recipients)} recipient{'s' if len(out.recipients) != 1 else ''}, "
                                    f"{already} already sent")
            except DeliveryError as e:
                ledger.failed(out.name, todo, str(e))
                report.failed = True
                report.lines.append(f"email: {e}; {len(todo)} actions not sent, retried at the next run")
    return report
