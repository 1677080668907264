"""Forecast vs target shows the default method and a P10–P90 range (#16): the range on screen is
the simulation of closed won + Σ amount × Bernoulli(stage probability) over the open deals
closing in the quarter, with those inputs read by hand SQL from the raw tables (deals, stages),
not through the semantic layer; the simulation itself is checked against exact enumeration in
tests/test_forecast_ranges.py."""

from __future__ import annotations

import re

import duckdb
import pytest

from app_support import app_test
from pipelinebi.dashboards.queries import period_bounds
from pipelinebi.forecast.ranges import bernoulli_range
from pipelinebi.formatting import WORD_JOINER, format_value
from pipelinebi.warehouse import database_as_of


def shown(markdown: str) -> str:
    text = re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)
    return text.replace(WORD_JOINER, "").replace("&#32;", " ")


def by_hand(db, start, end, team=None):
    con = duckdb.connect(str(db), read_only=True)
    try:
        where = "AND r.team = $team" if team else ""
        params = {"s": start, "e": end, **({"team": team} if team else {})}
        rows = con.execute(f"""
            SELECT d.amount, s.probability FROM deals d
            JOIN stages s ON s.pipeline = d.pipeline AND s.stage = d.stage
            LEFT JOIN reps r ON r.rep_id = d.owner_id
            WHERE d.status = 'open' AND d.close_date >= $s AND d.close_date < $e {where}""", params).fetchall()
        closed = con.execute(f"""
            SELECT coalesce(sum(d.amount), 0) FROM deals d LEFT JOIN reps r ON r.rep_id = d.owner_id
            WHERE d.status = 'won' AND d.close_date >= $s AND d.close_date < $e {where}""", params).fetchone()[0]
    finally:
        con.close()
    return bernoulli_range([r[0] for r in rows], [r[1] for r in rows], float(closed))


def _headline(at) -> str:
    lines = [shown(m.value) for m in at.markdown if m.value.startswith("#### ")]
    assert lines, "no headline"
    return lines[0].replace("**", "")


@pytest.mark.parametrize("team", [None, "APAC"])
def test_headline_shows_the_method_and_the_range(env, team):
    with duckdb.connect(str(env), read_only=True) as con:
        start, end = period_bounds(database_as_of(con), "quarter")
    at = app_test("forecast", {"f_team": team} if team else None).run()
    assert not at.exception and not at.error
    line = _headline(at)
    want = by_hand(env, start, end, team)
    lo, hi = (format_value(v, "currency", compact=True) for v in (want.p10, want.p90))
    assert "Forecast (stage probability — chosen in settings) " in line
    assert f"likely {lo} – {hi} (P10–P90)" in line, line
    assert want.p10 < want.mean < want.p90
    # the card says it too, and the headline's help says how it was computed
    card = next(m for m in at.metric if m.label == "Forecast")
    assert f"Likely {lo} – {hi} (P10–P90; stage probability, 2,000 simulated periods)" in card.help
    assert any("simulated periods (seed 16)" in (m.help or "") for m in at.markdown if m.value.startswith("#### "))
