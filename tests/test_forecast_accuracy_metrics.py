"""The stored backtest as a semantic-layer table (#16): `forecast_backtest` and the forecast
accuracy metrics, checked on a tiny hand-worked backtest against numbers worked by hand and an
independent pandas computation; storing is atomic; no backtest → the metrics are unknown (—).

Hand-worked backtest (Q1 2026 is over; Q4 2026 is running, actual unknown):

  snapshot    week  method             team  forecast  actual   error
  2026-01-05   1    stage_probability  A        100      150     -50
  2026-01-05   1    stage_probability  B        300      200    +100
  2026-01-05   1    commit             A         50      150    -100
  2026-01-05   1    commit             B        150      200     -50
  2026-02-16   7    stage_probability  A        160      150     +10
  2026-02-16   7    stage_probability  B        210      200     +10
  2026-02-16   7    commit             A        120      150     -30
  2026-02-16   7    commit             B        190      200     -10
  2026-10-05   1    stage_probability  A        500      NULL    (running: not scored)
  2026-10-05   1    commit             A        400      NULL

stage_probability over Q1: Σ error = -50 + 100 + 10 + 10 = 70 over 2 snapshots → mean error 35;
Σ |error| = 50 + 100 + 10 + 10 = 170; Σ actual = 2 × (150 + 200) = 700 → abs % error 170/700,
bias 70/700 = +10 %.  commit: Σ error = -190 → mean -95, bias -190/700, abs % 190/700.
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd
import pytest

from metric_fixtures import SEMANTIC, TINY, build_database
from pipelinebi.compiler.query import Query
from pipelinebi.coverage import read as read_coverage
from pipelinebi.dashboards import answers
from pipelinebi.forecast import store as S
from pipelinebi.forecast.backtest import COLUMNS
from pipelinebi.semantic import load_semantic_layer
from pipelinebi.semantic.tables import physical_columns

HAND = [  # snapshot, week, method, team, forecast, actual
    ("2026-01-05", 1, "stage_probability", "A", 100, 150), ("2026-01-05", 1, "stage_probability", "B", 300, 200),
    ("2026-01-05", 1, "commit", "A", 50, 150), ("2026-01-05", 1, "commit", "B", 150, 200),
    ("2026-02-16", 7, "stage_probability", "A", 160, 150), ("2026-02-16", 7, "stage_probability", "B", 210, 200),
    ("2026-02-16", 7, "commit", "A", 120, 150), ("2026-02-16", 7, "commit", "B", 190, 200),
    ("2026-10-05", 1, "stage_probability", "A", 500, None), ("2026-10-05", 1, "commit", "A", 400, None),
]
#: the hand rows are one owner's per team: R1 of team A (NA), R3 of team B (EMEA) in TINY's reps
OWNER, REGION = {"A": "R1", "B": "R3"}, {"A": "NA", "B": "EMEA"}
METRICS = ("backtest_forecast", "backtest_actual", "backtest_snapshots", "forecast_error", "forecast_abs_error",
           "forecast_abs_pct_error", "forecast_bias")


def hand_rows() -> pd.DataFrame:
    out = []
    for snap, week, method, team, fc, act in HAND:
        d = date.fromisoformat(snap)
        start = date(2026, 1, 1) if d.month <= 3 else date(2026, 10, 1)
        end = date(2026, 3, 31) if d.month <= 3 else date(2026, 12, 31)
        err = None if act is None else fc - act
        out.append({"snapshot_date": d, "period_start": start, "period_end": end, "week_of_period": week,
                    "method": method, "owner_id": OWNER[team], "team": team, "region": REGION[team],
                    "pipeline": "New Business", "closed_won_to_date": 0.0, "open_in_period": float(fc),
                    "open_weighted": float(fc), "forecast": float(fc), "actual": act,
                    "error": err, "abs_error": None if err is None else abs(err)})
    return pd.DataFrame(out, columns=COLUMNS)


TABLES = TINY  # any complete small warehouse: the backtest rows are stored on top of it


@pytest.fixture(scope="module")
def layer():
    return load_semantic_layer(SEMANTIC)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("bt")
    build_database(TABLES, path).close()
    db = path / "metrics.duckdb"
    S.store(db, hand_rows(), {"from": "2026-01-05", "to": "2026-10-05", "every": "week"})
    return db


@pytest.fixture(scope="module")
def con(db):
    c = duckdb.connect(str(db), read_only=True)
    yield c
    c.close()


def q(layer, con, dims, **kw) -> pd.DataFrame:
    return layer.query(Query(metrics=METRICS, dimensions=tuple(dims), **kw), con).df()


def pandas_accuracy(rows: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Written apart from the semantic layer: scored rows only; error per row; sums per group."""
    r = rows[rows.actual.notna()].copy()
    r["err"] = r.forecast - r.actual.astype(float)
    g = r.groupby(by).agg(err=("err", "sum"), abs_err=("err", lambda s: s.abs().sum()),
                          actual=("actual", "sum"), snaps=("snapshot_date", "nunique"))
    return pd.DataFrame({"forecast_error": g.err / g.snaps, "forecast_abs_error": g.abs_err / g.snaps,
                         "forecast_abs_pct_error": g.abs_err / g.actual, "forecast_bias": g.err / g.actual,
                         "backtest_snapshots": g.snaps})


