"""#14 Forecast page in AppTest: the pacing line, the forecast categories by team and the
pipeline waterfall with its slipped deals show the numbers hand-written SQL on the raw seed
tables gives (deals, deal_history, targets — not the derived tables the page reads); a
database without targets says "no target" and draws no pace line."""

from __future__ import annotations

import re
from datetime import timedelta

import pandas as pd
import pytest

from app_support import app_test, chart_frames
from partial_data import build
from pipelinebi.dashboards.queries import period_bounds
from pipelinebi.formatting import format_value
from pipelinebi.warehouse import database_as_of, open_readonly


@pytest.fixture(scope="module")
def dbs(tmp_path_factory, demo_db):
    folder = tmp_path_factory.mktemp("movement")
    return {"seeds": demo_db,  # the session's demo database (read only here)
            "no_targets": build("no_targets", folder)}


@pytest.fixture
def use(dbs, monkeypatch):
    opened = []

    def pick(kind: str):
        monkeypatch.setenv("PIPELINEBI_DATABASE", str(dbs[kind]))
        monkeypatch.delenv("PIPELINEBI_SEMANTIC_DIR", raising=False)
        con = open_readonly(dbs[kind])
        opened.append(con)
        return con

    yield pick
    for con in opened:
        con.close()


def run(params=None):
    at = app_test("forecast", params).run(timeout=120)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def _chart(at, mark: str, field: str):
    """The first chart whose layers include a ``mark`` encoding ``field``: (spec, datasets)."""
    for spec, frames in chart_frames(at):
        layers = spec.get("layer", [spec])
        for layer in layers:
            m = layer.get("mark")
            m = m.get("type") if isinstance(m, dict) else m
            enc = layer.get("encoding", {})
            if m == mark and any(isinstance(v, dict) and v.get("field") == field for v in enc.values()):
                return spec, frames
    raise AssertionError(f"no {mark} chart on {field}")


def _open_pipeline(con, day, q) -> float:
    """Open amount closing in quarter ``q`` as the deals stood before ``day`` 00:00, from the
    raw history (the last change before that moment)."""
    return float(con.execute("""
        WITH last AS (
            SELECT h.*, row_number() OVER (PARTITION BY h.deal_id ORDER BY h.changed_at DESC) AS rn
            FROM deal_history h WHERE h.changed_at < CAST(? AS TIMESTAMP))
        SELECT coalesce(sum(coalesce(l.amount, 0)), 0)
        FROM last l JOIN deals d ON d.deal_id = l.deal_id
        JOIN stages s ON s.pipeline = d.pipeline AND s.stage = l.stage
        WHERE l.rn = 1 AND s.kind = 'open' AND l.close_date >= ? AND l.close_date < ?""", [day, q[0], q[1]]).fetchone()[0])


def test_pacing_says_closed_won_against_pace_like_hand_sql(use):
    con = use("seeds")
    as_of = database_as_of(con)
    q = period_bounds(as_of, "quarter")
    won = float(con.execute("SELECT sum(amount) FROM deals WHERE status = 'won' AND close_date >= ? AND close_date < ?",
                            list(q)).fetchone()[0])
    target = float(con.execute("SELECT sum(amount) FROM targets WHERE rep_id IS NOT NULL AND period_start >= ? "
                               "AND period_start < ?", list(q)).fetchone()[0])
    gone = ((as_of - q[0]).days + 1) / (q[1] - q[0]).days
    at = run()
    line = next(m.value for m in at.markdown if " closed: " in m.value)
    plain = line.replace("\\", "")
    assert plain.startswith(f"**{format_value(won, 'currency', compact=True)}** closed: **{won / target:.0%}**")
    assert f"{format_value(target, 'currency', compact=True)} target with **{gone:.0%}** of the quarter gone" in plain
    behind = won / target < gone
    assert f"{abs(won / target - gone) * 100:.0f} pts {'behind' if behind else 'ahead of'} pace" in plain
    # the line: this quarter ends at the as-of date at closed won; the pace line runs 0 → target
    spec, frames = _chart(at, "line", "day")
    lines = pd.concat(frames, ignore_index=True)
    lines = lines[lines["series"].notna()] if "series" in lines else lines
    this = lines[lines["series"] == "This quarter"]
    assert float(this["value"].iloc[-1]) == pytest.approx(won)
    assert pd.Timestamp(this["day"].max()).date() == as_of
    pace = lines[lines["series"] == "Pace to target"]
    assert sorted(pace["value"].astype(float)) == pytest.approx([0, target])
    # the previous quarter, laid on this one: at the same day, what had closed by then
    p0 = period_bounds(q[0] - timedelta(days=1), "quarter")[0]
    same = p0 + timedelta(days=(as_of - q[0]).days)
    before = float(con.execute("SELECT coalesce(sum(amount), 0) FROM deals WHERE status = 'won' AND close_date >= ? "
                               "AND close_date <= ?", [p0, same]).fetchone()[0])
    assert f"Same day of the previous quarter: {format_value(before, 'currency', compact=True)} closed" in \
        " ".join(c.value for c in at.caption)
    # the days still to come are marked
    assert any(f.get("label", pd.Series(dtype=str)).astype(str).str.contains("Not yet").any() for f in frames if "label" in f)


