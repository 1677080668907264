"""From an :class:`~pipelinebi.importers.sources.Extract` to canonical table rows.

Common to every format: value maps and defaults, stage lookup, status/stage agreement,
amount parsing and currency conversion, the reps/teams/accounts joins, history from
stage-date columns, history ordering and repair, synthesis where history is missing.
Sound rows become canonical rows; every unsound row becomes a located problem; everything
done to the data becomes a note, once, with its true count.

Dates a real export leaves blank:

- **close date** on an open deal: kept blank (NULL, "no close date set").  On a won or
  lost deal: the date it entered its closed stage (a ``stage_dates`` column or a history
  row), else its last stage/history date — reported; with no date at all the row is refused.
- **created date**: the deal's earliest stage/history date, else ``defaults.created_at``
  — reported; with neither the row is refused.

>>> normalize(" Closed-Won "), normalize("closed won")
('closedwon', 'closedwon')
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from ..canonical import FORECAST_CATEGORIES, STATUSES
from ..errors import did_you_mean, unknown_name_hint
from .csvfile import Rec
from .mapping_file import Mapping, StageSpec
from .parse import (parse_amount, parse_bool, parse_date, parse_int, parse_period, parse_timestamp, to_cents)
from .report import Report
from .sources import Extract
from .synthesize import NOTE as SYNTH_NOTE
from .synthesize import TICK, synthesize_history

DEFAULT_PIPELINE = "Default"
DEFAULT_TEAM = "Unassigned"
DEFAULT_REGION = "Unknown"


def is_deleted(rec: Rec) -> bool:
    """The export marks the row deleted (Salesforce IsDeleted); an unreadable flag counts as not."""
    try:
        return parse_bool(rec.get("is_deleted"))
    except ValueError:
        return False


def normalize(text: str) -> str:
    """Case, spacing and punctuation removed: 'Closed-Won' and 'closed won' compare equal."""
    return re.sub(r"[^0-9a-z]", "", text.lower())


@dataclass
class Tables:
    rows: dict[str, list[dict]] = field(default_factory=lambda: defaultdict(list))


class Builder:
    def __init__(self, ex: Extract, m: Mapping, report: Report):
        self.ex, self.m, self.r = ex, m, report
        self.fmts = list(m.date_formats)
        self.stages: dict[str, dict[str, StageSpec]] = {}
        self.deals: dict[str, dict] = {}  # sound deals by id
        self.deal_rec: dict[str, Rec] = {}
        self.bad_deals: set[str] = set()
        self.all_ids: set[str] = set()
        self._last_modified: dict[str, datetime | None] = {}
        #: per deal: (canonical stage, when, source column) from its stage-date cells
        self.stage_dates: dict[str, list[tuple[str, datetime, str]]] = {}
        #: per deal: (when, stage as written) of the export's history rows, read ahead so a
        #: blank created or close date can be taken from them
        self.history_dates: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
        self.rep_keys: dict[str, str] = {}  # rep id or name (casefolded) → rep_id
        self.rep_names: list[str] = []

    # ------------------------------------------------------------ helpers
    def value(self, column: str, raw: str, count: bool = True) -> str:
        """Apply ``values.<column>`` (exact, then case-insensitive) and count what changed.

        Called once per cell (``count=False`` for a look-ahead), so the counts are true.
        """
        table = self.m.values.get(column)
        if not raw or not table:
            return raw
        hit = table.get(raw)
        if hit is None:
            folded = {k.casefold(): v for k, v in table.items()}
            hit = folded.get(raw.casefold())
        if hit is not None and hit != raw:
            if count:
                self.r.count(f"values.{column}", f"'{raw}' → '{hit}'")
            return hit
        return raw

    def period(self, rec: Rec, what: str, examples: str, obj: str):
        """A row's (start, end) from ``period`` (2024-Q1) or ``period_start``/``period_end``;
        (None, None) with a located problem when blank, unreadable or ending before it starts.
        Quota and spend rows read their periods alike; ``what`` names the row in messages."""
        try:
            if rec.get("period"):
                start, end = parse_period(rec.get("period"))
            else:
                start, end = parse_date(rec.get("period_start"), self.fmts), parse_date(rec.get("period_end"), self.fmts)
                if start is None or end is None:
                    self.bad(rec, f"{what} period is blank", "period_start" if start is None else "period_end",
                             f"map a period column ({examples}) or both period_start and period_end", obj=obj)
                    return None, None
        except ValueError as e:
            self.bad(rec, f"bad {what} period: {e}", "period" if rec.get("period") else "period_start", obj=obj)
            return None, None
        if end < start:
            self.bad(rec, f"{what} period ends {end}, before it starts {start}", "period_end", obj=obj)
        return start, end

    def fill(self, table: str, column: str, fallback: str | None = None, why: str = "blank") -> str | None:
        """The default of ``column`` (``defaults:``, else ``fallback``) for one blank cell, counted."""
        value = self.m.defaults.get(column, fallback)
        if value is not None:
            self.r.count("defaults", f"{table}: {why} {column} set to '{value}'")
        return value

    def ts(self, rec: Rec, key: str, required: bool = False) -> datetime | None:
        try:
            value = parse_timestamp(rec.get(key), self.fmts)
        except ValueError as e:
            self.bad(rec, f"bad {key} '{rec.get(key)}': {e}", key)
            return None
        if value is None and required:
            self.bad(rec, f"{key} is blank", key)
        return value

    def bad(self, rec: Rec, message: str, key: str | None = None, hint: str | None = None,
            obj: str | None = None) -> None:
        """A problem with this row (located, with the raw value); the row is not imported."""
        src = rec.sources.get(key, key) if key else None
        did = rec.get("deal_id")
        value = rec.raw.get(src) if src in rec.raw else (rec.get(key) if key else None)
        self.r.problem(message, rec.file, rec.line, obj=obj or (f"deal {did}" if did else None),
                       key=f"column {src}" if src else None, hint=hint, value=value)
        self.row_ok = False

    # ------------------------------------------------------------- stages
    def build_stages(self, pipelines: list[str]) -> list[dict]:
        specific = {s.pipeline for s in self.ex.stages if s.pipeline}
        rows = []
        for s in self.ex.stages:
            targets = [s.pipeline] if s.pipeline else [p for p in pipelines if p not in specific] or (
                [] if specific else [self.m.default("pipeline", DEFAULT_PIPELINE)])
            for p in targets:
                self.stages.setdefault(p, {})[s.stage] = s
        for p, stages in self.stages.items():
            # dense positions in the declared order: 1 = first, closed stages last
            ordered = sorted(stages.values(), key=lambda s: (s.kind != "open", s.position))
            for i, s in enumerate(ordered, start=1):
                rows.append({"pipeline": p, "stage": s.stage, "position": i, "kind": s.kind,
                             "probability": Decimal(str(s.probability)).quantize(Decimal("0.0001")),
                             "forecast_category": s.forecast_category})
        return rows

    def first_stage(self, pipeline: str) -> str | None:
        opens = [s for s in self.stages.get(pipeline, {}).values() if s.kind == "open"]
        return min(opens, key=lambda s: s.position).stage if opens else None

    def resolve_stage(self, rec: Rec, pipeline: str, raw: str, key: str = "stage") -> StageSpec | None:
        name = self.value("stage", raw)
        known = self.stages.get(pipeline)
        if known is None:
            self.bad(rec, f"unknown pipeline '{pipeline}'", "pipeline",
                     unknown_name_hint(pipeline, self.stages))
            return None
        if not name:
            self.bad(rec, "stage is blank", key)
            return None
        if name in known:
            return known[name]
        loose = [s for s in known if normalize(s) == normalize(name)]
        if len(loose) == 1:
            self.r.count("stage spellings matched loosely", f"'{name}' → '{loose[0]}'")
            return known[loose[0]]
        hint = did_you_mean(name, known)
        self.bad(rec, f"unknown stage '{name}' in pipeline '{pipeline}'", key,
                 (hint + "; " if hint else "") + "accepted: " + ", ".join(known)
                 + " (or map it under values.stage)")
        return None

    # -------------------------------------------------------------- deals
    def convert(self, rec: Rec, amount: Decimal | None, code: str) -> Decimal | None:
        cur = self.m.currency
        if amount is None or cur is None:
            return None if amount is None else to_cents(amount)
        if code == cur.reporting:
            return to_cents(amount)
        rate = cur.rates.get(code)
        if rate is None:
            self.bad(rec, f"no exchange rate for currency '{code}'", "currency",
                     unknown_name_hint(code, list(cur.rates) + [cur.reporting])
                     + "; add it under currency.rates")
            return None
        return to_cents(amount * Decimal(str(rate)))

    def currency_of(self, rec: Rec) -> str:
        cur = self.m.currency
        if cur is None:
            return self.value("currency", rec.get("currency")).upper()
        raw = self.value("currency", (rec.raw.get(cur.currency_column) or "").strip()).upper()
        return raw or cur.default or cur.reporting

    def build_deal(self, rec: Rec) -> dict | None:
        self.row_ok = True
        did = rec.get("deal_id")
        if not did:
            self.bad(rec, "deal id is blank", "deal_id")
            return None
        if did in self.deal_rec or did in self.bad_deals:
            first = self.deal_rec.get(did)
            self.bad(rec, f"deal id '{did}' appears twice", "deal_id",
                     f"first on line {first.line}" if first else None)
            return None
        pipeline = self.value("pipeline", rec.get("pipeline")) or self.fill(
            "deals", "pipeline", DEFAULT_PIPELINE, "blank" if "pipeline" in self.ex.deal_fields else "no")
        spec = self.resolve_stage(rec, pipeline, rec.get("stage"))
        status = self.value("status", rec.get("status")).lower() if rec.get("status") else ""
        if status and status not in STATUSES:
            self.bad(rec, f"unknown status '{rec.get('status')}'", "status",
                     unknown_name_hint(status, STATUSES) + " (or map it under values.status)")
        if spec is not None:
            if not status:
                status = spec.kind
            elif status in STATUSES and status != spec.kind:
                self.bad(rec, f"status '{status}' disagrees with stage '{spec.stage}' (a {spec.kind} stage)",
                         "status", "fix the stage's kind under stages: or the row")
        try:
            amount = parse_amount(rec.get("amount"))
            if amount is not None and amount < 0:
                self.bad(rec, f"negative amount '{rec.get('amount')}'", "amount", "amounts must be >= 0")
        except ValueError as e:
            self.bad(rec, f"bad amount '{rec.get('amount')}': {e}", "amount")
            amount = None
        else:
            if amount is None and status == "open":
                self.r.count("defaults", "deals: blank amount on an open deal kept blank (NULL)")
            elif amount is None and status in ("won", "lost"):
                self.bad(rec, f"amount is blank on a {status} deal", "amount",
                         "closed deals need an amount; blank is only allowed on open deals")
        code = self.currency_of(rec)
        converted = self.convert(rec, amount, code)
        if amount is not None and self.m.currency and code != self.m.currency.reporting and converted is not None:
            self.r.count("currency", code)
        dated = self.row_stage_dates(rec, pipeline, spec)
        known = [t for _, t, _ in dated] + [t for t, _ in self.history_dates.get(did, [])]
        created = self.created_at(rec, known)
        close = self.close_date(rec, status, spec, dated, known)
        if created is not None and close is not None and close < created.date():
            if self.m.closed_before_created == "error":
                self.bad(rec, f"close date {close} is before the creation date {created.date()}", "close_date",
                         "set closed_before_created: move_created in the mapping to import such deals")
            else:
                self.r.unmatched("deals closing before they were created (entered after the fact): "
                                 "created_at moved to the close date, so their age and cycle length are 0",
                                 did, rec.file, rec.line)
                created = datetime.combine(close, datetime.min.time())
        fc = self.value("forecast_category", rec.get("forecast_category"))
        if fc and fc not in FORECAST_CATEGORIES:
            self.bad(rec, f"unknown forecast category '{fc}'", "forecast_category",
                     unknown_name_hint(fc, FORECAST_CATEGORIES) + " (or map it under values.forecast_category)")
        if not fc and spec is not None:
            fc = spec.forecast_category or ""
        owner = rec.get("owner_id") or self.fill("deals", "owner_id") or ""
        if not owner:
            self.bad(rec, "owner is blank", "owner_id", "set defaults.owner_id to assign such deals")
        last_modified = self.ts(rec, "last_modified")
        for key in ("won_time", "lost_time", "stage_changed_at"):
            self.ts(rec, key)
        if not self.row_ok:
            self.bad_deals.add(did)
            return None
        # each cell is looked up once, so a value fix or default is counted once per row
        source = self.value("source", rec.get("source")) or self.fill("deals", "source")
        product = self.value("product", rec.get("product")) or self.fill("deals", "product")
        lost_reason = self.value("lost_reason", rec.get("lost_reason")) or (
            self.fill("deals", "lost_reason") if status == "lost" else None)
        deal = {
            "deal_id": did, "name": rec.get("name") or None, "pipeline": pipeline,
            "account_id": rec.get("account_id") or None, "owner_id": owner,
            "source": source, "product": product,
            "amount": converted, "currency": code or None, "created_at": created, "close_date": close,
            "stage": spec.stage, "status": status, "forecast_category": fc or None,
            "lost_reason": lost_reason,
        }
        self._last_modified[did] = last_modified
        if dated:
            self.stage_dates[did] = dated
        return deal

    # ---------------------------------------------------------- deal dates
    def row_stage_dates(self, rec: Rec, pipeline: str, spec: StageSpec | None) -> list[tuple[str, datetime, str]]:
        """(stage, when, column) for each filled ``stage_dates`` cell of a deal's row.

        A deal closes once, in its current stage: the date of any other closed stage is
        ignored (one close-date column may be listed for Won and Lost; an open deal's
        close date is expected, not entered), also when filling a blank created date.
        """
        out = []
        kinds = {s.stage: s.kind for s in self.stages.get(pipeline, {}).values()}
        for stage, column in self.m.stage_dates.items():
            text = (rec.raw.get(column) or "").strip()
            if not text:
                continue
            try:
                when = parse_timestamp(text, self.fmts)
            except ValueError as e:
                self.bad(rec, f"bad date in {column} '{text}': {e}", column)
                continue
            if kinds and stage not in kinds:  # mapping stages without `pipeline:` are in every pipeline
                self.r.unmatched("stage dates of stages not in the deal's pipeline (skipped)", stage,
                                 rec.file, rec.line)
                continue
            if kinds.get(stage, "open") != "open" and (spec is None or stage != spec.stage):
                self.r.count("filled", "stage dates of a closed stage the deal is not in: ignored "
                                       "(a deal closes once, in its current stage)")
                continue
            out.append((stage, when, column))
        return out

    def created_at(self, rec: Rec, known: list[datetime]) -> datetime | None:
        """The created date; blank → the earliest date known for the deal → defaults.created_at."""
        if rec.get("created_at"):
            return self.ts(rec, "created_at")
        if known:
            self.r.count("filled", "deals without a created date: created_at set to their earliest "
                                   "stage or history date")
            return min(known)
        default = self.fill("deals", "created_at", why="blank (and no stage or history date)")
        if default is not None:
            return parse_timestamp(default, self.fmts)  # checked when the mapping was loaded
        self.bad(rec, "created date is blank and no stage date or history row gives one", "created_at",
                 "map a created-date column, add the deal's stage dates under stage_dates:, "
                 "or set defaults.created_at (e.g. the export date)")
        return None

    def close_date(self, rec: Rec, status: str, spec: StageSpec | None,
                   dated: list[tuple[str, datetime, str]], known: list[datetime]):
        """The close date; blank is kept on open deals and filled (or refused) on closed ones."""
        try:
            close = parse_date(rec.get("close_date"), self.fmts)
        except ValueError as e:
            self.bad(rec, f"bad close_date '{rec.get('close_date')}': {e}", "close_date")
            return None
        if close is not None or spec is None:
            return close
        if status == "open":
            # a fact, not a gap: the rep has not set one; close-date buckets leave it out
            self.r.count("filled", "open deals without a close date: kept blank (no close date set)")
            return None
        if status not in ("won", "lost"):
            return None
        # The day it entered its closed stage is the day it closed; else the last date we know.
        entered = [t for s, t, _ in dated if s == spec.stage] + [
            t for t, s in self.history_dates.get(rec.get("deal_id"), [])
            if normalize(self.value("stage", s, count=False)) == normalize(spec.stage)]
        if entered:
            self.r.count("filled", "won/lost deals without a close date: close date set to the date "
                                   "they entered their closed stage")
            return max(entered).date()
        if known:
            self.r.count("filled", "won/lost deals without a close date: close date set to their last "
                                   "stage or history date")
            return max(known).date()
        self.bad(rec, f"close date is blank on a {status} deal and no stage date or history row says when "
                      "it closed", "close_date",
                 "map the close date, or the date it entered its closed stage under stage_dates:")
        return None

    # ------------------------------------------------------- reps, accounts
    def side_records(self, records, id_column: str, what: str):
        """(row, its id) for each row of a reps/accounts side file; the name stands in for a
        missing id, and a row with neither is a problem (reported, not silently dropped)."""
        for rec in records or []:
            key = rec.get(id_column) or rec.get("name")
            if not key:
                self.r.problem(f"{what} has neither id nor name", rec.file, rec.line)
                continue
            yield rec, key

    def build_reps(self, deals: list[dict]) -> list[dict]:
        m, r = self.m, self.r
        team_default = m.default("team", DEFAULT_TEAM)
        region_default = m.default("region", DEFAULT_REGION)
        teams: dict[str, dict] = {}
        for rec in self.ex.teams or []:
            team = self.value("team", rec.get("team"))
            if team:
                teams[team] = {"region": rec.get("region"), "manager": rec.get("manager")}
        reps: dict[str, dict] = {}
        by_key: dict[str, str] = {}
        join_name = m.reps is not None and m.reps.join_on == "name"
        for rec, rep_id in self.side_records(self.ex.reps, "rep_id", "rep"):
            team = self.value("team", rec.get("team"))
            if not team:
                team = self.fill("reps", "team", DEFAULT_TEAM)
            elif self.ex.teams is not None and team not in teams:
                r.unmatched(f"rep teams not in {self.ex.teams_file} (kept as written, region '{region_default}')",
                            team, rec.file, rec.line, did_you_mean(team, teams))
            info = teams.get(team, {})
            try:
                active = parse_bool(rec.get("active"))
                hired = parse_date(rec.get("hired_at"), self.fmts)
            except ValueError as e:
                r.problem(f"bad value: {e}", rec.file, rec.line, obj=f"rep {rep_id}")
                continue
            region = self.value("region", rec.get("region") or info.get("region") or "") or self.fill(
                "reps", "region", DEFAULT_REGION, "no region for the rep or its team, so")
            reps[rep_id] = {
                "rep_id": rep_id, "name": rec.get("name") or rep_id, "team": team,
                "region": region,
                "manager": rec.get("manager") or info.get("manager") or None,
                "active": True if active is None else active, "hired_at": hired,
            }
            by_key[(rec.get("name") if join_name else rep_id).casefold()] = rep_id
        stubs = 0
        for deal in deals:
            raw = deal["owner_id"]
            rep_id = by_key.get(raw.casefold())
            if rep_id is None and raw in reps:
                rep_id = raw
            if rep_id is None:
                rec = self.deal_rec[deal["deal_id"]]
                if self.ex.reps is not None:
                    names = [v["name"] if join_name else k for k, v in reps.items()]
                    r.unmatched(f"deal owners not in {self.ex.reps_file} (added as reps named by the owner, "
                                f"team '{team_default}')", raw, rec.file, rec.line, did_you_mean(raw, names))
                if raw not in reps:
                    stubs += 1
                    reps[raw] = {"rep_id": raw, "name": raw, "team": team_default, "region": region_default,
                                 "manager": None, "active": True, "hired_at": None}
                rep_id = raw
            deal["owner_id"] = rep_id
        if self.ex.reps is None and stubs:
            r.note(f"reps: no reps file, so {stubs} rep(s) were created from the deal owners "
                   f"(name = owner, team '{team_default}', region '{region_default}')")
        # leads, quotas and activities name reps by id or by name: both are looked up
        names = Counter(v["name"].casefold() for v in reps.values())
        for rep_id, v in reps.items():
            if names[v["name"].casefold()] == 1:
                self.rep_keys[v["name"].casefold()] = rep_id
        self.rep_keys.update({k.casefold(): k for k in reps})
        self.rep_names = sorted({v["name"] for v in reps.values()})
        return list(reps.values())

    def rep_of(self, raw: str) -> str | None:
        """The rep_id a lead, quota or activity names (by id or by unique name), or None."""
        return self.rep_keys.get(raw.casefold()) if raw else None

    def build_accounts(self, deals: list[dict]) -> list[dict]:
        m, r = self.m, self.r
        accounts: dict[str, dict] = {}
        by_key: dict[str, str] = {}
        join_name = m.accounts is not None and m.accounts.join_on == "name"
        for rec, aid in self.side_records(self.ex.accounts, "account_id", "account"):
            try:
                employees = parse_int(rec.get("employees"))
            except ValueError as e:
                r.problem(f"bad employees '{rec.get('employees')}': {e}", rec.file, rec.line, obj=f"account {aid}")
                employees = None
            accounts[aid] = {"account_id": aid, "name": rec.get("name") or aid,
                             "industry": self.value("industry", rec.get("industry"))
                             or self.fill("accounts", "industry"),
                             "segment": self.value("segment", rec.get("segment")) or self.fill("accounts", "segment"),
                             "region": self.value("region", rec.get("region")) or None, "employees": employees}
            by_key[(rec.get("name") if join_name else aid).casefold()] = aid
        stubs, blank = 0, 0
        for deal in deals:
            raw = deal["account_id"]
            if raw is None:
                blank += 1
                continue
            aid = by_key.get(raw.casefold())
            if aid is None and self.ex.accounts is not None:
                rec = self.deal_rec[deal["deal_id"]]
                names = [v["name"] for v in accounts.values()] if join_name else list(accounts)
                r.unmatched(f"deal accounts not in {self.ex.accounts_file} (account left blank)", raw,
                            rec.file, rec.line, did_you_mean(raw, names))
            elif aid is None:
                if raw not in accounts:
                    stubs += 1
                    accounts[raw] = {"account_id": raw, "name": raw, "industry": None, "segment": None,
                                     "region": None, "employees": None}
                aid = raw
            deal["account_id"] = aid
        if blank:
            r.note(f"accounts: {blank} deals have no account (account_id left blank)")
        if self.ex.accounts is None and stubs:
            r.note(f"accounts: no accounts file, so {stubs} account(s) were created from the deals' "
                   f"account values (name = that value)")
        return list(accounts.values())

    # ------------------------------------------------------------ history
    def stage_date_rows(self, deals: list[dict]) -> list[Rec]:
        """History rows from the ``stage_dates`` cells of sound deals (real dates, partial rows)."""
        rows: list[Rec] = []
        for deal in deals:
            did = deal["deal_id"]
            rec = self.deal_rec[did]
            for stage, when, column in self.stage_dates.get(did, []):
                rows.append(Rec(rec.file, rec.line, {"deal_id": did, "changed_at": when.isoformat(sep=" "),
                                                     "stage": stage}, rec.raw,
                                {"deal_id": rec.sources.get("deal_id", "deal_id"), "changed_at": column,
                                 "stage": column}, partial=True))
        return rows

    def build_history(self, deals: list[dict]) -> list[dict]:
        r = self.r
        per_deal: dict[str, list[tuple[datetime, int, int, dict]]] = defaultdict(list)
        deleted = 0
        dated_rows = self.stage_date_rows(deals)
        n_file = len(self.ex.history or [])
        for i, rec in enumerate(list(self.ex.history or []) + dated_rows):
            did = rec.get("deal_id")
            if did in self.bad_deals:
                continue  # the deal itself is already a problem
            if did not in self.deals:
                r.unmatched(f"history rows for deals not in {self.ex.deals_file} (skipped)", did or "(blank)",
                            rec.file, rec.line)
                continue
            if is_deleted(rec):
                deleted += 1
                continue
            self.row_ok = True
            deal = self.deals[did]
            t = self.ts(rec, "changed_at", required=True)
            spec = self.resolve_stage(rec, deal["pipeline"], rec.get("stage"))
            try:
                amount = self.convert(rec, parse_amount(rec.get("amount")), deal["currency"] or "")
                close = parse_date(rec.get("close_date"), self.fmts)
            except ValueError as e:
                self.bad(rec, f"bad value: {e}")
                amount = close = None
            fc = self.value("forecast_category", rec.get("forecast_category"))
            if fc and fc not in FORECAST_CATEGORIES:
                self.bad(rec, f"unknown forecast category '{fc}'", "forecast_category",
                         unknown_name_hint(fc, FORECAST_CATEGORIES))
            if not self.row_ok:
                self.bad_deals.add(did)
                continue
            if rec.partial:
                # Only the stage and the date it was entered are known: the rest is the deal's
                # current state (its final stage) or the stage's default forecast category.
                amount, close = deal["amount"], deal["close_date"]
                fc = deal["forecast_category"] if spec.stage == deal["stage"] else spec.forecast_category
            # Stages entered at one instant (dates without times) are ordered by position.
            order = spec.position if rec.partial else 0
            per_deal[did].append((t, order, i, {"deal_id": did, "changed_at": t, "stage": spec.stage,
                                                "amount": amount, "close_date": close,
                                                "forecast_category": fc or spec.forecast_category,
                                                "is_synthetic": False, "_partial": rec.partial,
                                                "_dated": i >= n_file}))
        if deleted:
            r.note(f"history: {deleted} rows marked deleted were skipped")
        out: list[dict] = []
        synthesized = clamped = merged = prepended = appended = ticked = prepended_first = 0
        stage_fc = {}
        for stages in self.stages.values():
            stage_fc.update({s.stage: s.forecast_category for s in stages.values()})
        for deal in deals:
            did = deal["deal_id"]
            rows = [row for *_, row in sorted(per_deal.get(did, []), key=lambda x: x[:3])]
            rec = self.deal_rec[did]
            if not rows:
                closed = deal["status"] != "open"
                end = (self.ts(rec, f"{deal['status']}_time") or datetime.combine(deal["close_date"], datetime.min.time())
                       ) if closed else (self.ts(rec, "stage_changed_at") or self._last_modified.get(did))
                via = []
                if rec.get("via_stage") and closed:
                    via_name = self.value("stage", rec.get("via_stage"))
                    if via_name in self.stages[deal["pipeline"]]:
                        via = [(self.ts(rec, "stage_changed_at"), via_name)]
                out += synthesize_history(deal, self.first_stage(deal["pipeline"]), end, via, stage_fc)
                synthesized += 1
                continue
            for row in rows:  # a change cannot precede the deal's creation
                if row["changed_at"] < deal["created_at"]:
                    row["changed_at"] = deal["created_at"]
                    clamped += 1
            kept: list[dict] = []
            for row in rows:
                if kept and kept[-1]["changed_at"] >= row["changed_at"]:
                    if row["_partial"] and kept[-1]["_partial"] and row["stage"] != kept[-1]["stage"]:
                        # two stages entered on one date: both visits happened, a second apart
                        row["changed_at"] = kept[-1]["changed_at"] + TICK
                        kept.append(row)
                        ticked += 1
                    else:  # one state per instant: the later row in file order wins
                        kept[-1] = row
                        merged += 1
                else:
                    kept.append(row)
            if kept[0]["changed_at"] > deal["created_at"]:
                first = self.first_stage(deal["pipeline"])
                if kept[0]["_partial"] and first and kept[0]["stage"] != first:
                    # Only the dates stages were entered are known: before the first of them the
                    # deal sat in the pipeline's first stage, as in a synthesised history.
                    kept.insert(0, {**kept[0], "changed_at": deal["created_at"], "stage": first,
                                    "forecast_category": stage_fc.get(first), "is_synthetic": True})
                    prepended_first += 1
                else:
                    kept.insert(0, {**kept[0], "changed_at": deal["created_at"], "is_synthetic": True})
                prepended += 1
            last = kept[-1]
            current = (deal["stage"], deal["amount"], deal["close_date"], deal["forecast_category"])
            if (last["stage"], last["amount"], last["close_date"], last["forecast_category"]) != current:
                end = self._last_modified.get(did) or (
                    datetime.combine(deal["close_date"], datetime.min.time()) if deal["status"] != "open" else None)
                t = max(end, last["changed_at"] + TICK) if end else last["changed_at"] + TICK
                kept.append({"deal_id": did, "changed_at": t, "stage": deal["stage"], "amount": deal["amount"],
                             "close_date": deal["close_date"], "forecast_category": deal["forecast_category"],
                             "is_synthetic": True})
                appended += 1
            out += kept
        real = {True: [], False: []}  # real rows from stage_dates / from the export's history
        for row in out:
            row.pop("_partial", None)
            if not row["is_synthetic"]:
                real[row["_dated"]].append(row["deal_id"])
            row.pop("_dated", None)
        label = self.ex.history_label or "history"
        if self.ex.history is not None:
            r.note(f"history: {len(real[False])} rows from {label} for {len(set(real[False]))} deals")
        if dated_rows:
            used = ", ".join(f"{c} → {s}" for s, c in self.m.stage_dates.items())
            r.note(f"history: {len(real[True])} rows from the stage dates of {self.ex.deals_file} ({used}) "
                   f"for {len(set(real[True]))} deals; amount and close date on those rows are the deal's "
                   f"current values")
        if ticked:
            r.note(f"history: {ticked} stage dates fell on the same instant as the deal's previous stage date; "
                   f"both visits are kept, one second apart (in stage order)")
        if self.ex.history_partial:
            r.note(f"history: {label} records stage changes only; amount and close date on "
                   f"those rows are the deal's current values")
        if clamped:
            r.note(f"history: {clamped} rows dated before their deal's creation were moved to the creation time")
        if merged:
            r.note(f"history: {merged} rows shared their timestamp with a later row of the same deal and "
                   f"were merged (the later row in file order is the state at that instant)")
        if prepended - prepended_first:
            r.note(f"history: {prepended - prepended_first} deals' history started after creation; a creation "
                   f"row with the first known state was added (is_synthetic = true)")
        if prepended_first:
            r.note(f"history: {prepended_first} deals entered their first dated stage after creation; a "
                   f"creation row in the pipeline's first stage was added (is_synthetic = true)")
        if appended:
            r.note(f"history: {appended} deals' history did not end in their current state; a final row "
                   f"matching the current deal was added at its last-modified time (is_synthetic = true)")
        if synthesized:
            r.note(SYNTH_NOTE.format(n=synthesized))
        return out

    # ---------------------------------------------------------- vocabulary
    def check_vocabulary(self, column: str, values: list[tuple[str | None, Rec]]) -> None:
        """`allowed:` lists, and spellings that differ only in case/spacing/punctuation."""
        allowed = self.m.allowed.get(column)
        seen: Counter = Counter(v for v, _ in values if v)
        if allowed:
            for v, rec in values:
                if v and v not in allowed:
                    self.r.unmatched(f"{column} values not in allowed.{column} (kept as written; map them "
                                     f"under values.{column})", v, rec.file, rec.line, did_you_mean(v, allowed))
        groups: dict[str, list[str]] = defaultdict(list)
        for v in seen:
            groups[normalize(v)].append(v)
        for variants in groups.values():
            if len(variants) > 1:
                listed = ", ".join(f"'{v}' ×{seen[v]}" for v in sorted(variants, key=lambda v: -seen[v]))
                self.r.note(f"{column}: {listed} look like one value spelled {len(variants)} ways; "
                            f"map them under values.{column}")
