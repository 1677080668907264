"""#14 Forecast page, "where the money moved": the pipeline waterfall's bars, as the page
queries them (``pipelinebi.dashboards.movement.waterfall_plan``), against an independent
pandas computation straight from ``deal_history`` on a small hand-made dataset; start + ins −
outs = now; the slipped-deal list adds up to the "pushed out" bar; pacing's queries and
share of the quarter gone.

Dataset: ``metric_fixtures.TINY`` (as_of 2026-11-15) plus three deals that move in Q4:
D9 pushed out of Q4 into Q1 on 10-25, D10 pulled into Q4 from Q1 on 11-03, D11 cut from
70,000 to 45,000 on 10-18; and two that a chain of month steps would count twice but one
comparison of 1 Oct with 15 Nov does not: D12 created on 10-12 and lost on 11-06 (neither
created nor lost: it was never open pipeline on either day), D13 pushed into Q1 on 10-10 and
pulled back into Q4 on 11-04 (not slipped: it closes in Q4 again)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from metric_fixtures import SEMANTIC, TINY, _deal, _hist, build_database
from pipelinebi.dashboards import load_dashboards
from pipelinebi.dashboards.models import ChartTile
from pipelinebi.dashboards.movement import pace_share, pacing_plan, unexplained, waterfall_bars, waterfall_plan
from pipelinebi.dashboards.queries import PageState
from pipelinebi.semantic import load_semantic_layer

AS_OF = date(2026, 11, 15)
Q4 = (date(2026, 10, 1), date(2027, 1, 1))

MOVES = {
    **TINY,
    "deals": TINY["deals"] + [
        _deal("D9", "R1", "AC1", "open", "P2", "25000", "2027-02-10", "09-01", "pipeline"),
        _deal("D10", "R2", "AC2", "open", "P3", "15000", "2026-12-10", "09-01", "best_case"),
        _deal("D11", "R3", "AC1", "open", "P2", "45000", "2026-12-05", "09-05", "pipeline"),
        _deal("D12", "R3", "AC1", "lost", "Lost", "35000", "2026-12-15", "10-12", "omitted"),
        _deal("D13", "R3", "AC1", "open", "P2", "22000", "2026-12-20", "09-01", "pipeline"),
    ],
    "deal_history": TINY["deal_history"]
    + _hist("D9", [("09-01", "P1", "25000", "2026-12-20", "pipeline"), ("10-25", "P2", "25000", "2027-02-10", "pipeline")])
    + _hist("D10", [("09-01", "P2", "15000", "2027-02-01", "pipeline"), ("11-03", "P3", "15000", "2026-12-10", "best_case")])
    + _hist("D11", [("09-05", "P1", "70000", "2026-12-05", "pipeline"), ("10-18", "P2", "45000", "2026-12-05", "pipeline")])
    + _hist("D12", [("10-12", "P1", "35000", "2026-12-15", "pipeline"), ("11-06", "Lost", "35000", "2026-12-15", "omitted")])
    + _hist("D13", [("09-01", "P2", "22000", "2026-12-01", "pipeline"), ("10-10", "P2", "22000", "2027-02-01", "pipeline"),
                    ("11-04", "P2", "22000", "2026-12-20", "pipeline")]),
}


@pytest.fixture(scope="module")
def layer():
    return load_semantic_layer(SEMANTIC)


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    c = build_database(MOVES, tmp_path_factory.mktemp("moves"), as_of=AS_OF)
    yield c
    c.close()


@pytest.fixture(scope="module")
def tiles(layer):
    page = next(d for d in load_dashboards(SEMANTIC, layer) if d.slug == "forecast")
    return {t.kind: t for t in page.definition.tiles if isinstance(t, ChartTile) and t.kind in ("waterfall", "pacing")}


# ------------------------------------------------------- independent: pandas
def _history() -> pd.DataFrame:
    h = pd.DataFrame(MOVES["deal_history"])
    h["changed_at"] = pd.to_datetime(h["changed_at"])
    h["amount"] = pd.to_numeric(h["amount"]).fillna(0.0)
    h["close_date"] = pd.to_datetime(h["close_date"])
    kinds = {s["stage"]: s["kind"] for s in MOVES["stages"]}
    h["kind"] = h["stage"].map(kinds)
    return h.sort_values(["deal_id", "changed_at"])


def _state(h: pd.DataFrame, day: date) -> pd.DataFrame:
    """Each deal's last history row before ``day`` 00:00 (deals with none yet are absent)."""
    before = h[h["changed_at"] < pd.Timestamp(day)]
    return before.groupby("deal_id").tail(1).set_index("deal_id")