def test_forecast_categories_by_team_like_hand_sql(use):
    con = use("seeds")
    q = period_bounds(database_as_of(con), "quarter")
    rows = con.execute("""
        SELECT r.team,
               sum(d.amount) FILTER (WHERE d.status = 'won'),
               sum(d.amount) FILTER (WHERE d.status = 'open' AND d.forecast_category = 'commit'),
               sum(d.amount) FILTER (WHERE d.status = 'open' AND d.forecast_category = 'best_case'),
               sum(d.amount) FILTER (WHERE d.status = 'open' AND d.forecast_category = 'pipeline')
        FROM deals d JOIN reps r ON r.rep_id = d.owner_id
        WHERE d.close_date >= ? AND d.close_date < ? GROUP BY 1""", list(q)).fetchall()
    want = {(t, k): float(v or 0) for t, *vs in rows
            for k, v in zip(("Closed won", "Open commit", "Open best case", "Open pipeline category"), vs)}
    at = run()
    spec, frames = next((s, f) for s, f in chart_frames(at) if any({"team", "measure"} <= set(x) for x in f))
    bars = next(f for f in frames if {"team", "measure"} <= set(f))
    got = {(r.team, r.measure): float(r.value) for r in bars.itertuples()}
    assert got == pytest.approx({k: v for k, v in want.items() if v})
    assert spec["layer"][0]["encoding"]["x"]["stack"] == "zero"  # parts of a whole, stacked


def test_waterfall_and_slipped_deals_like_hand_sql(use):
    con = use("seeds")
    as_of = database_as_of(con)
    q = period_bounds(as_of, "quarter")
    at = run()
    spec, frames = _chart(at, "bar", "step")
    bars = frames[0].set_index("step")
    start, now = bars.iloc[0], bars.iloc[-1]
    assert bars.index[0] == f"Start ({q[0]:%-d %b})" and bars.index[-1] == f"Now ({as_of:%-d %b})"
    assert float(start["value"]) == pytest.approx(_open_pipeline(con, q[0], q))
    assert float(now["value"]) == pytest.approx(_open_pipeline(con, as_of, q))
    moves = bars.iloc[1:-1]
    ins = moves.loc[moves["kind"] == "in", "value"].astype(float).sum()
    outs = moves.loc[moves["kind"] == "out", "value"].astype(float).sum()
    assert float(start["value"]) + ins - outs == pytest.approx(float(now["value"]))
    assert list(moves.index) == ["Created", "Pulled in", "Increased", "Decreased", "Pushed out", "Won", "Lost"]
    # won, lost and the slipped deals: ONE comparison of the quarter's first day with the as-of
    # date (hand SQL over the raw history: each deal's last change before each day)
    listed = at.dataframe[-1].value
    pushed = float(moves.loc["Pushed out", "value"])
    amounts = listed["quarter_flow_pushed_out"].map(lambda s: float(re.sub(r"[^\d.]", "", s)))
    assert amounts.sum() == pytest.approx(pushed)
    rows = con.execute("""
        WITH st AS (SELECT h.deal_id, h.stage, h.amount, h.close_date, h.changed_at, d.pipeline FROM deal_history h
                    JOIN deals d USING (deal_id)),
             a AS (SELECT * FROM st WHERE changed_at < CAST(? AS TIMESTAMP) QUALIFY row_number() OVER
                   (PARTITION BY deal_id ORDER BY changed_at DESC) = 1),
             b AS (SELECT * FROM st WHERE changed_at < CAST(? AS TIMESTAMP) QUALIFY row_number() OVER
                   (PARTITION BY deal_id ORDER BY changed_at DESC) = 1)
        SELECT a.deal_id, sb.kind, b.close_date >= ? AND b.close_date < ?, coalesce(a.amount, 0)
        FROM a JOIN b USING (deal_id)
        JOIN stages sa ON sa.pipeline = a.pipeline AND sa.stage = a.stage
        JOIN stages sb ON sb.pipeline = b.pipeline AND sb.stage = b.stage
        WHERE sa.kind = 'open' AND a.close_date >= ? AND a.close_date < ?""",
                       [q[0], as_of, q[0], q[1], q[0], q[1]]).fetchall()
    slipped = {d for d, kind, inside, _ in rows if kind == "open" and not inside}
    won = sum(float(a) for _, kind, _, a in rows if kind == "won")
    lost = sum(float(a) for _, kind, _, a in rows if kind == "lost")
    assert (float(moves.loc["Won", "value"]), float(moves.loc["Lost", "value"])) == pytest.approx((won, lost))
    assert set(listed["deal_id"]) == slipped and slipped


