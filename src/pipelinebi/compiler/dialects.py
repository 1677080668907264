"""Per-engine fixes sqlglot does not make, found by running the SQL on the engines.

* **spark**: an exact percentile is ``PERCENTILE(x, p)``. sqlglot writes
  ``PERCENTILE_CONT(x, p)``, which Spark 4 refuses, and turns the ``WITHIN GROUP`` form into
  ``PERCENTILE_APPROX`` (approximate, so a different number).
* **bigquery**: there is no exact median or percentile *aggregate* (``PERCENTILE_CONT`` is an
  analytic function there, ``APPROX_QUANTILES`` is approximate), so such a query is refused
  with the measure named, rather than emitted as SQL BigQuery would reject or answer
  differently.

Each rule is a small transform of the compiled tree, applied only for its dialect
(``tests/test_dialect_spark.py`` runs every metric on Spark; PostgreSQL is covered the same way).

>>> from sqlglot import parse_one
>>> for_dialect(parse_one("SELECT QUANTILE_CONT(d, 0.9) AS p90 FROM t", read="duckdb"), "spark").sql("spark")
'SELECT PERCENTILE(d, 0.9) AS p90 FROM t'
>>> for_dialect(parse_one("SELECT MEDIAN(d) AS m FROM t", read="duckdb"), "bigquery")
Traceback (most recent call last):
...
pipelinebi.errors.QueryError: BigQuery has no exact median or percentile aggregate, so measure m cannot be compiled for it (compile for duckdb, postgres, spark or snowflake)
"""

from __future__ import annotations

from sqlglot import exp

from ..errors import Problem, QueryError


def for_dialect(expression: exp.Expression, dialect: str) -> exp.Expression:
    """``expression`` adjusted for ``dialect`` (a copy; the compiled tree is not changed)."""
    rule = _RULES.get(dialect)
    return rule(expression.copy()) if rule else expression


def _spark(tree: exp.Expression) -> exp.Expression:
    def exact_percentile(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.PercentileCont) and node.expression is not None:
            return exp.Anonymous(this="PERCENTILE", expressions=[node.this, node.expression])
        return node

    return tree.transform(exact_percentile)


def _bigquery(tree: exp.Expression) -> exp.Expression:
    for node in tree.find_all(exp.PercentileCont, exp.Median):
        alias = node.parent.alias_or_name if isinstance(node.parent, exp.Alias) else node.sql()
        raise QueryError(Problem(
            f"BigQuery has no exact median or percentile aggregate, so measure {alias} cannot be compiled for it",
            hint="compile for duckdb, postgres, spark or snowflake"))
    return tree


_RULES = {"spark": _spark, "bigquery": _bigquery}
