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


def _postgres(tree: exp.Expression) -> exp.Expression:
    """Branches stacked with UNION ALL (:mod:`pipelinebi.compiler.combine`) fill other branches'
    columns with NULL. PostgreSQL types a UNION pair by pair, and two untyped NULLs make
    ``text``, which the third branch's number then cannot join ("UNION types text and numeric
    cannot be matched"). So a NULL of the first branch that the second leaves NULL too takes its
    column's type from the branch that fills it: ``(SELECT c FROM that_branch WHERE FALSE)`` is a
    NULL of c's type (two branches, or a second branch that fills it: nothing to do)."""
    for union in list(tree.find_all(exp.Union)):
        if isinstance(union.parent, exp.Union):
            continue  # the chain's top only
        leaves, node = [], union
        while isinstance(node, exp.Union):
            leaves.append(node.expression)
            node = node.this
        leaves.append(node)
        first = node
        if not isinstance(first, exp.Select):
            continue
        owner = {}
        for leaf in leaves:
            if isinstance(leaf, exp.Select) and leaf.args.get("from_") is not None:
                for e in leaf.expressions:
                    if isinstance(e, exp.Column):
                        owner.setdefault(e.name, leaf.args["from_"].this)
        second = leaves[-2]
        untyped = {e.alias for e in second.expressions if isinstance(e, exp.Alias) and isinstance(e.this, exp.Null)} \
            if isinstance(second, exp.Select) else set()
        for e in first.expressions:
            # a NULL the second branch also leaves NULL would pair into text
            if isinstance(e, exp.Alias) and isinstance(e.this, exp.Null) and e.alias in owner and e.alias in untyped:
                typed = exp.select(exp.column(e.alias)).from_(owner[e.alias].copy()).where(exp.false())
                e.set("this", exp.Subquery(this=typed))
    return tree


_RULES = {"spark": _spark, "bigquery": _bigquery, "postgres": _postgres}


# ------------------------------------------------------------ derived tables
def derived_for(tree: exp.Expression, dialect: str) -> str:
    """The SQL text of a derived table's checked tree (``semantic/derived/*.sql``, DuckDB) for
    ``dialect``: the compiled-query rules above plus the DuckDB functions the derived files use
    that the engine lacks.

    * **postgres**: ``any_value(x)`` (PostgreSQL 16+ only, and DuckDB's skips NULLs) becomes the
      first non-NULL of ``array_agg``; ``arg_min(a, b)`` / ``arg_max`` become the first of
      ``array_agg(a ORDER BY b)`` over the rows where neither is NULL (what DuckDB's skip);
      ``unnest(generate_series(…))`` loses the ``unnest`` (PostgreSQL's ``generate_series`` is a
      set already, DuckDB's a list). Two set-returning calls in one select list pair up row by
      row on both engines. A condition cast to a number goes through integer first; a subquery
      in FROM gets a name; ``ASOF JOIN`` becomes a ``LATERAL`` subquery (:func:`_lateral_asof`).

    >>> from sqlglot import parse_one
    >>> t = parse_one("SELECT arg_max(d, e) FILTER (WHERE c) AS x, any_value(k) AS k FROM t", read="duckdb")
    >>> print(derived_for(t, "postgres"))
    SELECT (ARRAY_AGG(d ORDER BY e DESC NULLS LAST) FILTER(WHERE (c) AND NOT d IS NULL AND NOT e IS NULL))[1] AS x, (ARRAY_AGG(k) FILTER(WHERE NOT k IS NULL))[1] AS k FROM t
    """
    tree = for_dialect(tree, dialect)
    rule = _DERIVED_RULES.get(dialect)
    if rule:
        tree = rule(tree.copy())
    return tree.sql(dialect=dialect)


def _first_of(agg: exp.Expression, keep: list[exp.Expression]) -> exp.Expression:
    """``(agg FILTER (WHERE keep…))[1]`` in PostgreSQL's terms (arrays count from 1)."""
    condition = exp.and_(*keep) if keep else None
    inner = exp.Filter(this=agg, expression=exp.Where(this=condition)) if condition is not None else agg
    first = _PG_FIRST.copy()
    first.this.set("this", inner)
    return first


