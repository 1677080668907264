"""Checks across rows and tables, on the views ``t_<table>`` (the typed table plus ``_row``).

Keys are unique; deals point at known pipelines, stages and reps; history rows point at
known deals and stages of the deal's pipeline and are in time order; a deal's status
agrees with its stage's kind and it does not close before it was created.  Softer
mismatches (history ending in another stage, unknown accounts) are warnings.

>>> [c.key for c, probe, i in _key_checks({"reps"})]
['column rep_id']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import duckdb

from ..canonical import TABLES
from ..errors import unknown_name_hint
from .checks import Check, Location, quote_text, run_check
from .report import Findings

#: did-you-mean over more candidates than this is slow and rarely helpful (ids).
_HINT_CANDIDATES = 5000
#: funnel stages (open and won) a pipeline may have: stage_intervals keeps a deal's later funnel
#: positions as the bits 1..62 of one BIGINT (semantic/derived/stage_intervals.sql)
MAX_FUNNEL_STAGES = 62


@dataclass(frozen=True)
class Probe:
    """One cheap query counting the hits of several checks (one count per check, in order).

    Clean data is the common case: one scan or join answers "any problems?" for all the
    checks, and only checks with hits run their own query for the examples.  Each count
    must be > 0 whenever its check has hits.
    """

    sql: str
    checks: tuple[Check, ...]

    def gated(self) -> list[tuple[Check, Probe, int]]:
        return [(c, self, i) for i, c in enumerate(self.checks)]


#: A check, or (check, probe, index): run the check only if the probe's count is > 0.
Item = Check | tuple[Check, Probe, int]


def _key_checks(available: set[str]) -> list[Item]:
    """A primary key value seen on an earlier row of the same file."""
    out = []
    for name in available:
        pk = TABLES[name].primary_key
        if not pk or name == "deal_history":  # history keys: see _history_order
            continue
        cols = ", ".join(pk)
        sql = (f"SELECT _row, {cols}, min(_row) OVER (PARTITION BY {cols}) AS first FROM t_{name} "
               f"WHERE {' AND '.join(f'{c} IS NOT NULL' for c in pk)} "
               f"QUALIFY count(*) OVER (PARTITION BY {cols}) > 1 AND _row <> first")
        label = " and ".join(pk)
        check = Check(name, sql, key=f"column {label}",
                      message=lambda v, label=label, k=len(pk): (
                          f"duplicate {label} {', '.join(quote_text(x) for x in v[:k])} (first at row {v[k]})"),
                      hint=lambda v: "ids must be unique")
        # A hash aggregate finds duplicates in a fraction of the window query's time;
        # the window (for each row's first occurrence) runs only when there are some.
        out += Probe(f"SELECT count(*) FROM (SELECT 1 FROM t_{name} WHERE "
                     f"{' AND '.join(f'{c} IS NOT NULL' for c in pk)} GROUP BY {cols} HAVING count(*) > 1)",
                     (check,)).gated()
    return out


def _history_order() -> Probe:
    # One window per deal in file order finds both problems: with rows in time order a
    # repeated timestamp is always next to its twin.
    base = ("SELECT _row, deal_id, changed_at, lag(changed_at) OVER (PARTITION BY deal_id ORDER BY _row) AS prev "
            "FROM t_deal_history WHERE deal_id IS NOT NULL AND changed_at IS NOT NULL")
    return Probe(f"SELECT count(*) FILTER (WHERE changed_at < prev), count(*) FILTER (WHERE changed_at = prev) "
                 f"FROM ({base})", (
        Check("deal_history", f"SELECT _row, deal_id, changed_at, prev FROM ({base}) WHERE changed_at < prev",
              key="column changed_at",
              message=lambda v: f"history of deal '{v[0]}' out of time order: {v[1]} comes after {v[2]}",
              hint=lambda v: "list each deal's changes oldest first"),
        Check("deal_history", f"SELECT _row, deal_id, changed_at FROM ({base}) WHERE changed_at = prev",
              key="column changed_at",
              message=lambda v: f"duplicate timestamp {v[1]} for deal '{v[0]}'",
              hint=lambda v: "a deal has one history row per moment; merge the two changes"),
    ))


def _names(con, sql: str) -> list[str]:
    return [r[0] for r in con.execute(sql).fetchall()]


def _hint(value: object, candidates: list[str]) -> str | None:
    if len(candidates) > _HINT_CANDIDATES or value is None:
        return None
    return unknown_name_hint(str(value), candidates)


def _deal_checks(con, available: set[str]) -> list[Check]:
    out: list[Check] = []
    if "stages" in available:
        pipelines = _names(con, "SELECT DISTINCT pipeline FROM t_stages WHERE pipeline IS NOT NULL ORDER BY 1")
        stages: dict[str, list[str]] = {}
        for p, s in con.execute("SELECT pipeline, stage FROM t_stages WHERE stage IS NOT NULL ORDER BY position").fetchall():
            stages.setdefault(p, []).append(s)

        def stage_hint(v, stages=stages):
            return unknown_name_hint(str(v[1]), stages.get(v[0], []))

        for table, rel in (("deals", "t_deals"),
                           ("deal_history", "(SELECT h._row, d.pipeline, h.stage FROM t_deal_history h "
                                            "JOIN t_deals d USING (deal_id))")):
            if table not in available:
                continue
            if table == "deals":
                out.append(Check("deals", "SELECT _row, pipeline FROM t_deals WHERE pipeline IS NOT NULL "
                                          "AND pipeline NOT IN (SELECT pipeline FROM t_stages WHERE pipeline IS NOT NULL)",
                                 key="column pipeline", per_value=True,
                                 message=lambda v: f"unknown pipeline '{v[0]}'",
                                 hint=lambda v: _hint(v[0], pipelines) or "pipelines are defined in stages"))
            out.append(Check(table, f"SELECT x._row, x.pipeline, x.stage FROM {rel} x "
                                    "WHERE x.stage IS NOT NULL AND x.pipeline IN (SELECT pipeline FROM t_stages) "
                                    "AND NOT EXISTS (SELECT 1 FROM t_stages s WHERE s.pipeline = x.pipeline "
                                    "AND s.stage = x.stage)",
                             key="column stage", per_value=True, value_index=1,
                             message=lambda v: f"unknown stage '{v[1]}' in pipeline '{v[0]}'", hint=stage_hint))
        if "deals" in available:
            out.append(Check("deals", "SELECT d._row, d.status, d.stage, s.kind FROM t_deals d JOIN t_stages s "
                                      "USING (pipeline, stage) WHERE d.status <> s.kind AND d.status IN ('open', 'won', 'lost') "
                                      "AND s.kind IN ('open', 'won', 'lost')",
                             key="column status", per_value=True,
                             message=lambda v: f"status '{v[0]}' disagrees with stage '{v[1]}' of kind '{v[2]}'",
                             hint=lambda v: f"a deal in a stage of kind '{v[2]}' has status '{v[2]}'"))
    if "deals" in available:
        out.append(Check("deals", "SELECT _row, close_date, CAST(created_at AS DATE) FROM t_deals "
                                  "WHERE close_date < CAST(created_at AS DATE)",
                         key="column close_date",
                         message=lambda v: f"close date {v[0]} is before the create date {v[1]}",
                         hint=lambda v: "close_date >= created_at"))
        # A blank close date is a fact on an open deal ("no close date set"); a won or lost
        # deal closed on some day, and every closed-deal metric is bucketed by that day.
        out.append(Check("deals", "SELECT _row, status FROM t_deals WHERE close_date IS NULL "
                                  "AND status IN ('won', 'lost')",
                         key="column close_date",
                         message=lambda v: f"close date is blank on a {v[0]} deal",
                         hint=lambda v: "won and lost deals need the date they closed; blank is allowed on open deals"))
    if {"deals", "reps"} <= available:
        reps = _names(con, "SELECT rep_id FROM t_reps WHERE rep_id IS NOT NULL ORDER BY 1")
        out.append(Check("deals", "SELECT _row, owner_id FROM t_deals WHERE owner_id IS NOT NULL "
                                  "AND owner_id NOT IN (SELECT rep_id FROM t_reps WHERE rep_id IS NOT NULL)",
                         key="column owner_id", per_value=True,
                         message=lambda v: f"owner '{v[0]}' is not a known rep",
                         hint=lambda v: _hint(v[0], reps) or "owners must be in reps.rep_id"))
    if {"deals", "accounts"} <= available:
        out.append(Check("deals", "SELECT _row, account_id FROM t_deals WHERE account_id IS NOT NULL "
                                  "AND account_id NOT IN (SELECT account_id FROM t_accounts WHERE account_id IS NOT NULL)",
                         key="column account_id", per_value=True, severity="warning",
                         message=lambda v: f"account '{v[0]}' is not in accounts",
                         hint=lambda v: "loaded anyway; such deals show under an unknown account"))
    return out


def _history_checks(available: set[str]) -> list[Item]:
    if not {"deals", "deal_history"} <= available:
        return []
    unknown_deal = Check(
        "deal_history", "SELECT _row, deal_id FROM t_deal_history h WHERE deal_id IS NOT NULL "
                        "AND NOT EXISTS (SELECT 1 FROM t_deals d WHERE d.deal_id = h.deal_id)",
        key="column deal_id", per_value=True,
        message=lambda v: f"history of unknown deal '{v[0]}'",
        hint=lambda v: "every deal_history.deal_id must be in deals")
    last_stage = Check(
        "deals", "SELECT d._row, d.stage, l.stage FROM t_deals d JOIN ("
                 "SELECT deal_id, arg_max(stage, changed_at) AS stage FROM t_deal_history "
                 "WHERE deal_id IS NOT NULL GROUP BY deal_id) l USING (deal_id) WHERE d.stage <> l.stage",
        key="column stage", severity="warning",
        message=lambda v: f"current stage '{v[0]}' but the last history row says '{v[1]}'",
        hint=lambda v: "the deal's current stage wins; stage_intervals follow the history")
    no_history = Check(
        "deals", "SELECT _row, deal_id FROM t_deals d WHERE NOT EXISTS "
                 "(SELECT 1 FROM t_deal_history h WHERE h.deal_id = d.deal_id)",
        key="column deal_id", severity="warning",
        message=lambda v: f"deal '{v[0]}' has no history rows",
        hint=lambda v: "it has no stage_intervals; stage metrics leave it out")
    # History grouped per deal, fully joined to deals, answers all three at once: groups
    # without a deal, deals whose stage differs from the last change, deals without a
    # group (a deal with an empty deal_id matches no group, as in the check).
    probe = Probe("SELECT count(*) FILTER (WHERE d.deal_id IS NULL AND l.deal_id IS NOT NULL), "
                  "count(*) FILTER (WHERE d.stage <> l.stage), "
                  "count(*) FILTER (WHERE l.deal_id IS NULL) "
                  "FROM (SELECT deal_id, arg_max(stage, changed_at) AS stage FROM t_deal_history "
                  "WHERE deal_id IS NOT NULL GROUP BY deal_id) l FULL JOIN t_deals d ON d.deal_id = l.deal_id",
                  (unknown_deal, last_stage, no_history))
    (a, b, c), (order, dup) = probe.gated(), _history_order().gated()
    return [a, order, dup, b, c]  # the order the problems are reported in


def _other_checks(con, available: set[str]) -> list[Check]:
    out: list[Check] = []
    if "targets" in available:
        out.append(Check("targets", "SELECT _row, period_start, period_end FROM t_targets WHERE period_end < period_start",
                         key="column period_end", message=lambda v: f"period ends {v[1]}, before it starts {v[0]}"))
        out.append(Check("targets", "SELECT _row FROM t_targets WHERE rep_id IS NULL AND team IS NULL",
                         key="column rep_id", message=lambda v: "neither rep_id nor team given",
                         hint=lambda v: "a quota belongs to a rep or to a team"))
        if "reps" in available:
            out.append(Check("targets", "SELECT _row, rep_id FROM t_targets WHERE rep_id IS NOT NULL "
                                        "AND rep_id NOT IN (SELECT rep_id FROM t_reps WHERE rep_id IS NOT NULL)",
                             key="column rep_id", per_value=True, message=lambda v: f"unknown rep '{v[0]}'"))
    if "stages" in available:
        out.append(Check("stages", "SELECT min(_row) AS _row, pipeline FROM t_stages GROUP BY pipeline "
                                   "HAVING count(*) FILTER (WHERE kind = 'won') <> 1",
                         key="column kind", severity="warning",
                         message=lambda v: f"pipeline '{v[0]}' should have exactly one won stage",
                         hint=lambda v: "funnel positions put the won stage after the open ones"))
        out.append(Check("stages", "SELECT min(_row) AS _row, pipeline, count(*) FROM t_stages "
                                   f"WHERE kind <> 'lost' GROUP BY pipeline HAVING count(*) > {MAX_FUNNEL_STAGES}",
                         key="column kind",
                         message=lambda v: f"pipeline '{v[0]}' has {v[1]} stages that are not lost; "
                                           f"at most {MAX_FUNNEL_STAGES} are supported",
                         hint=lambda v: "stage_intervals keeps a deal's later funnel positions as the bits of one "
                                        "64-bit integer (semantic/derived/stage_intervals.sql): merge stages"))
        out.append(Check("stages", "SELECT _row, pipeline, position FROM t_stages QUALIFY "
                                   "count(*) OVER (PARTITION BY pipeline, position) > 1",
                         key="column position", severity="warning",
                         message=lambda v: f"position {v[1]} used twice in pipeline '{v[0]}'",
                         hint=lambda v: "ties are ordered by stage name"))
    if "leads" in available:
        # Like a deal closing before it was created: negative days to convert would pull
        # lead_time_to_convert down without anyone noticing.
        out.append(Check("leads", "SELECT _row, converted_at, created_at FROM t_leads "
                                  "WHERE converted_at < created_at",
                         key="column converted_at",
                         message=lambda v: f"converted at {v[0]}, before the lead was created ({v[1]})",
                         hint=lambda v: "converted_at >= created_at"))
    if "spend" in available:
        out.append(Check("spend", "SELECT _row, period_start, period_end FROM t_spend WHERE period_end < period_start",
                         key="column period_end", message=lambda v: f"period ends {v[1]}, before it starts {v[0]}"))
        if "deals" in available:
            # Spend on a source no deal or lead names buys nothing the metrics can see: acquisition
            # cost per source would leave it out and the overall figure would carry it unexplained.
            leads = " UNION SELECT source FROM t_leads WHERE source IS NOT NULL" if "leads" in available else ""
            out.append(Check("spend", f"SELECT _row, source FROM t_spend WHERE source NOT IN "
                                      f"(SELECT source FROM t_deals WHERE source IS NOT NULL{leads})",
                             key="column source", per_value=True, severity="warning",
                             message=lambda v: f"source '{v[0]}' is not the source of any deal or lead",
                             hint=lambda v: "spend.source uses the vocabulary of deals.source and leads.source"))
    # Soft references from the optional tables: worth a warning, never a reason to refuse.
    for table, col, target, tcol in (("leads", "owner_id", "reps", "rep_id"),
                                     ("leads", "converted_deal_id", "deals", "deal_id"),
                                     ("activities", "deal_id", "deals", "deal_id"),
                                     ("activities", "lead_id", "leads", "lead_id"),
                                     ("activities", "rep_id", "reps", "rep_id")):
        if {table, target} <= available:
            out.append(Check(table, f"SELECT _row, {col} FROM t_{table} WHERE {col} IS NOT NULL AND {col} NOT IN "
                                    f"(SELECT {tcol} FROM t_{target} WHERE {tcol} IS NOT NULL)",
                             key=f"column {col}", per_value=True, severity="warning",
                             message=lambda v, t=target: f"'{v[0]}' is not in {t}"))
    return out


def check_relations(con: duckdb.DuckDBPyConnection, available: Iterable[str],
                    where: dict[str, Location], findings: Findings, progress=None) -> None:
    """Run every cross-row and cross-table check whose tables were loaded."""
    available = set(available)
    checks = [*_key_checks(available), *_deal_checks(con, available),
              *_history_checks(available), *_other_checks(con, available)]
    probed: dict[str, tuple] = {}
    for i, check in enumerate(checks, 1):
        if progress:
            progress("checking keys and references", i, len(checks))
        if isinstance(check, tuple):
            check, probe, k = check
            if probe.sql not in probed:
                probed[probe.sql] = con.execute(probe.sql).fetchone()
            if not probed[probe.sql][k]:
                continue  # no hits: skip the query that picks examples
        run_check(con, check, where, findings)

