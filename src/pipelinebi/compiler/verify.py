"""The second line of defence: the printed SQL must be the query the compiler built.

Every value is a literal and every expression passed the allow-list before compiling; still,
the text an engine receives is what counts.  A printer quirk (sqlglot printing a quoted
user-defined type name unquoted was one) can turn a tree into text that means something
else.  So the SQL text is parsed again and must be

- exactly one statement;
- made only of the node types, functions and CAST types the compiler emits
  (:data:`pipelinebi.semantic.allowlist.COMPILED`);
- reading exactly the tables the compiled tree reads, each a known table or one of its CTEs;
- the same shape: as many SELECTs and UNIONs as the tree, and the same column references.

>>> import sqlglot
>>> tree = sqlglot.parse_one("SELECT team, sum(amount) AS a FROM deals GROUP BY team")
>>> verify_sql(tree.sql("duckdb"), tree, "duckdb", {"deals"})
>>> verify_sql("SELECT team, sum(amount) AS a FROM deals GROUP BY team UNION ALL SELECT key, 1 FROM pipelinebi_meta",
...            tree, "duckdb", {"deals"})
Traceback (most recent call last):
...
pipelinebi.errors.QueryError: the compiled SQL does not match the query that was compiled: it reads tables ['deals', 'pipelinebi_meta'], the query ['deals'] (this is a bug in PipelineBI: please report the query)
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

import sqlglot
from sqlglot import exp

from ..errors import ExpressionError, Problem, QueryError
from ..semantic import allowlist

_BUG = "this is a bug in PipelineBI: please report the query"


def _shape(tree: exp.Expression) -> tuple[list[str], Counter, Counter]:
    """Tables read (CTE names excepted), SELECT/UNION counts and column names, in one walk.

    >>> _shape(sqlglot.parse_one("WITH t AS (SELECT a FROM deals) SELECT a FROM t"))[0]
    ['deals']
    """
    ctes: set[str] = set()
    tables: set[str] = set()
    counts: Counter = Counter()
    columns: Counter = Counter()
    for node in tree.walk():
        if isinstance(node, exp.Column):
            columns[node.name] += 1
        elif isinstance(node, exp.Table):
            tables.add(node.name)
        elif isinstance(node, (exp.Select, exp.Union)):
            counts[type(node).__name__] += 1
        elif isinstance(node, exp.CTE):
            ctes.add(node.alias_or_name)
    return sorted(tables - ctes), counts, columns


def _refuse(detail: str) -> None:
    raise QueryError(Problem(f"the compiled SQL does not match the query that was compiled: {detail}", hint=_BUG))


def verify_sql(text: str, tree: exp.Expression, dialect: str, known_tables: Iterable[str],
               policy: allowlist.Policy = allowlist.COMPILED) -> None:
    """Raise :class:`QueryError` unless ``text`` parses back to the shape of ``tree``."""
    try:
        statements = [s for s in sqlglot.parse(text, read=dialect) if s is not None]
    except Exception as e:  # noqa: BLE001 — any parser failure means the text is not what we built
        _refuse(f"it does not parse as {dialect} ({type(e).__name__})")
    if len(statements) != 1:
        _refuse(f"it holds {len(statements)} statements")
    (printed,) = statements
    try:
        allowlist.check(printed, policy)
    except ExpressionError as e:
        _refuse(e.problems[0].message)
    tables, counts, columns = _shape(printed)
    want_tables, want_counts, want_columns = _shape(tree)
    if tables != want_tables:
        _refuse(f"it reads tables {tables}, the query {want_tables}")
    unknown = sorted(set(tables) - set(known_tables))
    if unknown:
        _refuse(f"it reads unknown tables {unknown}")
    if counts != want_counts:
        _refuse(f"it has {dict(counts)} where the query has {dict(want_counts)}")
    if columns != want_columns:
        extra = sorted((columns - want_columns) | (want_columns - columns))
        _refuse(f"its column references differ from the query's ({', '.join(extra[:5])})")