def test_no_target_is_said_and_draws_no_pace_line(use):
    use("no_targets")
    at = run()
    line = next(m.value for m in at.markdown if " closed with " in m.value)
    assert "No target" in line.replace("\\", "") and "no pace line" in line
    spec, frames = _chart(at, "line", "day")
    lines = pd.concat(frames, ignore_index=True)
    assert "Pace to target" not in set(lines.get("series", pd.Series(dtype=str)).dropna())


def test_coverage_reads_as_times(use):
    # open pipeline closing in the quarter ÷ (target − closed won), by hand on the raw tables
    con = use("seeds")
    q = period_bounds(database_as_of(con), "quarter")
    open_, won = con.execute("SELECT sum(amount) FILTER (WHERE status = 'open'), sum(amount) FILTER (WHERE status = 'won') "
                             "FROM deals WHERE close_date >= ? AND close_date < ?", list(q)).fetchone()
    target = con.execute("SELECT sum(amount) FROM targets WHERE rep_id IS NOT NULL AND period_start >= ? "
                         "AND period_start < ?", list(q)).fetchone()[0]
    at = run()
    card = next(m for m in at.metric if m.label == "Pipeline coverage")
    assert card.value == f"{float(open_) / float(target - won):.1f}×"


def test_a_stage_drill_is_said_not_silently_ignored_by_pacing_and_waterfall(use):
    # drilled to team → rep → stage: pacing and the waterfall follow the rep (closed won of the
    # rep's deals, by hand on the raw tables) and say visibly that they are not narrowed to the stage
    con = use("seeds")
    q = period_bounds(database_as_of(con), "quarter")
    team, rep, rep_id = con.execute("""SELECT r.team, r.name, r.rep_id FROM deals d JOIN reps r ON r.rep_id = d.owner_id
        WHERE d.status = 'won' AND d.close_date >= ? AND d.close_date < ?
        GROUP BY 1, 2, 3 ORDER BY count(*) DESC, 2 LIMIT 1""", list(q)).fetchone()
    stage = con.execute("SELECT stage FROM deals WHERE owner_id = ? AND status = 'open' LIMIT 1", [rep_id]).fetchone()[0]
    won = float(con.execute("SELECT sum(amount) FROM deals WHERE owner_id = ? AND status = 'won' AND close_date >= ? "
                            "AND close_date < ?", [rep_id, *q]).fetchone()[0])
    at = run({"team": team, "rep": rep, "stage": stage})
    notes = [i.value.replace("\\", "") for i in at.info if "Not narrowed to stage" in i.value]
    assert len(notes) == 2 and all(f"stage '{stage}'" in n for n in notes), [i.value for i in at.info]
    line = next(m.value for m in at.markdown if " closed: " in m.value).replace("\\", "")
    assert line.startswith(f"**{format_value(won, 'currency', compact=True)}** closed")
    assert any(c.value.replace("\\", "") == f"For team {team}, rep {rep}." for c in at.caption)