_PG_FIRST = exp.maybe_parse("(x)[1]", dialect="postgres")


def _not_null(e: exp.Expression) -> exp.Expression:
    return exp.not_(exp.Is(this=e.copy(), expression=exp.Null()))


def _postgres_derived(tree: exp.Expression) -> exp.Expression:
    unnamed = iter(range(1, 10_000))

    def fix(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Subquery) and not node.alias and isinstance(node.parent, (exp.From, exp.Join)):
            # PostgreSQL 15 wants a name on every subquery in FROM (16 does not)
            node.set("alias", exp.TableAlias(this=exp.to_identifier(f"_sub{next(unnamed)}")))
            return node
        cond = None
        target = node
        if isinstance(node, exp.Filter) and isinstance(node.this, (exp.ArgMin, exp.ArgMax, exp.IgnoreNulls, exp.AnyValue)):
            cond, target = node.expression.this, node.this
        if isinstance(target, exp.IgnoreNulls) and isinstance(target.this, exp.AnyValue):
            target = target.this
        if isinstance(target, exp.AnyValue):
            value = target.this
            keep = ([exp.paren(cond.copy())] if cond is not None else []) + [_not_null(value)]
            return _first_of(exp.ArrayAgg(this=value.copy()), keep)
        if isinstance(target, (exp.ArgMin, exp.ArgMax)):
            value, key = target.this, target.expression
            ordered = exp.Order(this=value.copy(), expressions=[
                exp.Ordered(this=key.copy(), desc=isinstance(target, exp.ArgMax), nulls_first=False)])
            keep = ([exp.paren(cond.copy())] if cond is not None else []) + [_not_null(value), _not_null(key)]
            return _first_of(exp.ArrayAgg(this=ordered), keep)
        if isinstance(node, (exp.Explode, exp.Unnest)) and isinstance(node.this, exp.GenerateSeries):
            return node.this
        if (isinstance(node, exp.Cast) and isinstance(node.this, (exp.Predicate, exp.Connector, exp.Not))
                and node.to.is_type(*exp.DataType.NUMERIC_TYPES)):
            # a condition as a number: PostgreSQL casts boolean only to integer
            return exp.cast(exp.cast(node.this.copy(), exp.DataType.Type.INT), node.to.copy())
        return node

    tree = tree.transform(fix)
    for join in list(tree.find_all(exp.Join)):
        if (join.args.get("method") or "").upper() == "ASOF":
            join.replace(_lateral_asof(join))
    return tree


def _lateral_asof(join: exp.Join) -> exp.Join:
    """``ASOF JOIN t AS h ON k = h.k AND x > h.at`` (DuckDB) as PostgreSQL's
    ``CROSS JOIN LATERAL (SELECT * FROM t AS h WHERE … ORDER BY h.at DESC LIMIT 1) AS h``:
    the latest row of ``t`` before ``x`` (an index on ``t (k, at)`` makes it one probe)."""
    table = join.this
    alias = table.alias_or_name
    on = join.args["on"]
    order = None
    for cmp in on.find_all(exp.GT, exp.GTE, exp.LT, exp.LTE):
        for side, other in ((cmp.this, cmp.expression), (cmp.expression, cmp.this)):
            if isinstance(side, exp.Column) and side.table == alias and not (
                    isinstance(other, exp.Column) and other.table == alias):
                # ``x > h.at``: the latest h.at below x; ``x < h.at``: the earliest above it
                later = isinstance(cmp, (exp.GT, exp.GTE)) == (side is cmp.expression)
                order = exp.Ordered(this=side.copy(), desc=later, nulls_first=later)  # PG defaults: index order
    if order is None:
        raise QueryError(Problem(f"cannot rewrite ASOF JOIN {alias} for PostgreSQL: no inequality on {alias}",
                                 hint="write the ON condition as key = alias.key AND value > alias.time"))
    inner = exp.select("*").from_(table.copy()).where(on.copy()).order_by(order).limit(1)
    return exp.Join(this=exp.Lateral(this=exp.Subquery(this=inner),
                                     alias=exp.TableAlias(this=exp.to_identifier(alias))), kind="CROSS")


_DERIVED_RULES = {"postgres": _postgres_derived}