def _open_in(state: pd.DataFrame, q: tuple[date, date]) -> pd.DataFrame:
    return state[(state["kind"] == "open") & (state["close_date"] >= pd.Timestamp(q[0]))
                 & (state["close_date"] < pd.Timestamp(q[1]))]


def pandas_waterfall(days: list[date], q: tuple[date, date]) -> dict[str, float]:
    """Start, movements summed over consecutive snapshot days, end — for the pipeline of
    quarter ``q`` — written from the definitions, not from the SQL."""
    h = _history()
    first_seen = h.groupby("deal_id")["changed_at"].min()
    out = dict.fromkeys(["created", "pulled_in", "increased", "decreased", "pushed_out", "won", "lost"], 0.0)
    for a, b in zip(days, days[1:]):
        sa, sb = _state(h, a), _state(h, b)
        s, e = _open_in(sa, q), _open_in(sb, q)
        for d in e.index.difference(s.index):
            new = first_seen[d] >= pd.Timestamp(a)
            out["created" if new else "pulled_in"] += e.at[d, "amount"]
        for d in s.index:
            if d in e.index:
                diff = e.at[d, "amount"] - s.at[d, "amount"]
                out["increased" if diff > 0 else "decreased"] += abs(diff)
            elif sb.at[d, "kind"] == "open":  # still open, closing in another quarter
                out["pushed_out"] += s.at[d, "amount"]
            else:
                out[sb.at[d, "kind"]] += s.at[d, "amount"]
    start = _open_in(_state(h, days[0]), q)["amount"].sum()
    end = _open_in(_state(h, days[-1]), q)["amount"].sum()
    return {"start": start, **out, "end": end}


# ----------------------------------------------------------------- the tests
def _values(layer, con, plan) -> dict[str, float]:
    got: dict[str, float] = {}
    for q in (plan.start, plan.moves, plan.end):
        got.update({k: float(v) for k, v in layer.query(q, con).df().iloc[0].to_dict().items()})
    return got


def test_waterfall_matches_pandas_and_adds_up(layer, con, tiles):
    tile = tiles["waterfall"]
    plan = waterfall_plan(tile, PageState(*Q4, as_of=AS_OF))
    assert plan.window == (Q4[0], AS_OF)
    got = _values(layer, con, plan)
    # ONE comparison: the quarter's first day against the as-of date (not a chain of month steps)
    want = pandas_waterfall([date(2026, 10, 1), AS_OF], Q4)
    assert {m.removeprefix("quarter_flow_"): v for m, v in got.items()} == pytest.approx(want)
    # the chain through 1 Nov would differ: D12 (created 10-12, lost 11-06) in created and lost,
    # D13 (pushed 10-10, pulled back 11-04) in pushed out and pulled in
    chain = pandas_waterfall([date(2026, 10, 1), date(2026, 11, 1), AS_OF], Q4)
    assert chain["lost"] - want["lost"] == 35000 and chain["created"] - want["created"] == 35000
    assert chain["pushed_out"] - want["pushed_out"] == 22000 and chain["pulled_in"] - want["pulled_in"] == 22000
    # by hand: lost = D4 (30,000, open on 1 Oct closing 10-31, lost since); won = D3 + D5 at
    # their 1 Oct amounts; pushed out = D9 only
    assert (want["lost"], want["won"], want["pushed_out"]) == (30000, 90000, 25000)
    # every kind of movement happened at least once: the check is not vacuous
    assert all(want[k] > 0 for k in ("created", "pulled_in", "increased", "decreased", "pushed_out", "won", "lost")), want
    bars = waterfall_bars(tile, got)
    ins = sum(b.value for b in bars if b.kind == "in")
    outs = sum(b.value for b in bars if b.kind == "out")
    assert want["start"] + ins - outs == pytest.approx(want["end"])
    assert unexplained(bars) == pytest.approx(0)
    # the end bar is the open pipeline of Q4 as the deals stood on the as-of date (pandas, again)
    assert bars[-1].value == pytest.approx(_open_in(_state(_history(), AS_OF), Q4)["amount"].sum())