def test_stored_table_has_the_derived_files_columns(con):
    declared = physical_columns(SEMANTIC)["forecast_backtest"]
    stored = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                              "WHERE table_name = 'forecast_backtest' ORDER BY ordinal_position").fetchall())
    assert stored == declared
    assert list(S.TYPES.items()) == list(declared.items())
    assert con.execute("SELECT count(*) FROM forecast_backtest").fetchone()[0] == len(HAND)


def test_metrics_by_method_worked_by_hand(layer, con):
    got = q(layer, con, ["forecast_method"]).set_index("forecast_method")
    sp, cm = got.loc["stage_probability"], got.loc["commit"]
    assert sp.forecast_error == pytest.approx(35)
    assert sp.forecast_abs_error == pytest.approx(85)
    assert sp.forecast_abs_pct_error == pytest.approx(170 / 700)
    assert sp.forecast_bias == pytest.approx(0.10)
    assert sp.backtest_snapshots == 2
    assert cm.forecast_error == pytest.approx(-95)
    assert cm.forecast_bias == pytest.approx(-190 / 700)
    assert cm.forecast_abs_pct_error == pytest.approx(190 / 700)
    # the running quarter's forecasts are there, its actual is not
    assert sp.backtest_forecast == pytest.approx(100 + 300 + 160 + 210 + 500)
    assert sp.backtest_actual == pytest.approx(700)


@pytest.mark.parametrize("dims", [["forecast_method", "team"], ["forecast_method", "week_of_period"],
                                  ["forecast_method", "period_start", "team"]])
def test_metrics_match_pandas(layer, con, dims):
    rows = hand_rows()
    cols = {"forecast_method": "method"}
    want = pandas_accuracy(rows.assign(period_start=pd.to_datetime(rows.period_start)),
                           [cols.get(d, d) for d in dims])
    got = q(layer, con, dims)
    got = got[got.backtest_snapshots > 0].rename(columns=cols)
    got["period_start"] = pd.to_datetime(got["period_start"]) if "period_start" in got else None
    got = got.set_index([cols.get(d, d) for d in dims])
    assert len(got) == len(want)
    for m in want.columns:
        for key, v in want[m].items():
            assert got.loc[key, m] == pytest.approx(v), (m, key)


