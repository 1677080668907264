"""Where ``pipelinebi model train|score`` and ``backtest`` read, store their results and keep the
model: the DuckDB file, or a warehouse engine (PostgreSQL, Spark).

=========================  ==========================================  ===========================================
                           :class:`FileTarget` (DuckDB)                 :class:`EngineTarget` (``--engine`` URL)
=========================  ==========================================  ===========================================
reads                      the file, read-only and locked, with         the engine's read-only session; the same
                           ``FORECAST_MEMORY``                          SQL printed for it (snapshots.py)
``forecast_backtest``,     a copy of the file, swapped in               tables of the schema (PostgreSQL: built
``win_scores``             (:mod:`.store`)                              beside, swapped in one transaction) or of
                                                                        the Spark warehouse (a new Parquet folder
                                                                        named by a new ``CURRENT``; Connect: a
                                                                        ``__pbi_new`` table renamed in): the
                                                                        engine's ``replace_table``
the trained model          ``<file>.winmodel.json`` beside the file     ``<forecast_model_dir>/<data key>.winmodel.json``
                                                                        (default ``models/`` beside the DuckDB
                                                                        file; :func:`pipelinebi.engines.data_key`)
=========================  ==========================================  ===========================================

>>> from pipelinebi.settings import Settings
>>> t = EngineTarget(Settings(engine="postgresql://ann:s3cret@db.example/sales?schema=crm", database="/srv/bi/x.duckdb"))
>>> t.name, str(t.model_path)
('postgresql://ann:***@db.example/sales?schema=crm', '/srv/bi/models/postgres-db.example-5432-sales-crm.winmodel.json')
>>> EngineTarget(Settings(engine="spark-local?warehouse=/srv/lake&database=crm", database="/srv/bi/x.duckdb")).model_path.name
'spark-local-crm-5b3e4953.winmodel.json'
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Hashable, Iterator

import pandas as pd

#: DuckDB's memory limit for the forecast commands' reads (not the app's ``query_memory``, half
#: the machine by default): their big query — every date's open pipeline in one pass — is sorted
#: and streamed, spilling to the private temp directory beyond this.  With the copy's write
#: connection (store.WRITE_MEMORY) and Python's own data it must fit the 2 GB goal at 1M deals:
#: at 1 GB + 512 MB a 1M-deal weekly backtest passed 2.1 GiB (README, Forecast intelligence).
FORECAST_MEMORY = "768MB"


class FileTarget:
    """The DuckDB file ``database``; ``semantic_dir`` (default: the settings') says which rollups
    read a stored table (:meth:`rollups_reading`)."""

    def __init__(self, database: Path | str, semantic_dir: Path | str | None = None):
        self.database = Path(database)
        self.name = str(self.database)
        self.semantic_dir = semantic_dir

    def rollups_reading(self, table: str) -> tuple[str, ...] | None:
        """:meth:`EngineTarget.rollups_reading` for the file: withdrawn in the same swap."""
        from ..ingest.derived import rollups_reading

        if self.semantic_dir is None:
            from ..settings import get_settings

            self.semantic_dir = get_settings().semantic_dir
        return rollups_reading(self.semantic_dir, table)

    @property
    def model_path(self) -> Path:
        from .model import model_path

        return model_path(self.database)

    @contextmanager
    def reader(self) -> Iterator[Any]:
        from ..warehouse import open_readonly

        with open_readonly(self.database, memory_limit=FORECAST_MEMORY) as con:
            yield con

    def store_backtest(self, rows, info) -> int:
        from .store import TABLE, store

        return store(self.database, rows, info, retire=self.rollups_reading(TABLE))

    def store_scores(self, scores: pd.DataFrame, info: dict) -> None:
        from .store import SCORES_TABLE, store_scores

        store_scores(self.database, scores, info, retire=self.rollups_reading(SCORES_TABLE))

    def save_model(self, model) -> None:
        model.save(self.model_path)


class EngineTarget:
    """The warehouse engine ``settings`` name (``PIPELINEBI_ENGINE`` / ``--engine``)."""

    def __init__(self, settings: Any):
        from ..engines.url import data_key, engine_url

        self.settings = settings
        self.url = engine_url(settings)
        self.name = self.url.redacted
        folder = getattr(settings, "forecast_model_dir", None) or Path(settings.database).parent / "models"
        self.model_path = Path(folder) / f"{data_key(self.url)}.winmodel.json"
        #: the engine's version when this command first read it: the results describe that data
        self.built: Hashable = None

    @contextmanager
    def reader(self) -> Iterator[Any]:
        from ..engines import open_engine

        engine = open_engine(self.settings)  # read-only: every transaction of its sessions
        try:
            if self.built is None:
                self.built = engine.version()
            yield engine
        finally:
            engine.close()

    def _writer(self):
        from ..engines import open_engine

        return open_engine(self.settings)  # replace_table opens its own writable connection

    def rollups_reading(self, table: str) -> tuple[str, ...] | None:
        """The rollup tables (``semantic/rollups``) whose SQL reads ``table``: a store of new rows
        into it withdraws their claim (built from the old rows, they would answer with them); None
        (every rollup) when the semantic folder cannot say."""
        from ..ingest.derived import rollups_reading

        return rollups_reading(self.settings.semantic_dir, table)

    def store_backtest(self, rows, info) -> int:
        from .store import TABLE, store_on_engine

        engine = self._writer()
        try:
            return store_on_engine(engine, rows, info, built=self.built, retire=self.rollups_reading(TABLE))
        finally:
            engine.close()

    def store_scores(self, scores: pd.DataFrame, info: dict) -> None:
        from .store import SCORES_TABLE, store_scores_on_engine

        engine = self._writer()
        try:
            store_scores_on_engine(engine, scores, info, built=self.built, retire=self.rollups_reading(SCORES_TABLE))
        finally:
            engine.close()

    def save_model(self, model) -> None:
        self.model_path.parent.mkdir(parents=True, exist_ok=True)
        model.save(self.model_path)


def target_of(where: Any) -> Any:
    """A target for ``where``: a path is the DuckDB file; a target is itself."""
    return FileTarget(where) if isinstance(where, (str, Path)) else where
