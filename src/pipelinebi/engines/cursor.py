"""What a warehouse engine hands to code written for a DuckDB cursor: ``cursor().execute(sql)``
returning rows with ``fetchone()`` / ``fetchall()``, and a ``close()`` that keeps the engine open
(the engine owns its connections; a caller closing "its cursor" must not close them).

One copy for every engine (PostgreSQL, Spark), so the access checks, the rollup lookup and the
coverage reader run unchanged on each.

>>> class Echo:
...     dialect = "postgres"
...     def execute(self, sql, params=()):
...         return Rows([("n", None)], [(len(sql),)])
>>> cur = EngineCursor(Echo())
>>> cur.execute("SELECT 1").fetchone(), cur.dialect
((8,), 'postgres')
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from sqlglot import exp, parse_one


class Rows:
    """An engine's answer: ``description`` (one ``(name,)`` per column), ``fetchone()``,
    ``fetchall()`` (tuples), as a DuckDB result has them."""

    def __init__(self, desc: list[tuple[str, Any]], rows: list[tuple]):
        self.description = [(name,) for name, _ in desc]
        self._rows = list(rows)

    def fetchone(self) -> tuple | None:
        return self._rows.pop(0) if self._rows else None

    def fetchall(self) -> list[tuple]:
        rows, self._rows = self._rows, []
        return rows


class EngineCursor:
    """What ``engine.cursor()`` gives: the engine's queries, and a ``close()`` that keeps it open."""

    def __init__(self, engine: Any):
        self._engine = engine
        self.dialect = engine.dialect

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        return self._engine.execute(sql, params)

    def run(self, *args: Any, **kwargs: Any):
        return self._engine.run(*args, **kwargs)

    def close(self) -> None:
        pass


def bound(parsed: dict[str, exp.Expression], sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> exp.Expression:
    """PipelineBI's own fixed SQL, written for DuckDB with ``?`` placeholders (``params`` a
    sequence) or named ones, ``$name`` (``params`` a mapping), as a tree with each replaced by the
    literal of its value — a date, a timestamp, a list of them (an ARRAY), a string or a number,
    never text pasted into SQL; parsed once per text (``parsed``: the engine's cache). Each engine
    then prints it in its dialect.

    >>> bound({}, "SELECT value FROM pipelinebi_meta WHERE key = ?", ["as_of"]).sql()
    "SELECT value FROM pipelinebi_meta WHERE key = 'as_of'"
    >>> from datetime import datetime
    >>> bound({}, "SELECT * FROM h WHERE changed_at < $as_of", {"as_of": datetime(2026, 1, 5)}).sql("postgres")
    "SELECT * FROM h WHERE changed_at < CAST('2026-01-05 00:00:00' AS TIMESTAMP)"
    >>> bound({}, "SELECT $nope", {})
    Traceback (most recent call last):
    ...
    KeyError: 'no value for $nope'
    """
    tree = parsed.get(sql)
    if tree is None:
        tree = parsed[sql] = parse_one(sql, read="duckdb")
    if isinstance(params, Mapping):
        def value(n: exp.Placeholder) -> exp.Expression:
            if n.name not in params:
                raise KeyError(f"no value for ${n.name}")
            return exp.convert(params[n.name])

        return tree.transform(lambda n: value(n) if isinstance(n, exp.Placeholder) else n)
    values = iter(params)
    return tree.transform(lambda n: exp.convert(next(values)) if isinstance(n, exp.Placeholder) else n)
