"""What the forecast adds to a database ingest has just built, before it is swapped in.

Ingest calls ``finish(con)`` on the new database (:func:`pipelinebi.ingest.ingest`'s ``finish``),
so these tables land all or nothing with the data, without a second copy of the file; it runs
once the tables it fills are built and before the rollups reading them (``finish.writes``), so
the deal lists' rollups are built from the fresh scores and stay valid:

* :func:`apply_model` — the issue's "applied at ingest or on demand": if a win model was trained
  for this database (``<name>.winmodel.json`` beside it, ``pipelinebi model train``), it scores
  the new data's open deals into ``win_scores``; a re-ingest no longer leaves the deal board
  without probabilities.  The model is *not* retrained (that is the command's job, minutes at
  scale): the note says which cutoff it learned from, so stale learning is visible.
* :class:`ScoreInBuild` — the same for ``ingest``/``derive --engine postgresql://…``: the model
  kept for that engine (``PIPELINEBI_FORECAST_MODEL_DIR``, :class:`.target.EngineTarget`) scores
  the open deals inside the build, before the rollups reading ``win_scores`` are built, so the
  schema swapped in (or the derive committed) carries fresh scores and rollups built from them.
  No model stored: ``win_scores`` stays as the derived SQL builds it (empty), as on DuckDB.
* :func:`recent_backtest` — the demo database (built from ``seeds/`` on first start) gets a
  weekly backtest of its last :data:`DEMO_QUARTERS` completed quarters, so the Forecast accuracy
  page shows real content on first open (a few seconds on the 3,000 seed deals).

>>> recent_dates(date(2026, 11, 14), 1)[0]  # the demo's backtest starts on a Monday of Q3
datetime.date(2026, 7, 6)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import pandas as pd

from ..errors import PipelineBIError
from . import backtest as B
from . import model as M
from .dates import quarter_of, schedule
from .snapshots import history_span
from .store import SCORES_TABLE, TABLE, write_backtest, write_scores, write_scores_in_build

#: Completed quarters the demo's backtest covers (the accuracy page shows 4 by default).
DEMO_QUARTERS = 4


def _declared(con, table: str) -> bool:
    """Whether the semantic folder's derived tables include ``table`` (ingest built it, empty):
    a folder without it does not want it filled."""
    return con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]).fetchone()[0] > 0


def apply_model(con, database: Path) -> list[str]:
    """Score the open deals of the database on ``con`` with the model stored beside ``database``
    (none stored: nothing to do).  A model file that cannot be read leaves ``win_scores`` empty
    and says so — the load itself is not refused for it."""
    path = M.model_path(Path(database))
    if not path.is_file() or not _declared(con, SCORES_TABLE):
        return []
    return _score_with(con, path, lambda scores, info: write_scores(con, scores, info))


def _score_with(con, path: Path, write: Callable[[pd.DataFrame, dict], object]) -> list[str]:
    """Score the open deals on ``con`` (the day after its as-of date) with the model in ``path``
    and ``write(scores, info)`` them; the notes for the report."""
    try:
        model = M.WinModel.load(path)
    except PipelineBIError as e:
        return [f"win probabilities left empty: {e} — the deal board shows none until then"]
    _, as_of = history_span(con)
    day = as_of + timedelta(days=1)
    scores = M.score_open(con, model, day)
    cutoff = model.meta.get("cutoff")
    write(scores, {"model_cutoff": cutoff, "scored_on": day.isoformat(), "applied_at": "ingest"})
    return [f"scored {len(scores):,} open deals with the win model in {path.name} (trained on outcomes known "
            f"before {cutoff}); run `pipelinebi model train` to learn from the new data"]


@dataclass(frozen=True)
class ScoreInBuild:
    """The ``finish`` step of a warehouse build (:func:`pipelinebi.engines.postgres_build.build_derived`):
    the win model in ``model_path`` (none there: nothing to do) scores the open deals into
    ``win_scores`` of the schema being built, on the build's session, with its description,
    coverage (``scored_deals``) and row count in that schema's ``pipelinebi_meta``.  ``writes``:
    the tables it fills — the build makes the tables reading them (the deal lists' rollups) after it.

    >>> ScoreInBuild(Path("/nowhere/m.winmodel.json"))(object())  # no model stored
    []
    """

    model_path: Path
    writes: tuple[str, ...] = (SCORES_TABLE,)

    def __call__(self, session) -> list[str]:
        if not Path(self.model_path).is_file():
            return []
        return _score_with(session, Path(self.model_path),
                           lambda scores, info: write_scores_in_build(session, scores, info))


def engine_finisher(settings) -> ScoreInBuild:
    """The ``finish`` step of ``ingest``/``derive`` on the warehouse engine ``settings`` names: the
    model ``pipelinebi model train --engine …`` keeps for that engine (:class:`.target.EngineTarget`)."""
    from .target import EngineTarget

    return ScoreInBuild(EngineTarget(settings).model_path)


def backtest_info(dates: list[date], every: str, as_of: date, methods: list[str], **extra) -> dict:
    """The description stored with a backtest (``pipelinebi_meta.forecast_backtest``).

    >>> backtest_info([date(2026, 1, 5), date(2026, 1, 12)], "week", date(2026, 2, 1), ["model"], ran_at="x")
    {'from': '2026-01-05', 'to': '2026-01-12', 'every': 'week', 'snapshots': 2, 'as_of': '2026-02-01', 'methods': ['model'], 'ran_at': 'x'}
    """
    info = {"from": dates[0].isoformat(), "to": dates[-1].isoformat(), "every": every, "snapshots": len(dates),
            "as_of": as_of.isoformat(), "methods": sorted(methods),
            "ran_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    return {**info, **extra}


def recent_dates(as_of: date, quarters: int) -> list[date]:
    """Mondays of the last ``quarters`` quarters that were over by ``as_of``.

    >>> ds = recent_dates(date(2026, 11, 14), 2)
    >>> ds[0], ds[-1], len(ds)
    (datetime.date(2026, 4, 6), datetime.date(2026, 9, 28), 26)
    """
    last_end = quarter_of(as_of)[0] - timedelta(days=1)
    first = quarter_of(last_end)[0]
    for _ in range(quarters - 1):
        first = quarter_of(first - timedelta(days=1))[0]
    return schedule(first, last_end, "week")


def recent_backtest(con, quarters: int = DEMO_QUARTERS) -> list[str]:
    """Backtest every method weekly over the last ``quarters`` completed quarters and store it."""
    if not _declared(con, TABLE):
        return []
    _, as_of = history_span(con)
    dates = recent_dates(as_of, quarters)
    if not dates:
        return []
    rows, timings = B.run(con, dates, as_of)
    write_backtest(con, rows, backtest_info(dates, "week", as_of, rows.method.unique().tolist(),
                                            built_with="demo"))
    return [f"backtest of the last {quarters} quarters ({len(dates)} weekly snapshots, "
            f"{timings['models']} models) stored for the Forecast accuracy page"]


def finisher(database: Path, *, backtest: bool = False) -> Callable[[object], list[str]]:
    """The ``finish`` step ingest runs on the new database: apply the stored model, and (for the
    demo) build a recent backtest."""
    def finish(con) -> list[str]:
        notes = apply_model(con, database)
        if backtest:
            try:
                notes += recent_backtest(con)
            except Exception as e:  # noqa: BLE001 — the demo must open even if its optional backtest fails
                notes.append(f"no backtest built ({type(e).__name__}: {e}); the Forecast accuracy page says to run "
                             "`pipelinebi backtest`")
        return notes
    # the tables it fills: ingest runs it once they are built, before the rollups reading them
    # (the deal lists' win_score), so those are built from the fresh scores and stay valid
    finish.writes = (SCORES_TABLE, TABLE) if backtest else (SCORES_TABLE,)
    return finish
