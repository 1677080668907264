"""The public face of the semantic layer.

>>> from pipelinebi.settings import Settings
>>> layer = SemanticLayer.load(Settings().semantic_dir)
>>> from pipelinebi.compiler.query import Query
>>> print(layer.compile(Query(metrics=("pipeline_amount",), dimensions=("team",))))
SELECT
  reps.team AS team,
  COALESCE(SUM(deals.amount), 0) AS pipeline_amount
FROM deals AS deals
LEFT JOIN reps AS reps
  ON deals.owner_id = reps.rep_id
WHERE
  deals.status = 'open'
GROUP BY
  reps.team
ORDER BY
  team ASC
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ..compiler.assemble import Compiled, compile_query
from ..compiler.dialects import for_dialect
from ..compiler.query import Query
from ..compiler.verify import verify_sql
from ..errors import ConfigError, Problem, QueryError
from .definitions import MetricBase
from .loader import load_definitions
from .registry import Registry, build_registry

if TYPE_CHECKING:  # only named in annotations: the layer runs on any engine
    import duckdb


DIALECTS = ("duckdb", "postgres", "spark", "snowflake", "bigquery")


@dataclass
class Result:
    """A query's answer: the data plus the SQL that produced it."""

    table: Any  # pyarrow.Table
    sql: str
    columns: list[str]
    warnings: list[str] = field(default_factory=list)

    def df(self):
        return self.table.to_pandas()

    def arrow(self):
        return self.table


