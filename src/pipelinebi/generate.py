"""Deterministic synthetic CRM data of any size, generated in DuckDB SQL.

``generate(out_dir, deals=N, seed=S)`` writes one file per canonical table
(``reps``, ``accounts``, ``stages``, ``deals``, ``deal_history``, ``targets``, ``leads``,
``activities``, ``spend``; CSV or Parquet) that conforms to :mod:`pipelinebi.canonical`.  The output
is byte-for-byte identical for the same ``(deals, seed, as_of, fmt)``.

>>> import tempfile
>>> counts = generate(Path(tempfile.mkdtemp()), deals=40, seed=7)
>>> list(counts)[:4], counts["deals"], counts["stages"]
(['reps', 'accounts', 'stages', 'deals'], 40, 11)

What the data looks like (so that dashboards tell a story):

* About 2.5 years of deals (``as_of`` - 900 days … ``as_of``), growing over time, busier in
  Q4 and at quarter ends; ``as_of`` (default :data:`DEMO_AS_OF`) is the data's "today" and
  every timestamp is before ``as_of`` 00:00.
* Six teams in three regions (NA, EMEA, APAC); about one rep per 60 deals (at least 12);
  reps differ in skill (win rate and speed); a few reps have left (``active = false``).
* Two pipelines: "New Business" (Prospecting → Discovery → Solution Design → Proposal →
  Negotiation → Closed Won / Closed Lost) and "Renewal" (Renewal Review → Quote → Closed
  Won / Closed Lost).
* ``deal_history`` is a per-deal simulation with stage-dependent advance rates, skipped
  stages, regressions, stalls, close-date pushes and amount changes (each a separate row,
  carrying the full state after the change).  Open deals are those whose next event falls
  after ``as_of``, so there are open deals of every age.
* **Planted bottleneck**: team **"EMEA Mid-Market"**, pipeline "New Business", stage
  **Proposal**: Proposal → Negotiation converts at about half the rate of the other teams,
  and deals dwell about twice as long (and stall more often) in Proposal.  The team's
  quota is set like NA Mid-Market's, so it also misses quota.
* Targets: one row per rep per quarter in which the rep is employed (from the first quarter
  of data through the quarter after ``as_of``); the company plan follows the growth trend
  a little above actual bookings, split by segment class and team, so skilled reps beat
  quota and others miss (see :func:`_targets`).
* Leads: converted leads (one per New Business deal from inbound, event, partner and
  referral sources, and some outbound) and many more non-converted ones; engaged leads
  (more activities) are the ones that convert.  Activities average about 7 per deal.
* Spend: monthly marketing spend per lead source and campaign, following the leads each
  source brings (a cost per lead per source, ± 15%; see :func:`_spend`).  A lead's tracked
  touches (email opens, web visits) carry a campaign of the spend table: mostly one of the
  lead's own source, the rest a nurture campaign of another source (see :func:`_activities`).
* **Planted playbook events** (:data:`PLANTS`): a handful of New Business deals (and one lead),
  picked by the seed, whose history is rewritten so that each trigger of
  ``semantic/rules/triggers.yml`` has an event to catch within its 90-day lookback — and only
  that trigger: a key deal entering Solution Design, a deal over 50k entering Negotiation, a
  move back from Proposal, a close date pushed a second time, a deal won straight from
  Proposal (the simulation never skips Negotiation on the way to a win), a high-value deal
  silent for five weeks, a new lead nobody contacted. A planted deal keeps its key, account,
  owner and creation; its later history, amount and touches are the story's (touches weekly,
  so an idle trigger fires only where the story wants one). See :func:`_plant`.
* **Forecast effects** (``effects=True``, ``pipelinebi generate --forecast-effects``; off by
  default, so the committed demo data in ``seeds/`` stays what it is): known right answers for
  the forecast backtest (issue #16), see :data:`OPTIMISTIC_TEAM`, :data:`SANDBAGGING_TEAM`,
  :data:`STAGE_PROBABILITY_OFF` and :data:`ENGAGEMENT`:

  - reps of team **"NA Enterprise"** call a deal *commit* 60% of the time, whatever its stage,
    and keep commit when its close date slips: their commit call runs high (the backtest shows
    a positive commit bias for that team, negative for every other); reps of **"APAC"** call
    one category *down* 60% of the time (sandbagging: the lowest commit bias);
  - the CRM's stage probability is **off for one stage**: New Business "Proposal" says 90%,
    while about 65% of the deals that reach it win (the simulation is unchanged);
  - a hidden **engagement** per deal (standard normal, clipped to ±2.5) raises its chance to
    advance at each step by 0.1 × engagement and adds touches (4 × engagement more activities
    when positive): activity really predicts winning and the stage alone does not — the learned
    model beats the stage probability on held-out quarters (``tests/test_forecast_effects.py``
    states the margins).
  Everything else is drawn exactly as without effects (same keys and salts), so the two runs
  differ only by these effects.

Randomness is a hash of ``(seed, key, salt)`` turned into a uniform number (the ``u``
macro in :func:`_macros`): unlike ``random()`` it depends neither on threads nor on row
order.  Outputs are sorted on integer keys before ``COPY``, so files are byte-identical.
DuckDB's multi-argument ``hash()`` combines its arguments weakly (``hash(s, k, 'a')`` and
``hash(s, k, 'b')`` correlate at 0.87), so the combined hash is hashed once more.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import date, datetime
from pathlib import Path
from typing import Sequence

import duckdb

from .canonical import LOAD_ORDER, TABLES
from .errors import ConfigError, Problem, unknown_name_hint
from .progress import Progress, no_progress

#: The data's "today" when no ``as_of`` is given: keeps the demo reproducible.
DEMO_AS_OF = date(2026, 11, 15)
#: Days of history before ``as_of``.
HISTORY_DAYS = 900
#: Upper bound on ``deals`` (memory and disk, not correctness).
MAX_DEALS = 10_000_000
FORMATS = ("csv", "parquet")
#: The planted bottleneck (see the module docstring).
BOTTLENECK_TEAM = "EMEA Mid-Market"
BOTTLENECK_STAGE = "Proposal"
#: Safety net for the simulation loop; almost every deal closes or is censored far sooner.
#: Forecast effects (``effects=True``): who calls optimistically / sandbags, and how often.
OPTIMISTIC_TEAM = "NA Enterprise"
SANDBAGGING_TEAM = "APAC"
CALL_BIAS = 0.6
#: (pipeline, stage) -> the probability the CRM says, with effects on (the truth is unchanged).
STAGE_PROBABILITY_OFF = {("New Business", "Proposal"): 0.9}
#: Engagement's effect on the chance to advance per step, and on the number of touches.
ENGAGEMENT = {"advance": 0.1, "touches": 4.0}

#: Planted playbook events (:func:`_plant`): story, the trigger it is for, account segments it may
#: be told on (0 SMB, 1 Mid-Market, 2 Enterprise), the deal's amount, its steps after creation —
#: (days after its creation "c" or before the as-of date "n", New Business stage position
#: 1 Prospecting … 5 Negotiation, 6 Closed Won; close date in days from the as-of date, or None for
#: the one drawn at creation) — and until when it is touched weekly (days before the as-of date, or
#: "close": until it closed). Deals are created 150-200 days before the as-of date in Prospecting.
PLANTS: tuple[tuple[str, str, tuple[int, ...], int, tuple[tuple[str, int, int, int | None], ...], int | str], ...] = (
    # a key deal (Enterprise, 380k) enters Solution Design 40 days ago, Proposal 20 days ago
    ("key_deal_demo", "presales_for_demo", (2,), 380_000,
     (("c", 5, 2, None), ("n", -40, 3, None), ("n", -20, 4, 45)), 0),
    # 80k enters Negotiation 12 days ago (Solution Design long before the lookback window)
    ("negotiation_80k", "negotiation_legal_finance", (1,), 80_000,
     (("c", 5, 2, None), ("c", 12, 3, None), ("n", -60, 4, None), ("n", -12, 5, 30)), 0),
    # 15k moves back from Proposal to Discovery 18 days ago
    ("moved_back", "moved_backwards", (0,), 15_000,
     (("c", 5, 2, None), ("c", 12, 3, None), ("n", -45, 4, None), ("n", -18, 2, 40)), 0),
    # close date pushed 50 days ago (to +10 days) and again 15 days ago (to +40 days)
    ("pushed_twice", "close_date_pushed_twice", (0, 1), 12_000,
     (("c", 5, 2, None), ("n", -50, 2, 10), ("n", -15, 2, 40)), 0),
    # won 10 days ago straight from Proposal
    ("won_from_proposal", "won_skipping_stages", (0, 1), 45_000,
     (("c", 5, 2, None), ("c", 12, 3, None), ("n", -50, 4, None), ("n", -10, 6, -10)), "close"),
    # a high-value deal (Enterprise, 450k) in Proposal since long before the lookback, last touched ~5 weeks ago
    ("silent_key_deal", "high_value_idle", (2,), 450_000,
     (("c", 5, 2, None), ("c", 12, 3, None), ("n", -100, 4, 30)), 35),
)
#: The planted lead: a lead created 3-10 days before the as-of date, new, never touched
PLANTED_LEAD_TRIGGER = "lead_not_contacted"

_MAX_STEPS = 60
#: DuckDB's buffer limit: larger intermediate results spill to a temporary folder.
_MEMORY_LIMIT = "1GB"
#: Deals simulated at a time (see :func:`_simulate`): a chunk's step tables fit in _MEMORY_LIMIT.
_CHUNK_DEALS = 1_000_000
_PARQUET_COMPRESSION = "zstd"

# team, region, quota class, deals a rep carries relative to a mid-market rep
TEAMS: tuple[tuple[str, str, str, float], ...] = (
    ("NA Enterprise", "NA", "Enterprise", 0.6),
    ("NA Mid-Market", "NA", "Mid-Market", 1.0),
    ("NA SMB", "NA", "SMB", 1.5),
    ("EMEA Enterprise", "EMEA", "Enterprise", 0.6),
    ("EMEA Mid-Market", "EMEA", "Mid-Market", 1.1),
    ("APAC", "APAC", "APAC", 1.0),
)
SEGMENTS = ("SMB", "Mid-Market", "Enterprise")

# pipeline -> open stages: (stage, probability, forecast category, median dwell days,
# chance to advance when the stage changes, chance to move back)
PIPELINES: dict[str, tuple[tuple[str, float, str, float, float, float], ...]] = {
    "New Business": (
        ("Prospecting", 0.10, "pipeline", 9, 0.62, 0.0),
        ("Discovery", 0.20, "pipeline", 12, 0.70, 0.05),
        ("Solution Design", 0.40, "pipeline", 15, 0.74, 0.06),
        ("Proposal", 0.60, "best_case", 14, 0.74, 0.08),
        ("Negotiation", 0.80, "commit", 11, 0.80, 0.07),
    ),
    "Renewal": (
        ("Renewal Review", 0.50, "best_case", 18, 0.88, 0.0),
        ("Quote", 0.75, "commit", 12, 0.90, 0.04),
    ),
}

_FIRST = (
    "Ava", "Ben", "Chloe", "Daniel", "Elena", "Farid", "Grace", "Hiro", "Isla", "Jamal",
    "Kara", "Liam", "Maya", "Noah", "Olivia", "Pedro", "Quinn", "Rosa", "Sam", "Tara",
    "Umar", "Vera", "Wei", "Ximena", "Yara", "Zane", "Amir", "Bianca", "Carlos", "Dana",
    "Emeka", "Fiona", "Gustav", "Hana", "Ivan", "Julia", "Kenji", "Lena", "Marco", "Nadia",
    "Oscar", "Priya", "Rafael", "Sofia", "Tomas", "Uma", "Viktor", "Wen", "Yusuf", "Zoe",
    "Aisha", "Bruno", "Clara", "Diego", "Erik", "Freya", "Gabriel", "Helena", "Ines", "Jonas",
)
_LAST = (
    "Chen", "Smith", "Garcia", "Müller", "Okafor", "Tanaka", "Rossi", "Kowalski", "Dubois",
    "Johnson", "Nguyen", "Patel", "Silva", "Kim", "Andersson", "Haddad", "Novak", "O'Brien",
    "Schmidt", "Lopez", "Sato", "Jansen", "Moreau", "Ivanova", "Brown", "Khan", "Fischer",
    "Costa", "Lee", "Walker", "Bianchi", "Nakamura", "Wright", "Petrov", "Hughes", "Eriksen",
    "Mendes", "Park", "Clarke", "Singh", "Romero", "Wagner", "Yilmaz", "Murphy", "Lindqvist",
    "Ahmed", "Taylor", "Morales", "Kuznetsov", "Bauer", "Reyes", "Suzuki", "Evans", "Santos",
    "Horvat", "Dias", "Nielsen", "Cohen", "Ito", "Martin",
)
_ACCOUNT_PREFIX = (
    "Northwind", "Blue Harbor", "Apex", "Summit", "Crescent", "Ironwood", "Silverline",
    "Redwood", "Brightpath", "Evergreen", "Granite", "Horizon", "Keystone", "Lakeshore",
    "Maple", "Nimbus", "Oakridge", "Pinnacle", "Quantum", "Riverbend", "Sterling", "Tidewater",
    "Union", "Vanguard", "Westfield", "Zenith", "Aurora", "Beacon", "Cobalt", "Delta",
    "Emerald", "Falcon", "Golden Gate", "Harborview", "Indigo", "Juniper", "Kestrel", "Lumen",
    "Meridian", "Nova",
)
# industry, weight, name cores
_INDUSTRIES: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("Software", 22, ("Software", "Systems", "Labs", "Cloud", "Data")),
    ("Financial Services", 16, ("Capital", "Bank", "Financial", "Insurance", "Payments")),
    ("Healthcare", 14, ("Health", "Medical", "Clinics", "Pharma", "Care")),
    ("Manufacturing", 14, ("Industries", "Manufacturing", "Components", "Motors", "Tools")),
    ("Retail", 12, ("Retail", "Stores", "Brands", "Outfitters", "Markets")),
    ("Education", 8, ("University", "Learning", "Academy", "Schools", "Education")),
    ("Logistics", 8, ("Logistics", "Freight", "Shipping", "Transport", "Supply")),
    ("Media", 6, ("Media", "Studios", "Publishing", "Broadcasting", "Entertainment")),
)
_SUFFIX = {
    "NA": ("Inc", "Corp", "LLC", "Group", "Holdings"),
    "EMEA": ("Ltd", "GmbH", "AG", "SA", "plc"),
    "APAC": ("Pty Ltd", "KK", "Pte Ltd", "Group", "Ltd"),
}
_REGIONS = (("NA", 0.5), ("EMEA", 0.3), ("APAC", 0.2))
_SEGMENT_WEIGHTS = ((0, 0.45), (1, 0.37), (2, 0.18))  # SMB, Mid-Market, Enterprise
# employees per segment: [low, high)
_EMPLOYEES = ((10, 200), (200, 2000), (2000, 150000))
_NB_SOURCES = (("inbound", 35), ("outbound", 30), ("event", 13), ("partner", 12), ("referral", 10))
_LEAD_SOURCES = (("inbound", 45), ("event", 20), ("outbound", 15), ("partner", 10), ("referral", 10))


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _sql_list(items: Sequence[str]) -> str:
    return "[" + ", ".join(_sql_str(i) for i in items) + "]"


def _employees(u: str) -> str:
    """Head count for segment ``seg`` (0-based), log-uniform within its _EMPLOYEES band, from
    uniform ``u`` — the same rule for accounts and leads.

    >>> _employees("x")
    'least([200, 2000, 150000][seg + 1] - 1, floor(exp(ln([10, 200, 2000][seg + 1]) + x * (ln([200, 2000, 150000][seg + 1]) - ln([10, 200, 2000][seg + 1])))))::INTEGER'
    """
    lo = "[" + ", ".join(str(low) for low, _ in _EMPLOYEES) + "]"
    hi = "[" + ", ".join(str(high) for _, high in _EMPLOYEES) + "]"
    return (f"least({hi}[seg + 1] - 1, floor(exp(ln({lo}[seg + 1]) + {u} "
            f"* (ln({hi}[seg + 1]) - ln({lo}[seg + 1])))))::INTEGER")


def _choice(u: str, options: Sequence[tuple[object, float]]) -> str:
    """A CASE expression that picks a value with the given weights from uniform ``u``.

    >>> _choice("x", [("a", 1), ("b", 3)])
    "CASE WHEN x < 0.25 THEN 'a' ELSE 'b' END"
    """
    total = float(sum(w for _, w in options))
    lit = lambda v: _sql_str(v) if isinstance(v, str) else str(v)  # noqa: E731
    parts, cum = [], 0.0
    for value, weight in options[:-1]:
        cum += weight
        parts.append(f"WHEN {u} < {round(cum / total, 6)} THEN {lit(value)}")
    return f"CASE {' '.join(parts)} ELSE {lit(options[-1][0])} END"


def _macros(seed: int) -> str:
    # u(): uniform [0, 1) from 53 bits of a re-hashed (seed, key, salt); nrm(): standard
    # normal by Box-Muller.  Keys are always cast to BIGINT so the hash sees one type.
    return f"""
    CREATE MACRO u(k, salt) AS
        (hash(hash({seed}::BIGINT, k::BIGINT, salt)) >> 11)::DOUBLE / 9007199254740992.0;
    CREATE MACRO nrm(k, salt) AS
        sqrt(-2 * ln(1 - u(k, salt || '.1'))) * cos(2 * pi() * u(k, salt || '.2'));
    CREATE MACRO dt(d) AS DATE '1970-01-01' + d::INTEGER;
    CREATE MACRO ts(s) AS make_timestamp(s::BIGINT * 1000000);
    CREATE MACRO qend(d) AS
        last_day(date_trunc('quarter', dt(d)) + INTERVAL 2 MONTH) - DATE '1970-01-01';
    CREATE MACRO person(n) AS
        {_sql_list(_FIRST)}[((n % {len(_FIRST) * len(_LAST)}) * 1453 % {len(_FIRST) * len(_LAST)}) % {len(_FIRST)} + 1]
        || CASE WHEN n >= {len(_FIRST) * len(_LAST)}
                THEN ' ' || chr((65 + ((n // {len(_FIRST) * len(_LAST)} - 1) % 26))::INTEGER) || '.' ELSE '' END
        || ' ' || {_sql_list(_LAST)}[((n % {len(_FIRST) * len(_LAST)}) * 1453 % {len(_FIRST) * len(_LAST)}) // {len(_FIRST)} + 1]
        || CASE WHEN n >= {27 * len(_FIRST) * len(_LAST)}
                THEN ' ' || (n // {27 * len(_FIRST) * len(_LAST)} + 1)::VARCHAR ELSE '' END;
    CREATE MACRO code(prefix, n, width) AS prefix || lpad(n::VARCHAR, width, '0');
    """


# ------------------------------------------------------------------ validation
def _check_args(deals: object, seed: object, fmt: object, as_of: object) -> tuple[int, int, str, date]:
    problems: list[Problem] = []
    if isinstance(deals, bool) or not isinstance(deals, int):
        problems.append(Problem(f"must be a whole number, got {deals!r}", key="deals"))
    elif not 1 <= deals <= MAX_DEALS:
        problems.append(Problem(f"must be between 1 and {MAX_DEALS:,}, got {deals:,}", key="deals",
                                hint="the demo uses 3000; benchmarks use 100000 or 1000000"))
    if isinstance(seed, bool) or not isinstance(seed, int):
        problems.append(Problem(f"must be a whole number, got {seed!r}", key="seed"))
    elif not -(2**63) <= seed < 2**63:
        problems.append(Problem("must fit in 64 bits", key="seed"))
    if fmt not in FORMATS:
        problems.append(Problem(f"unknown format {fmt!r}", key="format",
                                hint=unknown_name_hint(str(fmt), FORMATS)))
    day: date | None = None
    if as_of is None:
        day = DEMO_AS_OF
    elif isinstance(as_of, datetime):
        day = as_of.date()
    elif isinstance(as_of, date):
        day = as_of
    elif isinstance(as_of, str):
        try:
            day = date.fromisoformat(as_of.strip())
        except ValueError:
            problems.append(Problem(f"cannot read {as_of!r} as a date", key="as_of",
                                    hint="use YYYY-MM-DD, e.g. 2026-11-15"))
    else:
        problems.append(Problem(f"must be a date or YYYY-MM-DD, got {as_of!r}", key="as_of"))
    if day is not None and not date(1980, 1, 1) <= day <= date(2200, 1, 1):
        problems.append(Problem(f"{day} is out of range", key="as_of", hint="accepted: 1980-01-01 … 2200-01-01"))
        day = None
    if problems:
        raise ConfigError(problems)
    assert day is not None
    return int(deals), int(seed), str(fmt), day  # type: ignore[arg-type]


# ------------------------------------------------------------------ the steps
def _numbered(con: duckdb.DuckDBPyConnection, src: str, dst: str, order: str, column: str) -> None:
    """Copy ``src`` to ``dst`` sorted by ``order`` with a 1-based ``column`` in that order.

    A sorted CREATE TABLE keeps its order (insertion order is preserved), so the rowid is
    the rank: several times faster than ``row_number() OVER (ORDER BY …)`` on millions of
    rows.  The tests check that ids follow time.
    """
    con.execute(f"CREATE TABLE {dst}_s AS SELECT * FROM {src} ORDER BY {order}")
    con.execute(f"CREATE TABLE {dst} AS SELECT *, rowid + 1 AS {column} FROM {dst}_s")
    con.execute(f"DROP TABLE {dst}_s; DROP TABLE {src}")


def _reference_tables(con: duckdb.DuckDBPyConnection, now_d: int, effects: bool = False) -> None:
    """teams, stage parameters (sp) and the creation-day calendar (cal); with ``effects`` the
    stages' stated probabilities are :data:`STAGE_PROBABILITY_OFF` where listed."""
    team_rows = ", ".join(
        f"({i}, {_sql_str(n)}, {_sql_str(r)}, {_sql_str(c)}, {load})"
        for i, (n, r, c, load) in enumerate(TEAMS)
    )
    con.execute(f"CREATE TABLE teams AS SELECT * FROM (VALUES {team_rows}) t(team_id, team, region, qclass, load)")
    rows = []
    for p, (pipeline, stages) in enumerate(PIPELINES.items()):
        n = len(stages)
        for pos, (stage, prob, fc, med, adv, regr) in enumerate(stages, start=1):
            late = pos >= n - 1
            if effects:
                prob = STAGE_PROBABILITY_OFF.get((pipeline, stage), prob)
            rows.append(f"({p}, {_sql_str(pipeline)}, {pos}, {_sql_str(stage)}, {prob}, 'open', '{fc}', {med}, {adv}, {regr}, {late})")
        rows.append(f"({p}, {_sql_str(pipeline)}, {n + 1}, 'Closed Won', 1, 'won', 'closed', NULL, NULL, NULL, NULL)")
        rows.append(f"({p}, {_sql_str(pipeline)}, {n + 2}, 'Closed Lost', 0, 'lost', 'omitted', NULL, NULL, NULL, NULL)")
    con.execute(
        "CREATE TABLE sp AS SELECT * FROM (VALUES " + ", ".join(rows) + ") "
        "t(pipe, pipeline, pos, stage, prob, kind, fc, med, adv, regr, late)"
    )
    con.execute("CREATE TABLE pipes AS SELECT pipe, count(*) FILTER (kind = 'open') AS nopen FROM sp GROUP BY pipe")
    # Creation-day weights (integers, so sums are exact): growth over the window (and
    # beyond, for plans), quiet weekends, a busier Q4 and a push in each quarter's last month.
    start_d = now_d - HISTORY_DAYS
    con.execute(f"""
        CREATE MACRO dayw(d) AS (1000 * (0.55 + 0.45 * (d - {start_d}) / {HISTORY_DAYS})
            * CASE dayofweek(dt(d)) WHEN 0 THEN 0.06 WHEN 6 THEN 0.1 ELSE 1 END
            * CASE quarter(dt(d)) WHEN 4 THEN 1.2 WHEN 1 THEN 0.9 ELSE 1 END
            * CASE WHEN month(dt(d)) % 3 = 0 THEN 1.15 ELSE 1 END)::BIGINT;
        CREATE TABLE cal AS
        SELECT d, sum(dayw(d)) OVER (ORDER BY d) AS cum FROM range({start_d}, {now_d}) t(d)
        """)


def _accounts(con: duckdb.DuckDBPyConnection, n_acc: int) -> None:
    industries = [(i, w) for i, (_, w, _) in enumerate(_INDUSTRIES)]
    names = "[" + ", ".join(_sql_str(n) for n, _, _ in _INDUSTRIES) + "]"
    cores = "[" + ", ".join(_sql_list(c) for _, _, c in _INDUSTRIES) + "]"
    suffix = "CASE region " + " ".join(
        f"WHEN '{r}' THEN {_sql_list(s)}[1 + floor(u(a, 'acc.sfx') * {len(s)})::INTEGER]" for r, s in _SUFFIX.items()
    ) + " END"
    con.execute(f"""
        CREATE TABLE acc AS
        WITH a0 AS (
            SELECT range AS a, {_choice("u(range, 'acc.region')", _REGIONS)} AS region,
                   {_choice("u(range, 'acc.seg')", _SEGMENT_WEIGHTS)} AS seg,
                   {_choice("u(range, 'acc.ind')", industries)} AS ind
            FROM range({n_acc})
        ), a1 AS (
            SELECT a, region, seg, {names}[ind + 1] AS industry,
                   {_employees("u(a, 'acc.emp')")} AS employees,
                   {_sql_list(_ACCOUNT_PREFIX)}[1 + floor(u(a, 'acc.pre') * {len(_ACCOUNT_PREFIX)})::INTEGER]
                   || ' ' || {cores}[ind + 1][1 + floor(u(a, 'acc.core') * 5)::INTEGER]
                   || ' ' || {suffix} AS base_name
            FROM a0
        )
        SELECT a1.*, t.team_id,
               -- duplicates get a number so that every account name is unique
               CASE WHEN row_number() OVER (PARTITION BY base_name ORDER BY a) = 1 THEN base_name
                    ELSE base_name || ' ' || row_number() OVER (PARTITION BY base_name ORDER BY a) END AS name
        FROM a1 JOIN teams t ON t.team = CASE
            WHEN a1.region = 'APAC' THEN 'APAC'
            WHEN a1.region = 'EMEA' AND seg = 2 THEN 'EMEA Enterprise'
            WHEN a1.region = 'EMEA' THEN 'EMEA Mid-Market'
            WHEN seg = 2 THEN 'NA Enterprise' WHEN seg = 1 THEN 'NA Mid-Market' ELSE 'NA SMB' END
    """)


def _deals(con: duckdb.DuckDBPyConnection, n: int, n_acc: int) -> None:
    """d0: one row per deal with everything fixed at creation (owner comes later)."""
    con.execute(f"""
        CREATE TABLE d0 AS
        WITH k AS (
            SELECT range AS k, floor(u(range, 'deal.day') * (SELECT max(cum) FROM cal))::BIGINT + 1 AS target,
                   floor({n_acc} * pow(u(range, 'deal.acc'), 1.3))::BIGINT AS a
            FROM range({n})
        )
        SELECT k.k, k.a, cal.d * 86400 + 28800 + floor(u(k.k, 'deal.tod') * 36000)::BIGINT AS created_s,
               acc.seg, acc.team_id, acc.region, acc.name AS account_name,
               CASE WHEN u(k.k, 'deal.pipe') < 0.22 THEN 1 ELSE 0 END AS pipe
        FROM k ASOF JOIN cal ON k.target <= cal.cum JOIN acc ON acc.a = k.a
    """)
    _numbered(con, "d0", "d0n", "created_s, k", "deal_no")  # deal ids follow creation time
    nb_products = (("Core Platform", 55), ("Analytics Add-on", 25), ("Services", 20))
    rn_products = (("Core Platform", 80), ("Analytics Add-on", 20))
    ucur = "u(k, 'deal.cur')"
    currency = (
        "CASE region WHEN 'NA' THEN 'USD' "
        f"WHEN 'EMEA' THEN {_choice(ucur, (('EUR', 60), ('GBP', 40)))} "
        f"ELSE {_choice(ucur, (('AUD', 40), ('SGD', 30), ('JPY', 30)))} END"
    )
    con.execute(f"""
        CREATE TABLE d1 AS
        WITH x AS (
            SELECT d0n.*,
                   CASE pipe WHEN 0 THEN {_choice("u(k, 'deal.prod')", nb_products)}
                             ELSE {_choice("u(k, 'deal.prod')", rn_products)} END AS product,
                   CASE pipe WHEN 0 THEN {_choice("u(k, 'deal.src')", _NB_SOURCES)}
                             ELSE 'existing customer' END AS source,
                   {currency} AS currency
            FROM d0n
        )
        SELECT x.*,
               -- log-normal amount: segment median x product share, rounded to 50
               greatest(500, round([10000, 40000, 150000][seg + 1]
                   * CASE product WHEN 'Core Platform' THEN 1 WHEN 'Analytics Add-on' THEN 0.45 ELSE 0.3 END
                   * CASE pipe WHEN 1 THEN 0.8 ELSE 1 END
                   * exp(0.6 * nrm(k, 'deal.amt')) / 50) * 50) AS amt0,
               created_s // 86400 + greatest(14, round(CASE pipe WHEN 1 THEN 30 + 60 * u(k, 'deal.cd')
                   ELSE [30, 50, 90][seg + 1] * exp(0.35 * nrm(k, 'deal.cd')) END))::BIGINT AS cd0,
               CASE WHEN pipe = 1 THEN CASE WHEN u(k, 'deal.entry') < 0.1 THEN 2 ELSE 1 END
                    ELSE {_choice("u(k, 'deal.entry')", ((1, 85), (2, 10), (3, 5)))} END AS pos0
        FROM x
    """)


def _reps(con: duckdb.DuckDBPyConnection, n: int, now_d: int) -> int:
    """reps_i: team members with skill, hire and (internal) leave day; returns the count."""
    start_d = now_d - HISTORY_DAYS
    total = max(12, round(n / 60))
    con.execute(f"""
        CREATE TABLE team_size AS
        WITH c AS (
            SELECT t.team_id, t.team, t.qclass, count(d1.k) / t.load AS w
            FROM teams t LEFT JOIN d1 USING (team_id) GROUP BY t.team_id, t.team, t.qclass, t.load
        )
        SELECT team_id, team, qclass,
               greatest(2, round({total} * w / (SELECT sum(w) FROM c)))::BIGINT AS size FROM c
    """)
    con.execute(f"""
        CREATE TABLE reps_i AS
        WITH r AS (
            SELECT ts.team_id, ts.team, ts.qclass, ts.size, i.idx, ts.team_id * 1000000 + i.idx AS rk
            FROM team_size ts, LATERAL (SELECT unnest(range(ts.size)) AS idx) i
        ), r2 AS (
            SELECT r.*,
                   greatest(-2.5, least(2.5, nrm(rk, 'rep.skill'))) AS skill,
                   -- rep 0 of each team is the always-there anchor; NA SMB's rep 1 has left
                   CASE WHEN idx = 0 OR u(rk, 'rep.veteran') < 0.72
                        THEN {start_d} - 30 - floor(u(rk, 'rep.hire') * 1400)
                        ELSE {start_d} + floor(u(rk, 'rep.hire') * {HISTORY_DAYS - 60}) END::BIGINT AS hired_day
            FROM r
        )
        SELECT r2.*,
               CASE WHEN idx > 0 AND hired_day < {start_d}
                         AND (u(rk, 'rep.left') < 0.1 OR (team = 'NA SMB' AND idx = 1))
                    THEN {start_d} + 150 + floor(u(rk, 'rep.leftday') * {HISTORY_DAYS - 200})::BIGINT END AS left_day,
               row_number() OVER (ORDER BY u(rk, 'rep.order'), rk) AS rep_no,
               dense_rank() OVER (ORDER BY team_id, idx // 8) AS pod_no
        FROM r2
    """)
    return con.execute("SELECT count(*) FROM reps_i").fetchone()[0]


def _pick_owner(source: str, key: str, team: str, day: str, salt: str) -> str:
    """SQL: (key, rep_no) choosing a random rep of the team employed on that day.

    Three random candidates, then the team's anchor rep (always employed) as fallback;
    reps leaving within 120 days get no new work.
    """
    return f"""
        SELECT key, arg_min(rep_no, c) AS rep_no FROM (
            SELECT cand.key, cand.c, r.rep_no
            FROM (
                SELECT s.{key} AS key, s.{team} AS team_id, s.{day} AS day, c.c,
                       CASE WHEN c.c = 3 THEN 0
                            ELSE floor(u(s.{key}, '{salt}' || c.c::VARCHAR) * ts.size)::BIGINT END AS idx
                FROM {source} s CROSS JOIN range(4) c(c) JOIN team_size ts ON ts.team_id = s.{team}
            ) cand
            JOIN reps_i r ON r.team_id = cand.team_id AND r.idx = cand.idx
            WHERE r.hired_day <= cand.day AND (r.left_day IS NULL OR cand.day < r.left_day - 120)
        ) GROUP BY key
    """


def _deal_attributes(con: duckdb.DuckDBPyConnection, effects: bool = False) -> None:
    # Without effects both are exactly 0, and every formula using them gives what it gave before.
    callb = (f"CASE r.team WHEN {_sql_str(OPTIMISTIC_TEAM)} THEN 1 WHEN {_sql_str(SANDBAGGING_TEAM)} THEN -1 ELSE 0 END"
             if effects else "0")
    eng = "greatest(-2.5, least(2.5, nrm(d1.k, 'deal.eng')))" if effects else "0.0"
    con.execute(f"""
        CREATE TABLE dd AS
        SELECT d1.*, o.rep_no, r.skill, r.team = '{BOTTLENECK_TEAM}' AS bneck, p.nopen,
               ({callb})::INTEGER AS callb, ({eng})::DOUBLE AS eng
        FROM d1 JOIN ({_pick_owner("(SELECT k, team_id, created_s // 86400 AS day FROM d1)", "k", "team_id", "day", "deal.owner")}) o
             ON o.key = d1.k
        JOIN reps_i r ON r.rep_no = o.rep_no JOIN pipes p USING (pipe)
    """)


def _simulate(con: duckdb.DuckDBPyConnection, now_d: int, progress: Progress) -> int:
    """Deal history, one event per deal per step, until every deal is closed or censored.

    A step draws the time to the deal's next event; if that falls after ``as_of`` the
    deal stays open as it is (censoring), so open deals of every age arise naturally.

    Deals are simulated in chunks of :data:`_CHUNK_DEALS` (by deal key): a deal's events
    depend only on its own attributes, its key and the step number, so chunks give exactly
    the rows one pass over every deal gives, while the tables of a step (``st``, ``ev``)
    stay a chunk's size instead of growing with ``deals`` (no spilling at 10M deals).
    """
    con.execute("""
        CREATE TABLE h AS
        SELECT k, 0 AS j, created_s AS t, pos0 AS pos, amt0 AS amt, cd0 AS cd,
               sp.fc, NULL::VARCHAR AS lost_reason
        FROM dd JOIN sp ON sp.pipe = dd.pipe AND sp.pos = dd.pos0
    """)
    n = con.execute("SELECT count(*) FROM dd").fetchone()[0]
    chunks = max(1, -(-n // _CHUNK_DEALS))
    steps = 0
    for c in range(chunks):
        lo, hi = c * _CHUNK_DEALS, (c + 1) * _CHUNK_DEALS
        con.execute(f"""
            CREATE OR REPLACE TABLE st AS
            SELECT k, dd.pipe, nopen, pos0 AS pos, created_s AS t, cd0 AS cd, amt0 AS amt, sp.fc,
                   seg, skill, bneck, callb, eng
            FROM dd JOIN sp ON sp.pipe = dd.pipe AND sp.pos = dd.pos0
            WHERE dd.k >= {lo} AND dd.k < {hi}
        """)
        label = "simulating deal history" + (f" (deals {lo:,}-{min(hi, n):,} of {n:,})" if chunks > 1 else "")
        steps = max(steps, _simulate_chunk(con, now_d, progress, label))
    con.execute("DROP TABLE IF EXISTS ev; DROP TABLE st")
    return steps


def _simulate_chunk(con: duckdb.DuckDBPyConnection, now_d: int, progress: Progress, label: str) -> int:
    """Run the steps for the deals in ``st`` (one chunk), appending their events to ``h``."""
    now_s = now_d * 86400
    lost_early = (("No Decision", 30), ("Timing", 25), ("Product Fit", 20), ("Budget", 15), ("Competitor", 10))
    lost_late = (("Price", 35), ("Competitor", 28), ("No Decision", 10), ("Timing", 10), ("Champion Left", 10), ("Budget", 7))
    lost_renewal = (("Budget", 30), ("Competitor", 25), ("Champion Left", 20), ("Product Fit", 15), ("Price", 10))
    steps = 0
    for j in range(1, _MAX_STEPS + 1):
        active = con.execute("SELECT count(*) FROM st").fetchone()[0]
        progress(label, j - 1, _MAX_STEPS)
        if active == 0:
            break
        steps = j
        con.execute(f"""
        CREATE OR REPLACE TABLE ev AS
        WITH x AS (
            SELECT s.*, sp.med, sp.adv, sp.regr, sp.late, s.k * 64 + {j} AS r,
                   s.bneck AND sp.stage = '{BOTTLENECK_STAGE}' AND s.pipe = 0 AS bn
            FROM st s JOIN sp ON sp.pipe = s.pipe AND sp.pos = s.pos
        ), y AS (
            SELECT x.*, u(r, 'ev') < 0.12 AS is_amt, u(r, 'mv') AS umv,
                   -- dwell: stage median x segment x skill x log-normal noise x stalls
                   med * [0.6, 1.0, 1.6][seg + 1] * exp(-0.12 * skill + 0.55 * nrm(r, 'dw'))
                       * CASE WHEN u(r, 'stall') < CASE WHEN bn THEN 0.2 ELSE 0.07 END
                              THEN 3 + 4 * u(r, 'stall.len') ELSE 1 END
                       * CASE WHEN bn THEN 2.2 ELSE 1 END
                       -- a few deals are slow all the way (they make old open deals)
                       * CASE WHEN u(k, 'deal.slow') < 0.08 THEN 4 ELSE 1 END
                       -- year-end push: things move faster in Q4
                       * CASE WHEN quarter(dt(t // 86400)) = 4 THEN 0.85 ELSE 1 END AS dwell,
                   least(0.97, greatest(0.05, adv + 0.05 * skill + [0.02, 0, -0.03][seg + 1]
                                             + {ENGAGEMENT["advance"]} * eng))
                       * CASE WHEN bn THEN 0.45 ELSE 1 END AS a,
                   CASE WHEN pos > 1 THEN regr ELSE 0 END AS rg
            FROM x
        ), z AS (
            SELECT y.*,
                   t + greatest(3600, (dwell * CASE WHEN is_amt THEN 0.5 ELSE 1 END * 86400)::BIGINT) AS tc
            FROM y
        ), w AS (
            SELECT z.*,
                   NOT is_amt AND tc // 86400 > cd AND u(r, 'push') < 0.82 AS is_push,
                   CASE WHEN is_amt THEN pos
                        WHEN umv < a THEN CASE WHEN pos = nopen THEN nopen + 1
                                               WHEN u(r, 'skip') < 0.1 AND pos + 2 <= nopen THEN pos + 2
                                               ELSE pos + 1 END
                        WHEN umv < a + rg THEN pos - 1
                        ELSE nopen + 2 END AS move_pos,
                   -- business hours (08:00-18:00) of the candidate day
                   (tc // 86400) * 86400 + 28800 + (tc % 86400) * 36000 // 86400 AS tbh
            FROM z
        ), e AS (
            SELECT w.*,
                   CASE WHEN is_push THEN pos ELSE move_pos END AS npos,
                   CASE WHEN is_push
                        THEN greatest(t + 3600, cd * 86400 + 32400 + floor(u(r, 'push.t') * 21600)::BIGINT)
                        -- closes bunch up at quarter end (more so in Q4)
                        WHEN move_pos = nopen + 1 AND u(r, 'qe') < CASE WHEN quarter(dt(tc // 86400)) = 4 THEN 0.5 ELSE 0.33 END
                          OR move_pos = nopen + 2 AND u(r, 'qe') < 0.12
                        THEN greatest(t + 600, tbh, (qend(tc // 86400) - floor(u(r, 'qe.d') * 12)::BIGINT) * 86400
                                                    + 32400 + floor(u(r, 'qe.t') * 28800)::BIGINT)
                        ELSE greatest(t + 600, tbh) END AS te
            FROM w
        )
        SELECT e.k, e.pipe, e.nopen, e.npos, e.te, e.seg, e.skill, e.bneck, e.callb, e.eng,
               CASE WHEN is_push THEN te // 86400 + 7 + floor(u(r, 'push.d') * CASE seg WHEN 2 THEN 60 ELSE 35 END)::BIGINT
                    WHEN npos > nopen THEN te // 86400
                    ELSE cd END AS ncd,
               CASE WHEN is_amt THEN CASE WHEN greatest(500, round(amt * exp(0.2 * nrm(r, 'am') + 0.02) / 50) * 50) = amt
                                          THEN amt + 50
                                          ELSE greatest(500, round(amt * exp(0.2 * nrm(r, 'am') + 0.02) / 50) * 50) END
                    WHEN npos = nopen + 1 AND u(r, 'disc') < 0.25
                         THEN greatest(500, round(amt * (0.85 + 0.13 * u(r, 'disc.f')) / 50) * 50)
                    ELSE amt END AS namt,
               CASE WHEN npos = nopen + 1 THEN 'closed'
                    WHEN npos = nopen + 2 THEN 'omitted'
                    WHEN is_push THEN CASE WHEN e.fc = 'commit' AND e.callb <= 0 AND u(r, 'fc.push') < 0.35
                                           THEN 'best_case' ELSE e.fc END
                    WHEN is_amt THEN e.fc
                    -- forecast effects: optimistic reps call one category up, sandbaggers one down
                    WHEN e.callb > 0 AND u(r, 'fc.bias') < {CALL_BIAS} THEN 'commit'
                    WHEN e.callb < 0 AND u(r, 'fc.bias') < {CALL_BIAS}
                         THEN CASE fc2 WHEN 'commit' THEN 'best_case' ELSE 'pipeline' END
                    -- reps sometimes call a deal one category up or down from the stage default
                    WHEN u(r, 'fc') < 0.06 THEN CASE fc2 WHEN 'pipeline' THEN 'best_case' ELSE 'commit' END
                    WHEN u(r, 'fc') < 0.12 THEN CASE fc2 WHEN 'commit' THEN 'best_case' ELSE 'pipeline' END
                    ELSE fc2 END AS nfc,
               CASE WHEN npos = nopen + 2 THEN
                    CASE WHEN e.pipe = 1 THEN {_choice("u(r, 'lr')", lost_renewal)}
                         WHEN late THEN {_choice("u(r, 'lr')", lost_late)}
                         ELSE {_choice("u(r, 'lr')", lost_early)} END END AS lost_reason
        FROM e JOIN (SELECT pipe AS pipe2, pos AS pos2, fc AS fc2 FROM sp) s2 ON s2.pipe2 = e.pipe AND s2.pos2 = e.npos
        WHERE e.te <= {now_s}
        """)
        con.execute(f"INSERT INTO h SELECT k, {j}, te, npos, namt, ncd, nfc, lost_reason FROM ev")
        con.execute("""
            CREATE OR REPLACE TABLE st AS
            SELECT k, pipe, nopen, npos AS pos, te AS t, ncd AS cd, namt AS amt, nfc AS fc, seg, skill, bneck,
                   callb, eng
            FROM ev WHERE npos <= nopen
        """)
    progress(label, _MAX_STEPS, _MAX_STEPS)
    return steps


def _plant(con: duckdb.DuckDBPyConnection, now_d: int) -> None:
    """Rewrite the history of one deal per story of :data:`PLANTS` (table ``plant``: k, story,
    amount, touched until). Each story picks, by the seed's hash, a New Business deal created in
    Prospecting 150-200 days before the as-of date on an account of its segments, not picked by
    another story (none where there is no such deal: small datasets may plant fewer). The deal
    keeps its creation row (at the story's amount); its other rows are the story's steps, at
    10:00 of their day. Its touches are written by :func:`_activities`."""
    con.execute("CREATE TABLE plant (k BIGINT, story VARCHAR, amount DOUBLE, until_s BIGINT)")
    lo, hi = (now_d - 200) * 86400, (now_d - 150) * 86400
    steps = []
    for story, _trigger, segs, amount, story_steps, until in PLANTS:
        k = con.execute(f"""
            SELECT arg_min(k, u(k, {_sql_str('plant.' + story)})) FROM dd
            WHERE pipe = 0 AND pos0 = 1 AND created_s BETWEEN {lo} AND {hi} AND seg IN ({", ".join(map(str, segs))})
              AND k NOT IN (SELECT k FROM plant)""").fetchone()[0]
        if k is None:
            continue
        until_s = "NULL" if until == "close" else str((now_d - until) * 86400)
        con.execute(f"INSERT INTO plant VALUES ({k}, {_sql_str(story)}, {amount}, {until_s})")
        for j, (anchor, day, pos, cd) in enumerate(story_steps, start=1):
            steps.append(f"({_sql_str(story)}, {j}, {str(anchor == 'n').lower()}, {day}, {pos}, "
                         f"{'NULL' if cd is None else now_d + cd})")
    if not steps:
        return
    con.execute(f"""
        CREATE TABLE plant_steps AS SELECT * FROM (VALUES {", ".join(steps)}) t(story, j, from_now, day, pos, cd);
        DELETE FROM h WHERE j > 0 AND k IN (SELECT k FROM plant);
        UPDATE h SET amt = plant.amount FROM plant WHERE h.k = plant.k;
        INSERT INTO h
        SELECT p.k, s.j, (CASE WHEN s.from_now THEN {now_d} ELSE dd.created_s // 86400 END + s.day) * 86400 + 36000,
               s.pos, p.amount, coalesce(s.cd, dd.cd0), sp.fc, NULL
        FROM plant p JOIN plant_steps s USING (story) JOIN dd USING (k) JOIN sp ON sp.pipe = 0 AND sp.pos = s.pos;
        DROP TABLE plant_steps;
    """)


def _plant_lead(con: duckdb.DuckDBPyConnection, now_d: int) -> None:
    """``plant_lead``: one lead that did not convert, created 3-10 days before the as-of date,
    made new and (in :func:`_activities`) never touched — what the trigger
    :data:`PLANTED_LEAD_TRIGGER` catches."""
    con.execute(f"""
        CREATE TABLE plant_lead AS
        SELECT arg_min(lk, u(lk, 'plant.lead')) AS lk FROM lead_i
        WHERE deal_no IS NULL AND created_s BETWEEN {(now_d - 10) * 86400} AND {(now_d - 3) * 86400}
    """)
    con.execute(f"UPDATE lead_i SET status = 'new', end_s = {now_d * 86400} WHERE lk IN (SELECT lk FROM plant_lead)")


def _current_state(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("""
        CREATE TABLE cur AS
        SELECT h.k, h.pos, h.amt, h.cd, h.fc, h.lost_reason, h.t AS t_last, m.nrows
        FROM h JOIN (SELECT k, max(j) AS j, count(*) AS nrows FROM h GROUP BY k) m USING (k, j)
    """)


def _renewal_accounts(con: duckdb.DuckDBPyConnection) -> None:
    """Put each Renewal deal on an account that had already won: a renewal follows a first win.

    Deals draw their account at random (:func:`_deals`), so about half the accounts whose first
    win was a renewal would count as new customers acquired by a renewal.  Once the simulation
    has decided every outcome, a renewal whose account had no New Business deal won (closed)
    before the renewal was created moves to one that had: of the same team and segment (so its
    owner, amounts and history, drawn from those, stay exactly what they were), chosen by the
    deal's own hash among the accounts won before that day.  Only ``a`` and ``account_name``
    change.  A renewal created before any account of its team and segment has won (the first
    weeks of data) keeps its account: its customer was won before the data begins, and the
    customer tables count it as new, as they cannot know better.
    """
    con.execute("""
        CREATE TABLE ren_fw AS
        -- each account's first New Business win (close day), numbered within its team and segment
        SELECT a, team_id, seg, won_d,
               row_number() OVER (PARTITION BY team_id, seg ORDER BY won_d, a) AS rk
        FROM (SELECT dd.a, dd.team_id, dd.seg, min(cur.cd) AS won_d
              FROM dd JOIN cur USING (k)
              WHERE dd.pipe = 0 AND cur.pos = dd.nopen + 1
              GROUP BY dd.a, dd.team_id, dd.seg)
    """)
    con.execute("""
        CREATE TABLE ren_new AS
        WITH r AS (
            SELECT dd.k, dd.a, dd.team_id, dd.seg, dd.created_s // 86400 AS c
            FROM dd WHERE dd.pipe = 1
        ), m AS (  -- accounts of a team and segment won before a day: ranks 1..m
            SELECT team_id, seg, won_d, max(rk) AS m FROM ren_fw GROUP BY team_id, seg, won_d
        ), x AS (
            SELECT r.k, r.a, r.team_id, r.seg, m.m, own.won_d < r.c AS own_won
            FROM r ASOF LEFT JOIN m ON m.team_id = r.team_id AND m.seg = r.seg AND m.won_d < r.c
                   LEFT JOIN ren_fw own ON own.a = r.a
        )
        SELECT x.k, f.a
        FROM x JOIN ren_fw f ON f.team_id = x.team_id AND f.seg = x.seg
                            AND f.rk = floor(u(x.k, 'deal.renew') * x.m)::BIGINT + 1
        WHERE x.m IS NOT NULL AND NOT coalesce(x.own_won, false)
    """)
    con.execute("""
        CREATE OR REPLACE TABLE dd AS
        SELECT dd.* REPLACE (coalesce(n.a, dd.a) AS a, coalesce(acc.name, dd.account_name) AS account_name)
        FROM dd LEFT JOIN ren_new n USING (k) LEFT JOIN acc ON acc.a = n.a
    """)
    con.execute("DROP TABLE ren_fw; DROP TABLE ren_new")


def _leads(con: duckdb.DuckDBPyConnection, n_other: int, now_d: int) -> None:
    """lead_i: converted leads (from deals) and leads that did not convert."""
    now_s = now_d * 86400
    industries = [(n, w) for n, w, _ in _INDUSTRIES]
    con.execute(f"""
        CREATE TABLE lo0 AS
        WITH k AS (
            SELECT range AS i, 1000000000000 + range AS lk,
                   floor(u(range, 'lead.day') * (SELECT max(cum) FROM cal))::BIGINT + 1 AS target
            FROM range({n_other})
        ), x AS (
            SELECT k.lk, cal.d * 86400 + 28800 + floor(u(k.lk, 'lead.tod') * 36000)::BIGINT AS created_s,
                   {_choice("u(k.lk, 'lead.region')", _REGIONS)} AS region,
                   {_choice("u(k.lk, 'lead.seg')", _SEGMENT_WEIGHTS)} AS seg,
                   {_choice("u(k.lk, 'lead.ind')", industries)} AS industry,
                   {_choice("u(k.lk, 'lead.src')", _LEAD_SOURCES)} AS source
            FROM k ASOF JOIN cal ON k.target <= cal.cum
        )
        SELECT x.*, {now_d} - created_s // 86400 AS age,
               {_employees("u(lk, 'lead.emp')")} AS employees,
               t.team_id
        FROM x JOIN teams t ON t.team = CASE
            WHEN x.region = 'APAC' THEN 'APAC'
            WHEN x.region = 'EMEA' AND seg = 2 THEN 'EMEA Enterprise'
            WHEN x.region = 'EMEA' THEN 'EMEA Mid-Market'
            WHEN seg = 2 THEN 'NA Enterprise' WHEN seg = 1 THEN 'NA Mid-Market' ELSE 'NA SMB' END
    """)
    status = (
        f"CASE WHEN age < 14 THEN {_choice('us', (('new', 65), ('working', 35)))} "
        f"WHEN age < 75 THEN {_choice('us', (('new', 5), ('working', 55), ('disqualified', 40)))} "
        f"ELSE {_choice('us', (('new', 3), ('working', 9), ('disqualified', 88)))} END"
    )
    con.execute(f"""
        CREATE TABLE lead_u AS
        -- converted: New Business deals from marketing/partner sources and some outbound
        SELECT dd.k AS lk, dd.created_s - (2 * 86400 + floor(u(dd.k, 'lead.lag') * 50 * 86400))::BIGINT AS created_s,
               dd.source, acc.industry, acc.region, acc.employees, 'converted' AS status,
               dd.rep_no, dd.deal_no, dd.created_s - floor(u(dd.k, 'lead.conv') * 1800)::BIGINT AS converted_s,
               dd.created_s - floor(u(dd.k, 'lead.conv') * 1800)::BIGINT AS end_s
        FROM dd JOIN acc USING (a)
        WHERE dd.pipe = 0 AND (dd.source <> 'outbound' OR u(dd.k, 'lead.outb') < 0.3)
        UNION ALL
        SELECT lk, created_s, source, industry, region, employees, status,
               -- a few brand-new leads are not assigned yet
               CASE WHEN status = 'new' AND u(lk, 'lead.unassigned') < 0.1 THEN NULL ELSE o.rep_no END,
               NULL, NULL,
               CASE WHEN status = 'disqualified'
                    THEN least({now_s}, created_s + (5 + floor(u(lk, 'lead.dq') * 40)::BIGINT) * 86400)
                    ELSE {now_s} END
        FROM (SELECT lo0.*, u(lk, 'lead.status') AS us, {status} AS status FROM lo0) l
        JOIN ({_pick_owner("(SELECT lk, team_id, created_s // 86400 AS day FROM lo0)", "lk", "team_id", "day", "lead.owner")}) o
          ON o.key = l.lk
    """)
    # Lead ids follow creation time.
    _numbered(con, "lead_u", "lead_i", "created_s, lk", "lead_no")
    con.execute("DROP TABLE lo0")


def _activities(con: duckdb.DuckDBPyConnection, now_d: int) -> None:
    now_s = now_d * 86400
    deal_kinds = (("call", 28), ("meeting", 22), ("email_reply", 22), ("email_open", 18), ("demo", 10))
    lead_kinds = (("email_open", 35), ("web_visit", 25), ("call", 25), ("email_reply", 15))
    con.execute(f"""
        CREATE TABLE act_u AS
        WITH deal_n AS (
            SELECT dd.k, dd.deal_no, dd.rep_no, dd.pipe, dd.created_s,
                   CASE WHEN cur.pos > dd.nopen THEN cur.t_last ELSE {now_s} END AS end_s,
                   1 + floor(u(dd.k, 'act.n') * 3)::BIGINT + least(cur.nrows, 6) // 2
                     + CASE WHEN cur.pos = dd.nopen + 1 THEN 1 ELSE 0 END
                     -- forecast effects: engaged deals get more touches (0 without effects)
                     + greatest(0, round({ENGAGEMENT["touches"]} * dd.eng))::BIGINT AS n
            FROM dd JOIN cur USING (k)
            WHERE k NOT IN (SELECT k FROM plant)  -- planted deals: the story's touches below
        ), deal_a AS (
            SELECT k, deal_no, rep_no, pipe, created_s, end_s, unnest(range(n)) AS i FROM deal_n
        ), lead_n AS (
            SELECT lk, lead_no, rep_no, source, created_s, end_s,
                   CASE status WHEN 'converted' THEN 2 + floor(u(lk, 'act.n') * 4)
                               WHEN 'disqualified' THEN floor(u(lk, 'act.n') * 2)
                               ELSE floor(u(lk, 'act.n') * 3.2) END::BIGINT AS n
            FROM lead_i
            WHERE lk NOT IN (SELECT lk FROM plant_lead WHERE lk IS NOT NULL)  -- the planted lead: none
        ), lead_a AS (
            SELECT lk, lead_no, rep_no, source, created_s, end_s, unnest(range(n)) AS i FROM lead_n
        )
        SELECT 0 AS src, k AS ek, i, created_s + floor(u(k * 64 + i, 'act.t') * (end_s - created_s))::BIGINT AS t,
               CASE WHEN pipe = 1 AND u(k * 64 + i, 'act.kind') >= 0.9 THEN 'meeting'
                    ELSE {_choice("u(k * 64 + i, 'act.kind')", deal_kinds)} END AS kind,
               NULL::BIGINT AS lead_no, deal_no, rep_no, NULL::VARCHAR AS campaign
        FROM deal_a
        UNION ALL
        -- planted deals (_plant): a call a week (a meeting every third) from the day after creation
        -- until the story's end, or until the deal closed
        SELECT 0, p.k, 1000 + w.i, dd.created_s + (1 + 7 * w.i) * 86400,
               CASE WHEN w.i % 3 = 2 THEN 'meeting' ELSE 'call' END, NULL, dd.deal_no, dd.rep_no, NULL
        FROM plant p JOIN dd USING (k) JOIN cur USING (k) CROSS JOIN range(60) w(i)
        WHERE dd.created_s + (1 + 7 * w.i) * 86400
              < coalesce(p.until_s, CASE WHEN cur.pos > dd.nopen THEN cur.t_last ELSE {now_s} END)
        UNION ALL
        SELECT 1, lk, i, created_s + floor(u(lk * 64 + i, 'act.t') * (end_s - created_s))::BIGINT,
               {_choice("u(lk * 64 + i, 'act.kind')", lead_kinds)} AS kind, lead_no, NULL,
               -- opens and web visits are tracked, not made by a rep
               CASE WHEN kind IN ('email_open', 'web_visit') THEN NULL ELSE rep_no END,
               -- ... and come from a campaign: {round(100 * _OWN_CAMPAIGN)}% one of the lead's own source's
               -- campaigns, the rest a nurture campaign of another source (a webinar invitation to a
               -- paid-search lead): touches of one deal credit several sources (own salts: the
               -- other columns are unchanged)
               CASE WHEN kind IN ('email_open', 'web_visit') THEN
                   CASE WHEN u(lk * 64 + i, 'act.camp') < {_OWN_CAMPAIGN} AND source IN {_own_sources()}
                        THEN {_own_campaign("u(lk * 64 + i, 'act.camp.pick')")}
                        ELSE {_choice("u(lk * 64 + i, 'act.camp.pick')", _NURTURE)} END END
        FROM lead_a
    """)
    # Activity ids follow time.
    _numbered(con, "act_u", "act_i", "t, src, ek, i", "act_no")


#: Marketing spend per source (see :func:`_spend`): cost per lead the source brings in, and the
#: campaigns the money goes to with their share.  Renewals ("existing customer") cost nothing.
_SPEND: tuple[tuple[str, float, tuple[tuple[str, float], ...]], ...] = (
    ("inbound", 1500, (("Paid search", 0.6), ("Content", 0.4))),
    ("outbound", 2250, (("SDR prospecting", 1.0),)),
    ("event", 3750, (("Trade shows", 0.7), ("Webinars", 0.3))),
    ("partner", 3000, (("Partner program", 1.0),)),
    ("referral", 750, (("Customer referrals", 1.0),)),
)


#: Campaigns of the touches (see :func:`_activities`): the share of a lead's tracked touches
#: (email opens, web visits) from its own source's campaigns, and the nurture campaigns the
#: others come from, with their weights.
_OWN_CAMPAIGN = 0.7
_NURTURE = (("Content", 40), ("Webinars", 35), ("Paid search", 25))


def _own_sources() -> str:
    """The sources with campaigns, as an SQL list: ``('inbound', 'outbound', …)``."""
    return "(" + ", ".join(_sql_str(src) for src, _, _ in _SPEND) + ")"


def _own_campaign(u: str) -> str:
    """A CASE over ``source`` picking one of that source's campaigns by their spend share.

    >>> _own_campaign("x").startswith("CASE source WHEN 'inbound' THEN CASE WHEN x < 0.6 THEN 'Paid search'")
    True
    """
    pick = lambda camps: _choice(u, camps) if len(camps) > 1 else _sql_str(camps[0][0])  # noqa: E731
    return "CASE source " + " ".join(f"WHEN {_sql_str(src)} THEN {pick(camps)}" for src, _, camps in _SPEND) + " END"


def _spend(con: duckdb.DuckDBPyConnection, now_d: int) -> None:
    """spend_i: monthly spend per source and campaign, from the first lead's month to ``as_of``.

    A month's spend on a source is what its leads cost (leads created that month × the
    source's cost per lead, ± 15%), split over the source's campaigns, rounded to $10: so
    spend follows the leads (and through them the deals) a source brings.  The last month
    ends the day before ``as_of``.  Reads only ``lead_i`` and hashes of its own keys, so the
    other tables are unchanged by it.
    """
    rows = ", ".join(f"({i}, {_sql_str(src)}, {cpl}, {j}, {_sql_str(camp)}, {share})"
                     for i, (src, cpl, camps) in enumerate(_SPEND) for j, (camp, share) in enumerate(camps))
    con.execute(f"""
        CREATE TABLE spend_i AS
        WITH camp AS (SELECT * FROM (VALUES {rows}) t(si, source, cpl, ci, campaign, share)),
        months AS (
            SELECT m::DATE AS m_start, row_number() OVER (ORDER BY m) AS mn
            FROM (SELECT unnest(range(date_trunc('month', (SELECT dt(min(created_s) // 86400) FROM lead_i)),
                                      dt({now_d}), INTERVAL 1 MONTH)) AS m)
        ), led AS (
            SELECT date_trunc('month', dt(created_s // 86400))::DATE AS m_start, source, count(*) AS n
            FROM lead_i GROUP BY ALL
        )
        SELECT months.m_start AS period_start, least(last_day(months.m_start), dt({now_d} - 1)) AS period_end,
               camp.si, camp.ci, camp.source, camp.campaign,
               round(coalesce(led.n, 0) * camp.cpl * camp.share
                     * (0.85 + 0.3 * u(months.mn * 64 + camp.si * 8 + camp.ci, 'spend.noise')), -1) AS amount
        FROM months CROSS JOIN camp LEFT JOIN led ON led.m_start = months.m_start AND led.source = camp.source
    """)


def _targets(con: duckdb.DuckDBPyConnection, now_d: int) -> None:
    """Quota per rep per quarter.

    The company plan follows the business's growth trend (Q4 planned 10% higher),
    calibrated to 8% (± a few points a quarter) above actual bookings in mature quarters
    (complete, and starting 120+ days into the data, when the pipeline has filled up);
    earlier quarters plan on what was actually booked, so the data's cold start does not
    look like a miss.  A rep's share is the mean of their quota class's (Enterprise,
    Mid-Market, SMB, APAC) and their own team's bookings per rep-quarter, halved while
    ramping after hire: a weak team inside a class misses quota, strong reps beat it.
    """
    start_d = now_d - HISTORY_DAYS
    con.execute(f"""
        CREATE TABLE tgt_i AS
        WITH q AS (
            SELECT q_start, qend(q_start) AS q_end, row_number() OVER (ORDER BY q_start) AS qn,
                   qend(q_start) < {now_d} AND q_start >= {start_d + 120} AS mature
            FROM (SELECT unnest(range(date_trunc('quarter', dt({start_d})),
                                      date_trunc('quarter', dt({now_d})) + INTERVAL 6 MONTH,
                                      INTERVAL 3 MONTH))::DATE - DATE '1970-01-01' AS q_start)
        ), qw AS (  -- the growth trend per quarter, Q4 planned 10% higher (integers: exact sums)
            SELECT qn, mature, q_start < {start_d + 120} AS early,
                   sum((1000 * (0.55 + 0.45 * (d - {start_d}) / {HISTORY_DAYS})
                        * CASE WHEN quarter(dt(d)) = 4 THEN 1.1 ELSE 1 END)::BIGINT) AS w
            FROM q, LATERAL (SELECT unnest(range(q.q_start, q.q_end + 1)) AS d) GROUP BY ALL
        ), rq AS (  -- rep-quarters while employed; quarters soon after hire at half quota
            SELECT r.rep_no, r.qclass, r.team_id, q.q_start, q.q_end, q.qn, q.mature,
                   CASE WHEN r.hired_day > q.q_start - 91 THEN 0.5 ELSE 1.0 END AS ramp
            FROM reps_i r JOIN q ON r.hired_day <= q.q_end AND (r.left_day IS NULL OR r.left_day > q.q_start)
        ), won AS (
            SELECT q.qn, q.mature, r.qclass, r.team_id, sum(cur.amt) AS amt
            FROM cur JOIN dd USING (k) JOIN reps_i r ON r.rep_no = dd.rep_no
                 JOIN q ON cur.cd BETWEEN q.q_start AND q.q_end
            WHERE cur.pos = dd.nopen + 1 GROUP BY ALL
        ), rate AS (  -- bookings per unit of expected business
            SELECT coalesce((SELECT sum(amt) FROM won WHERE mature), 0)::DOUBLE
                   / (SELECT sum(w) FROM qw WHERE mature) AS r
        ), plan AS (  -- early quarters (pipeline still filling up) plan on what was booked
            SELECT qn, (1.08 + 0.12 * (u(qn, 'plan') - 0.5))
                       * CASE WHEN early THEN coalesce((SELECT sum(amt) FROM won WHERE won.qn = qw.qn), 0)
                              ELSE (SELECT r FROM rate) * w END AS quota
            FROM qw
        ), cls AS (
            SELECT c.qclass, coalesce(w.amt, 0)::DOUBLE / c.rq AS cw FROM
                (SELECT qclass, sum(ramp) AS rq FROM rq WHERE mature GROUP BY qclass) c
                LEFT JOIN (SELECT qclass, sum(amt) AS amt FROM won WHERE mature GROUP BY qclass) w USING (qclass)
        ), tms AS (
            SELECT c.team_id, coalesce(w.amt, 0)::DOUBLE / c.rq AS tw FROM
                (SELECT team_id, sum(ramp) AS rq FROM rq WHERE mature GROUP BY team_id) c
                LEFT JOIN (SELECT team_id, sum(amt) AS amt FROM won WHERE mature GROUP BY team_id) w USING (team_id)
        ), share AS (  -- integer shares, so the per-quarter total is exact
            SELECT rq.*, round(coalesce((cls.cw + tms.tw) / 2, 1000) * rq.ramp)::BIGINT AS s
            FROM rq LEFT JOIN cls USING (qclass) LEFT JOIN tms USING (team_id)
        )
        SELECT share.rep_no, share.q_start, share.q_end,
               greatest(0, round(coalesce(plan.quota * share.s / nullif(sum(share.s) OVER (PARTITION BY share.qn), 0), 0), -2)) AS amount
        FROM share JOIN plan USING (qn)
    """)


# ------------------------------------------------------------------ output
_OUTPUT_SQL = {
    "reps": ("""
        SELECT code('R', rep_no, {rw}) AS rep_id, person(rep_no - 1) AS name, team,
               t.region, person({n_reps} + pod_no - 1) AS manager, left_day IS NULL AS active,
               dt(hired_day) AS hired_at, rep_no
        FROM reps_i JOIN teams t USING (team_id, team)""", "rep_no"),
    "accounts": ("""
        SELECT code('A', a + 1, {aw}) AS account_id, name, industry, ['SMB', 'Mid-Market', 'Enterprise'][seg + 1] AS segment,
               region, employees, a FROM acc""", "a"),
    "stages": ("SELECT pipeline, stage, pos AS position, prob AS probability, kind, fc AS forecast_category, pipe FROM sp",
               "pipe, position"),
    "deals": ("""
        SELECT code('D', dd.deal_no, {dw}) AS deal_id,
               dd.account_name || ' - ' || CASE dd.pipe WHEN 1 THEN 'Renewal ' || year(dt(dd.cd0))::VARCHAR ELSE dd.product END AS name,
               sp.pipeline, code('A', dd.a + 1, {aw}) AS account_id, code('R', dd.rep_no, {rw}) AS owner_id,
               dd.source, dd.product, cur.amt AS amount, dd.currency, ts(dd.created_s) AS created_at,
               dt(cur.cd) AS close_date, sp.stage, sp.kind AS status, cur.fc AS forecast_category, cur.lost_reason,
               dd.deal_no
        FROM dd JOIN cur USING (k) JOIN sp ON sp.pipe = dd.pipe AND sp.pos = cur.pos""", "deal_no"),
    "deal_history": ("""
        SELECT code('D', dd.deal_no, {dw}) AS deal_id, ts(h.t) AS changed_at, sp.stage, h.amt AS amount,
               dt(h.cd) AS close_date, h.fc AS forecast_category, false AS is_synthetic, dd.deal_no, h.t
        FROM h JOIN dd USING (k) JOIN sp ON sp.pipe = dd.pipe AND sp.pos = h.pos""", "deal_no, t"),
    "targets": ("""
        SELECT dt(q_start) AS period_start, dt(q_end) AS period_end, code('R', rep_no, {rw}) AS rep_id,
               NULL AS team, amount, q_start, rep_no FROM tgt_i""", "q_start, rep_no"),
    "leads": ("""
        SELECT code('L', lead_no, {lw}) AS lead_id, ts(created_s) AS created_at, source, industry, region, employees,
               status, CASE WHEN rep_no IS NOT NULL THEN code('R', rep_no, {rw}) END AS owner_id,
               CASE WHEN deal_no IS NOT NULL THEN code('D', deal_no, {dw}) END AS converted_deal_id,
               CASE WHEN converted_s IS NOT NULL THEN ts(converted_s) END AS converted_at, lead_no
        FROM lead_i""", "lead_no"),
    "activities": ("""
        SELECT code('X', act_no, {xw}) AS activity_id, ts(t) AS occurred_at, kind,
               CASE WHEN lead_no IS NOT NULL THEN code('L', lead_no, {lw}) END AS lead_id,
               CASE WHEN deal_no IS NOT NULL THEN code('D', deal_no, {dw}) END AS deal_id,
               CASE WHEN rep_no IS NOT NULL THEN code('R', rep_no, {rw}) END AS rep_id, campaign, act_no
        FROM act_i""", "act_no"),
    "spend": ("""
        SELECT period_start, period_end, source, campaign, amount, 'USD' AS currency, si, ci FROM spend_i""",
              "period_start, si, ci"),
}


#: Tables whose source is already stored in output order (built by :func:`_numbered`, read with
#: no join): DuckDB keeps insertion order, so their COPY needs no ORDER BY — at 10M deals that is
#: a sort of 100M activity rows less, with the same rows in the same order.
_STORED_IN_ORDER = frozenset({"leads", "activities"})


def _write(con: duckdb.DuckDBPyConnection, out_dir: Path, fmt: str, widths: dict[str, int],
           progress: Progress) -> dict[str, int]:
    counts: dict[str, int] = {}
    other = [f for f in FORMATS if f != fmt]
    for i, name in enumerate(LOAD_ORDER):
        progress(f"writing {name}.{fmt}", i, len(LOAD_ORDER))
        body, order = _OUTPUT_SQL[name]
        # Cast every column to its canonical type, in canonical order.
        cols = ", ".join(f"CAST({c.name} AS {c.type}) AS {c.name}" for c in TABLES[name].columns)
        # Sort on the internal integer keys: ids are zero-padded to one width, so that is
        # also id order, and integer sorts are much cheaper than string sorts.
        query = f"SELECT {cols} FROM ({body.format(**widths)})"
        if name not in _STORED_IN_ORDER:
            query += f" ORDER BY {order}"
        target = out_dir / f"{name}.{fmt}"
        tmp = out_dir / f".{name}.{fmt}.tmp"
        options = "FORMAT csv, HEADER true" if fmt == "csv" else f"FORMAT parquet, COMPRESSION {_PARQUET_COMPRESSION}"
        # COPY answers with the number of rows it wrote.
        counts[name] = con.execute(f"COPY ({query}) TO {_sql_str(tmp.as_posix())} ({options})").fetchone()[0]
        os.replace(tmp, target)  # never leave a half-written table behind
        for f in other:  # one file per table: a stale file of the other format would be ambiguous
            (out_dir / f"{name}.{f}").unlink(missing_ok=True)
    progress("writing files", len(LOAD_ORDER), len(LOAD_ORDER))
    return counts


def generate(out_dir: Path, deals: int, seed: int = 42, fmt: str = "csv",
             as_of: str | date | None = None, progress: Progress = no_progress,
             effects: bool = False) -> dict[str, int]:
    """Write synthetic canonical CRM tables to ``out_dir``; return row counts in load order.
    ``effects``: the forecast effects of the module's docstring (optimistic / sandbagging teams,
    stage probabilities off, engagement that predicts winning).

    >>> generate(Path("/tmp/x"), deals=0)
    Traceback (most recent call last):
    ...
    pipelinebi.errors.ConfigError: deals: must be between 1 and 10,000,000, got 0 (the demo uses 3000; benchmarks use 100000 or 1000000)
    """
    n, seed, fmt, day = _check_args(deals, seed, fmt, as_of)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(Problem("is a file, not a folder", file=str(out_dir), key="out"))
    out_dir.mkdir(parents=True, exist_ok=True)
    now_d = (day - date(1970, 1, 1)).days
    n_acc = max(40, n // 3)
    n_other_leads = round(1.2 * n)
    spill = tempfile.mkdtemp(prefix="pipelinebi-gen-")
    con = duckdb.connect(":memory:", config={"memory_limit": _MEMORY_LIMIT, "temp_directory": spill})
    try:
        con.execute(_macros(seed))
        progress("reference tables", None, None)
        _reference_tables(con, now_d, effects)
        progress("accounts", None, None)
        _accounts(con, n_acc)
        progress("deals", None, None)
        _deals(con, n, n_acc)
        n_reps = _reps(con, n, now_d)
        _deal_attributes(con, effects)
        con.execute("DROP TABLE d0n; DROP TABLE d1")
        _simulate(con, now_d, progress)
        _plant(con, now_d)
        _current_state(con)
        _renewal_accounts(con)
        progress("leads", None, None)
        _leads(con, n_other_leads, now_d)
        _plant_lead(con, now_d)
        progress("activities", None, None)
        _activities(con, now_d)
        progress("targets", None, None)
        _targets(con, now_d)
        progress("spend", None, None)
        _spend(con, now_d)
        n_leads = con.execute("SELECT count(*) FROM lead_i").fetchone()[0]
        n_act = con.execute("SELECT count(*) FROM act_i").fetchone()[0]
        widths = {
            "rw": max(4, len(str(n_reps))), "aw": max(5, len(str(n_acc))), "dw": max(6, len(str(n))),
            "lw": max(6, len(str(n_leads))), "xw": max(7, len(str(n_act))), "n_reps": n_reps,
        }
        return _write(con, out_dir, fmt, widths, progress)
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