def test_slipped_list_is_the_pushed_out_bar(layer, con, tiles):
    plan = waterfall_plan(tiles["waterfall"], PageState(*Q4, as_of=AS_OF))
    df = layer.query(plan.slipped, con).df()
    df = df[df["quarter_flow_pushed_out"].astype(float) > 0]
    # D9 left Q4 on 10-25 for February, at its 25,000; D13 left too but is back in Q4 by 15 Nov
    assert df["deal_id"].tolist() == ["D9"]
    assert float(df["quarter_flow_pushed_out"].sum()) == pytest.approx(
        _values(layer, con, plan)["quarter_flow_pushed_out"]) == 25000


def test_waterfall_for_one_team(layer, con, tiles):
    # team A is reps R1, R2: the same computation on their deals only
    from pipelinebi.compiler.query import Filter

    state = PageState(*Q4, as_of=AS_OF, filters=(Filter(dimension="team", value="A", strict=False),))
    got = _values(layer, con, waterfall_plan(tiles["waterfall"], state))
    owners = {d["deal_id"]: d["owner_id"] for d in MOVES["deals"]}
    h = _history()
    h = h[h["deal_id"].map(owners).isin(["R1", "R2"])]
    start = _open_in(_state(h, Q4[0]), Q4)["amount"].sum()
    end = _open_in(_state(h, AS_OF), Q4)["amount"].sum()
    assert (got["quarter_flow_start"], got["quarter_flow_end"]) == pytest.approx((start, end))
    assert got["quarter_flow_pushed_out"] == 25000 and got["quarter_flow_lost"] == 30000  # D9 (R1), D4 (R2)


def test_no_waterfall_before_the_quarter_starts(tiles):
    plan = waterfall_plan(tiles["waterfall"], PageState(date(2027, 1, 1), date(2027, 4, 1), as_of=AS_OF))
    assert plan.window is None and plan.queries == ()


def test_pacing_line_and_share_of_quarter(layer, con, tiles):
    tile = tiles["pacing"]
    state = PageState(*Q4, as_of=AS_OF)
    plan = pacing_plan(tile, state)
    line = layer.query(plan.current, con).df()
    # won deals closing in Q4: D3 50,000 on 10-20, D5 40,000 on 11-10 (quarter to date, by day)
    by_day = dict(zip(pd.to_datetime(line["period"]).dt.date, line["closed_won_qtd"].astype(float)))
    assert by_day[date(2026, 10, 20)] == 50000 and by_day[date(2026, 11, 10)] == 90000
    assert float(layer.query(plan.target, con).df()["target"].iloc[0]) == 230000  # rep quotas only
    # 46 of Q4's 92 days gone on 15 Nov
    assert pace_share(state) == pytest.approx(46 / 92)
    # previous quarter: D7 won 60,000 on 08-15
    prev = layer.query(plan.previous, con).df()
    assert float(prev["closed_won_qtd"].max()) == 60000
    # no target: no target query, and the chart says so (see the AppTest)
    assert pacing_plan(tile, PageState(*Q4, as_of=AS_OF, unavailable=frozenset({"target"}))).target is None
