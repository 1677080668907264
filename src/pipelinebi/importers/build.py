"""All canonical tables from one export: deals first, then the tables that hang off them.

The row work is :class:`~pipelinebi.importers.builder.Builder`'s; this module only orders it
(stages before deals, deals before reps/accounts/history, leads/spend/quota last, because each
needs the ids the previous step kept) and adds the counted notes once, at the end.
The per-table modules (leads, spend, targets) import the builder, never this module, so the
imports run one way: build -> leads/spend/targets -> builder.
"""

from __future__ import annotations

from collections import Counter

from ..errors import unknown_name_hint
from .builder import DEFAULT_PIPELINE, Builder, is_deleted
from .leads import build_activities, build_leads
from .mapping_file import VALUE_COLUMNS, Mapping
from .parse import parse_timestamp
from .report import Report
from .sources import Extract
from .spend import build_spend
from .targets import build_targets

def build(ex: Extract, m: Mapping, report: Report) -> dict[str, list[dict]]:
    """All canonical tables (sound rows only); problems and notes go to ``report``."""
    b = Builder(ex, m, report)
    if m.currency and ex.deals and m.currency.currency_column not in ex.deals[0].raw:
        report.problem(f"currency column '{m.currency.currency_column}' is not in the file", ex.deals_file, 1,
                       key="currency.currency_column",
                       hint=unknown_name_hint(m.currency.currency_column, list(ex.deals[0].raw)))
    pipelines = []
    for rec in ex.deals:  # a look-ahead: build_deal counts the fixes
        p = b.value("pipeline", rec.get("pipeline"), count=False) or m.default("pipeline", DEFAULT_PIPELINE)
        if p not in pipelines:
            pipelines.append(p)
    stages = b.build_stages(pipelines)
    names = sorted({s["stage"] for s in stages})
    for stage in m.stage_dates:  # stages read from the export are known only now
        if stage not in names:
            report.problem(f"stage_dates: '{stage}' is not a stage of the export", ex.deals_file, 1,
                           key=f"stage_dates.{stage}", hint=unknown_name_hint(stage, names))
    for rec in ex.history or []:  # dates a blank created or close date may be taken from
        try:
            when = parse_timestamp(rec.get("changed_at"), b.fmts)
        except ValueError:
            continue  # reported with its row by build_history
        if when is not None and not is_deleted(rec):
            b.history_dates[rec.get("deal_id")].append((when, rec.get("stage")))
    deleted = 0
    for rec in ex.deals:
        if is_deleted(rec):
            deleted += 1
            continue
        deal = b.build_deal(rec)
        did = rec.get("deal_id")
        if did:
            b.all_ids.add(did)
        if deal is not None:
            b.deals[deal["deal_id"]] = deal
            b.deal_rec[deal["deal_id"]] = rec
    if deleted:
        report.note(f"deals: {deleted} rows marked deleted were skipped")
    deals = list(b.deals.values())
    reps = b.build_reps(deals)
    accounts = b.build_accounts(deals)
    history = b.build_history(deals)
    for deal in deals:
        if deal["deal_id"] in b.bad_deals:  # a history row of this deal was a problem
            deal["_bad"] = True
    deals = [d for d in deals if not d.pop("_bad", False)]
    ok_ids = {d["deal_id"] for d in deals}
    history = [h for h in history if h["deal_id"] in ok_ids]
    tables = {"stages": stages, "deals": deals, "deal_history": history, "reps": reps,
              "accounts": accounts, "targets": build_targets(b, reps) if ex.targets is not None else []}
    if ex.leads is not None:
        tables["leads"] = build_leads(b, ok_ids)
    if ex.activities is not None:
        tables["activities"] = build_activities(b, ok_ids, {lead["lead_id"] for lead in tables.get("leads", [])})
    if ex.spend is not None:
        sources = {d["source"] for d in deals if d["source"]} | {r["source"] for r in tables.get("leads", [])
                                                                   if r["source"]}
        tables["spend"] = build_spend(b, sources, file=ex.spend_file)
    for column in ("product", "source", "pipeline"):
        b.check_vocabulary(column, [(d[column], b.deal_rec[d["deal_id"]]) for d in deals])
    for key, n in report.counted("values.stage").items():
        report.note(f"values.stage: {key} on {n} rows")
    for column in VALUE_COLUMNS:  # every column a fix can apply to, each fix once with its count
        c = report.counted(f"values.{column}")
        if c and column != "stage":
            report.note(f"values.{column}: " + ", ".join(f"{k} ×{n}" for k, n in c.most_common()))
    for key, n in report.counted("stage spellings matched loosely").items():
        report.note(f"stage spelling {key} (case/punctuation) on {n} rows")
    for key, n in report.counted("lead status spellings matched loosely").items():
        report.note(f"lead status spelling {key} (case) on {n} rows")
    for key, n in report.counted("defaults").items():
        report.note(f"defaults: {key}: {n} rows")
    for key, n in report.counted("filled").items():
        report.note(f"{key}: {n}")
    codes = Counter(d["currency"] for d in deals if d["currency"])
    if m.currency is None and len(codes) > 1:
        report.problem("amounts are in " + ", ".join(f"{c} ×{n}" for c, n in codes.most_common())
                       + " but the mapping has no currency: section, so they cannot be added up",
                       ex.deals_file, hint="add currency: {currency_column: …, reporting: USD, rates: {…}}")
    if m.currency:
        conv = report.counted("currency")
        for code, n in conv.most_common():
            report.note(f"currency: {n} deals converted from {code} to {m.currency.reporting} at "
                        f"{m.currency.rates[code]} (rounded half up to cents; history amounts likewise)")
    report.notes.extend(report.unmatched_notes())
    return tables