def test_by_snapshot_the_convergence_series(layer, con):
    got = layer.query(Query(metrics=("backtest_forecast", "backtest_actual"), dimensions=("snapshot_date", "forecast_method"),
                            start=date(2026, 1, 1), end=date(2026, 4, 1)), con).df()
    got["snapshot_date"] = pd.to_datetime(got.snapshot_date).dt.date
    f = {(r.snapshot_date.isoformat(), r.forecast_method): r.backtest_forecast for r in got.itertuples()}
    assert f == {("2026-01-05", "stage_probability"): 400, ("2026-01-05", "commit"): 200,
                 ("2026-02-16", "stage_probability"): 370, ("2026-02-16", "commit"): 310}
    assert set(got.backtest_actual) == {350}


def test_meta_and_coverage_say_a_backtest_is_stored(con, layer):
    info = S.stored_info(con)
    assert info["rows"] == len(HAND) and info["every"] == "week"
    cov = read_coverage(con)
    assert cov.backtest_rows == len(HAND) and cov.has_backtest
    assert answers.unanswerable(layer, cov, ["forecast_bias"], None, None) == {}


def test_without_a_backtest_the_metrics_are_unknown(layer, tmp_path):
    c = build_database(TABLES, tmp_path)
    try:
        df = q(layer, c, [])
        assert df.forecast_bias.isna().all() and df.forecast_error.isna().all()
        cov = read_coverage(c)
        assert not cov.has_backtest and S.stored_info(c) is None
        assert answers.unanswerable(layer, cov, ["forecast_bias", "pipeline_amount"], None, None) == \
            {"forecast_bias": {answers.BACKTEST}}
        assert "run `pipelinebi backtest" in answers.no_backtest_message()
    finally:
        c.close()


def test_store_refuses_when_the_database_changed(tmp_path, monkeypatch):
    build_database(TABLES, tmp_path).close()
    db = tmp_path / "metrics.duckdb"
    before = db.read_bytes()
    real = S.shutil.copyfile

    def copy_then_someone_swaps(src, dst):  # an ingest replaced the file while we worked
        real(src, dst)
        db.write_bytes(db.read_bytes())
    monkeypatch.setattr(S.shutil, "copyfile", copy_then_someone_swaps)
    from pipelinebi.errors import WarehouseError
    with pytest.raises(WarehouseError, match="changed while this ran"):
        S.store(db, hand_rows(), {})
    assert db.read_bytes() == before
    assert not list(tmp_path.glob(".metrics.duckdb.backtest-*"))


def test_the_recommended_method_is_the_one_worked_out_by_hand(layer, con):
    from pipelinebi.compiler.query import Filter
    from pipelinebi.forecast.accuracy import recommend

    def run(query):
        return layer.query(query, con).df()

    # Q1 2026 (the only quarter over), both teams added up per date: stage probability
    # |400 − 350| + |370 − 350| = 70 of 700, commit |200 − 350| + |310 − 350| = 190 of 700
    best = recommend(run)
    assert (best["method"], best["first"], best["last"]) == ("stage_probability", date(2026, 1, 1), date(2026, 1, 1))
    assert best["ranking"] == [("stage_probability", pytest.approx(70 / 700)), ("commit", pytest.approx(190 / 700))]
    # team A alone: stage probability |100−150| + |160−150| = 60, commit |50−150| + |120−150| = 130 of 300
    a = recommend(run, (Filter(dimension="team", value="A"),))
    assert a["method"] == "stage_probability" and a["abs_pct_error"] == pytest.approx(60 / 300)
    # team B alone: stage probability 100 + 10 = 110, commit 50 + 10 = 60 of 400 — the other answer
    b = recommend(run, (Filter(dimension="team", value="B"),))
    assert b["method"] == "commit" and b["abs_pct_error"] == pytest.approx(60 / 400)
    assert b["bias"] == pytest.approx((150 - 200 + 190 - 200) / 400)
    # a period before any scored quarter: nothing to recommend
    assert recommend(run, end=date(2026, 1, 1)) is None
