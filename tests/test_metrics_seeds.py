"""Library metrics on the committed demo data (seeds/) against separately hand-written SQL."""

from __future__ import annotations

from datetime import date

import pytest

from metric_fixtures import REPO, SEMANTIC
from pipelinebi.compiler.query import Query
from pipelinebi.semantic import load_semantic_layer

SEEDS = REPO / "seeds"
pytestmark = pytest.mark.skipif(not (SEEDS / "deals.csv").exists(), reason="seeds/ not there yet")
Q4 = dict(start=date(2026, 10, 1), end=date(2027, 1, 1))


@pytest.fixture(scope="module")
def con(plain_seeds_db):
    """The seeds as a plain ``ingest`` builds them: the session's build (conftest), read only here."""
    import duckdb

    c = duckdb.connect(str(plain_seeds_db), read_only=True)
    yield c
    c.close()


@pytest.fixture(scope="module")
def layer():
    return load_semantic_layer(SEMANTIC)


def _semantic(layer, con, metrics, dims=("team",), **kw):
    df = layer.query(Query(metrics=metrics, dimensions=dims, **kw), con).df()
    return {tuple(r[d] for d in dims): tuple(r[m] for m in metrics) for _, r in df.iterrows()}


def _hand(con, sql):
    return {r[:1]: r[1:] for r in con.execute(sql).fetchall()}


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        # hand-written SQL returns DECIMAL sums: compared as floats to the cent
        assert a[k] == pytest.approx(tuple(float("nan") if v is None else float(v) for v in b[k]), abs=0.01, nan_ok=True), k


def test_pipeline_forecast_target_by_team(layer, con):
    got = _semantic(layer, con, ("pipeline_amount", "weighted_pipeline", "weighted_pipeline_historical", "target", "attainment"), **Q4)
    want = _hand(con, """
        WITH d AS (
            SELECT r.team,
                   sum(d.amount) FILTER (WHERE d.status = 'open') AS open_amt,
                   sum(d.amount * s.probability) FILTER (WHERE d.status = 'open') AS w,
                   sum(d.amount * w.win_rate_effective) FILTER (WHERE d.status = 'open') AS wh,
                   sum(d.amount) FILTER (WHERE d.status = 'won') AS won
            FROM deals d JOIN reps r ON r.rep_id = d.owner_id
            JOIN stages s ON s.pipeline = d.pipeline AND s.stage = d.stage
            LEFT JOIN stage_win_rates w ON w.pipeline = d.pipeline AND w.stage = d.stage
            WHERE d.close_date >= DATE '2026-10-01' AND d.close_date < DATE '2027-01-01'
            GROUP BY r.team),
        t AS (SELECT r.team, sum(t.amount) AS target FROM targets t JOIN reps r ON r.rep_id = t.rep_id
              WHERE t.period_start >= DATE '2026-10-01' AND t.period_start < DATE '2027-01-01' GROUP BY r.team)
        SELECT coalesce(d.team, t.team), coalesce(open_amt, 0), coalesce(w, 0), coalesce(wh, 0), coalesce(target, 0),
               coalesce(won, 0) / NULLIF(target, 0)
        FROM d FULL JOIN t ON d.team = t.team""")
    _same(got, want)


def test_win_rate_cycle_by_team(layer, con):
    got = _semantic(layer, con, ("win_rate", "avg_deal_size", "sales_cycle_days"), **Q4)
    want = _hand(con, """
        SELECT r.team, avg(CASE WHEN d.status = 'won' THEN 1.0 ELSE 0 END),
               avg(d.amount) FILTER (WHERE d.status = 'won'),
               avg(CAST(d.close_date AS DATE) - CAST(d.created_at AS DATE)) FILTER (WHERE d.status = 'won')
        FROM deals d JOIN reps r ON r.rep_id = d.owner_id
        WHERE d.status IN ('won', 'lost') AND d.close_date >= DATE '2026-10-01' AND d.close_date < DATE '2027-01-01'
        GROUP BY r.team""")
    _same(got, want)


def test_stage_conversion_and_dwell_by_stage(layer, con):
    got = _semantic(layer, con, ("stage_conversion", "dwell_days_median"), dims=("stage",),
                    filters=("pipeline = 'New Business'",))
    want = _hand(con, """
        WITH v AS (SELECT * FROM stage_intervals WHERE pipeline = 'New Business' AND stage_kind = 'open'),
        conv AS (SELECT stage, count(DISTINCT deal_id) FILTER (WHERE exited_to_next) * 1.0 / count(DISTINCT deal_id) AS c
                 FROM v GROUP BY stage),
        dw AS (SELECT stage, median(dwell_days) AS m FROM v WHERE exited_at IS NOT NULL GROUP BY stage)
        SELECT conv.stage, c, m FROM conv JOIN dw USING (stage)""")
    _same(got, want)


def test_stalled_and_slipped(layer, con):
    got = _semantic(layer, con, ("stalled_deals",))
    want = _hand(con, """
        WITH cur AS (SELECT deal_id, pipeline, stage, dwell_days FROM stage_intervals WHERE is_current),
        norm AS (SELECT pipeline, stage, quantile_cont(dwell_days, 0.75) AS p75 FROM stage_intervals
                 WHERE exited_at IS NOT NULL GROUP BY ALL)
        SELECT r.team, count(*) FROM deals d JOIN reps r ON r.rep_id = d.owner_id
        JOIN cur ON cur.deal_id = d.deal_id JOIN norm ON norm.pipeline = cur.pipeline AND norm.stage = cur.stage
        WHERE d.status = 'open' AND cur.dwell_days > norm.p75 GROUP BY r.team""")
    _same(got, want)
    got = _semantic(layer, con, ("slipped_deals",), dims=("period",), grain="quarter")
    want = {(k[0],): v for k, v in _hand(con, """
        WITH h AS (SELECT h.deal_id, h.close_date, lag(h.close_date) OVER w AS prev, lag(h.stage) OVER w AS prev_stage,
                          d.pipeline FROM deal_history h JOIN deals d USING (deal_id)
                   WINDOW w AS (PARTITION BY h.deal_id ORDER BY h.changed_at))
        SELECT CAST(date_trunc('quarter', prev) AS DATE), count(DISTINCT deal_id) FROM h
        JOIN stages s ON s.pipeline = h.pipeline AND s.stage = h.prev_stage
        WHERE s.kind = 'open' AND date_trunc('quarter', close_date) > date_trunc('quarter', prev) GROUP BY 1""").items()}
    _same(got, want)


def test_flow_identity_on_seeds(layer, con):
    df = layer.query(Query(metrics=("flow_start", "flow_net_change", "flow_end"), dimensions=("flow_from",),
                           grain="quarter"), con).df()
    assert len(df) > 20
    for r in df.itertuples():
        # Decimal amounts: the identity holds to the cent, exactly.
        assert r.flow_start + r.flow_net_change == r.flow_end


def test_flow_net_change_equals_the_sum_of_the_movements(layer, con):
    parts = ("flow_created", "flow_pulled_in", "flow_increased", "flow_decreased", "flow_pushed_out", "flow_won", "flow_lost")
    df = layer.query(Query(metrics=("flow_net_change",) + parts, dimensions=("flow_from", "team"), grain="quarter"), con).df()
    assert len(df) > 50
    for r in df.itertuples():
        moved = (r.flow_created + r.flow_pulled_in + r.flow_increased
                 - r.flow_decreased - r.flow_pushed_out - r.flow_won - r.flow_lost)
        assert r.flow_net_change == moved  # Decimal, exact