class SemanticLayer:
    def __init__(self, registry: Registry, semantic_dir: Path):
        self.registry = registry
        self.semantic_dir = semantic_dir
        self._timeout: float | None = None  # the query_timeout setting, read on first use
        self._metrics: Mapping[str, MetricBase] = MappingProxyType({})
        self._metrics_of: Any = None  # the registry.metrics _metrics was built from

    @classmethod
    def load(cls, semantic_dir: Path | str) -> "SemanticLayer":
        semantic_dir = Path(semantic_dir)
        models, metrics = load_definitions(semantic_dir)
        from .rollups import with_rollups

        return cls(with_rollups(build_registry(models, metrics, semantic_dir), semantic_dir), semantic_dir)

    # ---------------------------------------------------------------- info
    @property
    def metrics(self) -> Mapping[str, MetricBase]:
        """Each metric's definition by name (read-only; built once per registry: a picker's
        ``format_func`` reads it once per option on every rerun)."""
        src = self.registry.metrics
        if self._metrics_of is not src:
            self._metrics = MappingProxyType({n: loc.definition for n, loc in src.items()})
            self._metrics_of = src
        return self._metrics

    def metric(self, name: str) -> MetricBase:
        try:
            return self.metrics[name]
        except KeyError:
            from ..errors import unknown_name_hint
            raise QueryError(Problem(f"unknown metric '{name}'", hint=unknown_name_hint(name, self.metrics))) from None

    def dimensions(self) -> list[str]:
        return sorted({d for m in self.registry.models.values() for d in m.dimensions})

    def dimensions_for(self, metric: str) -> list[str]:
        """Dimensions every branch of ``metric`` can reach (what Explore may offer)."""
        from ..compiler.plan import plan_metrics

        plan = plan_metrics(self.registry, (metric,))
        sets = [{d for m in self.registry.reachable(b.model) for d in self.registry.models[m].dimensions}
                for b in plan.branches]
        return sorted(set.intersection(*sets)) if sets else []

    def formats_for(self, columns: list[str]) -> dict[str, str]:
        return {c: self.metrics[c].format for c in columns if c in self.metrics}

    def summary(self) -> str:
        n_dims = len(self.dimensions())
        return (f"{len(self.registry.models)} models, {n_dims} dimensions, "
                f"{sum(len(m.measures) for m in self.registry.models.values())} measures, "
                f"{len(self.registry.metrics)} metrics in {self.semantic_dir}")

    # ------------------------------------------------------------- compile
    def compile_expression(self, query: Query) -> Compiled:
        return compile_query(self.registry, query)

    def compile(self, query: Query, dialect: str = "duckdb", pretty: bool = True, rollups_in: str = "duckdb") -> str:
        """The SQL of ``query`` in ``dialect``. ``rollups_in``: the dialect of the database whose
        rollups ``query.rollups`` names (:meth:`rollups_of`); printed for another engine, the query
        reads the raw tables — that engine's database may hold no rollups."""
        if dialect != rollups_in and query.rollups:
            query = query.model_copy(update={"rollups": ()})
        return self.sql(self.compile_expression(query), dialect, pretty)

    def with_rollups(self, query: Query, con: duckdb.DuckDBPyConnection) -> Query:
        """``query`` allowed to read the rollups ``con``'s database holds (``semantic/rollups``),
        looked up once per database version."""
        if query.rollups is not None or not self.registry.rollups:
            return query
        return query.model_copy(update={"rollups": self.rollups_of(con)})

    def with_copies(self, query: Query, con: Any) -> Query:
        """``query`` allowed to read a dimension from a model's checked copies instead of a
        join (:mod:`pipelinebi.access.copies`; each model checked once per database version)."""
        if query.copies is not None:
            return query
        from ..access.copies import checked_copies

        return query.model_copy(update={"copies": checked_copies(self.registry, query, con)})

    def rollups_of(self, con: duckdb.DuckDBPyConnection) -> tuple[str, ...]:
        """The rollups ``con``'s database holds, current with this YAML (cached per file version)."""
        from ..access.keys import stamp_of
        from .rollups import available

        stamp = stamp_of(con)
        held = self.__dict__.setdefault("_rollups_by_stamp", {})
        if stamp is None or stamp not in held:
            found = available(self.registry.rollups, con)
            if stamp is None:
                return found
            if len(held) > 16:
                held.clear()
            held[stamp] = found
        return held[stamp]

    def sql(self, compiled: Compiled, dialect: str = "duckdb", pretty: bool = True) -> str:
        """The SQL text of a compiled query for ``dialect``, with the per-engine fixes of
        :mod:`pipelinebi.compiler.dialects` — the one place compiled trees become text."""
        if dialect not in DIALECTS:
            from ..errors import unknown_name_hint
            raise ConfigError(Problem(f"unknown dialect '{dialect}'", hint=unknown_name_hint(dialect, DIALECTS)))
        tree = for_dialect(compiled.expression, dialect)
        text = tree.sql(dialect=dialect, pretty=pretty)
        verify_sql(text, tree, dialect, self.registry.tables)
        return text

    def query(self, query: Query, con: Any = None) -> Result:
        """Run ``query`` on ``con`` (a DuckDB connection or an engine of :mod:`pipelinebi.engines`;
        default: the configured engine, opened read-only)."""
        if con is None:
            from ..engines import open_engine
            from ..settings import get_settings

            with open_engine(get_settings()) as own:
                return self.query(query, own)
        if query.scope is not None and query.scope.restricted and query.scope.keys is None:
            # a row rule on rep attributes becomes the reps' keys once per database version, so
            # branches need not join reps to test it (pipelinebi.access.keys)
            from ..access.keys import resolve, stamp_of

            query = query.model_copy(update={"scope": resolve(self, query.scope, con, stamp_of(con))})
        return self.execute(self.compile_expression(self.with_copies(self.with_rollups(query, con), con)), con)

    def execute(self, compiled: Compiled, con: Any, sql: str | None = None,
                timeout: float | None = None) -> Result:
        """Run an already compiled query (``sql``: its DuckDB text, when the caller has it
        already — the app caches it per query, so a rerun does not compile again).

        ``con`` is a DuckDB connection or an engine (:mod:`pipelinebi.engines`): the query is
        printed in the engine's dialect, with its fixes (:mod:`pipelinebi.compiler.dialects`).
        The query is interrupted after ``timeout`` seconds (default: the ``query_timeout``
        setting); whatever the engine refuses comes back as a :class:`QueryError` saying why.
        """
        from ..engines.url import dialect_of
        from ..engines.duckdb import run_duckdb

        if timeout is None:
            timeout = self._default_timeout()
        dialect = dialect_of(con)
        if dialect != "duckdb":
            text = self.sql(compiled, dialect, pretty=False)
            return Result(con.run(text, timeout=timeout), text, compiled.columns, compiled.warnings)
        if sql is None:
            sql = self.sql(compiled)
        cursor = con.cursor()  # connections are not thread-safe; cursors are cheap
        try:
            table = run_duckdb(cursor, sql, timeout)
        finally:
            cursor.close()
        return Result(table, sql, compiled.columns, compiled.warnings)

    def _default_timeout(self) -> float:
        if self._timeout is None:
            from ..settings import get_settings
            self._timeout = get_settings().query_timeout
        return self._timeout


def load_semantic_layer(semantic_dir: Path | str) -> SemanticLayer:
    return SemanticLayer.load(semantic_dir)
