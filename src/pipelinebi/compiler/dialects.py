"""Per-engine fixes sqlglot does not make, found by running the SQL on the engines.

* **spark**: an exact percentile is ``PERCENTILE(x, p)``. sqlglot writes
  ``PERCENTILE_CONT(x, p)``, which Spark 4 refuses, and turns the ``WITHIN GROUP`` form into
  ``PERCENTILE_APPROX`` (approximate, so a different number). A date truncated to a grain
  Spark's ``TRUNC(date, fmt)`` lacks (``day``: it answers NULL, so every day of the pacing line
  was NULL) is ``DATE_TRUNC(unit, x)`` — a timestamp, made a date again by the compiler's
  ``CAST(… AS DATE)``.
* **bigquery**: there is no exact median or percentile *aggregate* (``PERCENTILE_CONT`` is an
  analytic function there, ``APPROX_QUANTILES`` is approximate), so such a query is refused
  with the metric named, rather than emitted as SQL BigQuery would reject or answer
  differently.

Each rule is a small transform of the compiled tree, applied only for its dialect
(``tests/test_dialect_spark.py`` runs every metric on Spark; PostgreSQL is covered the same way).

>>> from sqlglot import parse_one
>>> for_dialect(parse_one("SELECT QUANTILE_CONT(d, 0.9) AS p90 FROM t", read="duckdb"), "spark").sql("spark")
'SELECT PERCENTILE(d, 0.9) AS p90 FROM t'
>>> from pipelinebi.compiler.fields import truncate
>>> for_dialect(truncate(exp.column("close_date"), "day"), "spark").sql("spark")
"CAST(DATE_TRUNC('DAY', close_date) AS DATE)"
>>> for_dialect(truncate(exp.column("close_date"), "quarter"), "spark").sql("spark")
"CAST(TRUNC(close_date, 'QUARTER') AS DATE)"
>>> for_dialect(parse_one("SELECT MEDIAN(d) AS m FROM t", read="duckdb"), "bigquery")
Traceback (most recent call last):
...
pipelinebi.errors.QueryError: BigQuery has no exact median or percentile aggregate, so m cannot be compiled for it (compile for duckdb, postgres, spark or snowflake)
"""

from __future__ import annotations

from sqlglot import exp

from ..errors import Problem, QueryError


def for_dialect(expression: exp.Expression, dialect: str) -> exp.Expression:
    """``expression`` adjusted for ``dialect`` (a copy; the compiled tree is not changed)."""
    rule = _RULES.get(dialect)
    return rule(expression.copy()) if rule else expression


#: the formats of Spark's ``TRUNC(date, fmt)`` (a date in, a date out); any other grain is NULL there
_SPARK_TRUNC_UNITS = frozenset({"YEAR", "YYYY", "YY", "QUARTER", "MONTH", "MM", "MON", "WEEK"})


def _spark(tree: exp.Expression) -> exp.Expression:
    def fix(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.PercentileCont) and node.expression is not None:
            return exp.Anonymous(this="PERCENTILE", expressions=[node.this, node.expression])
        if isinstance(node, exp.DateTrunc) and node.unit is not None and node.unit.name.upper() not in _SPARK_TRUNC_UNITS:
            # sqlglot prints a date's truncation as TRUNC(x, 'DAY'), which Spark answers with NULL
            return exp.TimestampTrunc(this=node.this, unit=exp.var(node.unit.name.upper()))
        return node

    return tree.transform(fix)


def _bigquery(tree: exp.Expression) -> exp.Expression:
    tree = _group_by_aliases(tree)
    for node in tree.find_all(exp.PercentileCont, exp.Median):
        alias = node.parent.alias_or_name if isinstance(node.parent, exp.Alias) else node.sql()
        raise QueryError(Problem(
            f"BigQuery has no exact median or percentile aggregate, so {alias} cannot be compiled for it",
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
      in FROM gets a name; ``ASOF JOIN`` becomes a ``LATERAL`` subquery (:func:`_lateral_asof`),
      or, over a CTE (no index to probe), a join on the key kept to the span of the row in
      force (:func:`_span_asof`). ``last_value(x IGNORE NULLS) OVER w`` (PostgreSQL has no
      IGNORE NULLS; sqlglot drops it with a warning) becomes the last of
      ``array_agg(x) FILTER (WHERE x IS NOT NULL) OVER w`` (:func:`_pg_ignore_nulls`);
      DuckDB's ``range(a, b, INTERVAL …)`` (end excluded) a ``generate_series`` ending a
      microsecond before ``b`` (sqlglot writes ``b - 1``, which a timestamp refuses).

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
        if (isinstance(node, exp.Window) and isinstance(node.this, exp.IgnoreNulls)
                and isinstance(node.this.this, (exp.FirstValue, exp.LastValue))):
            return _pg_ignore_nulls(node)
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

    tree = tree.transform(_pg_series).transform(fix)  # two passes: a node replaced is not visited inside
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    for join in list(tree.find_all(exp.Join)):
        if (join.args.get("method") or "").upper() == "ASOF":
            over_cte = isinstance(join.this, exp.Table) and not join.this.args.get("db") and join.this.name in ctes
            # a base table has an index to probe once per row (deal_history); a CTE has none, and
            # a LATERAL probe would scan it whole for every row
            join.replace(_span_asof(join, "PostgreSQL") if over_cte else _lateral_asof(join))
    return tree


def _pg_series(node: exp.Expression) -> exp.Expression:
    """DuckDB's ``range(a, b, INTERVAL …)`` (``b`` excluded) as ``generate_series(a, b - 1 µs, …)``.

    >>> from sqlglot import parse_one
    >>> derived_for(parse_one("SELECT unnest(range(a, b, INTERVAL 7 DAY)) AS m", read="duckdb"), "postgres")
    "SELECT GENERATE_SERIES(a, b - INTERVAL '1 MICROSECOND', INTERVAL '7 DAY') AS m"
    """
    if isinstance(node, exp.GenerateSeries) and node.args.get("is_end_exclusive") and isinstance(
            node.args.get("step"), exp.Interval):
        node.set("end", exp.Sub(this=node.args["end"], expression=exp.Interval(
            this=exp.Literal.string("1"), unit=exp.var("MICROSECOND"))))
        node.set("is_end_exclusive", None)
    return node


def _pg_ignore_nulls(window: exp.Window) -> exp.Expression:
    """``first_value``/``last_value(x IGNORE NULLS) OVER w`` for PostgreSQL: the first, or the
    ``count(x) OVER w``-th, element of ``array_agg(x) FILTER (WHERE x IS NOT NULL) OVER w`` — the
    non-NULL values of the frame in order (NULL when there is none, as DuckDB gives).

    >>> from sqlglot import parse_one
    >>> derived_for(parse_one("SELECT last_value(x IGNORE NULLS) OVER w AS y FROM t "
    ...                       "WINDOW w AS (PARTITION BY k ORDER BY r)", read="duckdb"), "postgres")
    'SELECT (ARRAY_AGG(x) FILTER(WHERE NOT x IS NULL) OVER w)[COUNT(x) OVER w] AS y FROM t WINDOW w AS (PARTITION BY k ORDER BY r)'
    """
    func = window.this.this
    value = func.this
    agg = window.copy()
    agg.set("this", exp.Filter(this=exp.ArrayAgg(this=value.copy()), expression=exp.Where(this=_not_null(value))))
    if isinstance(func, exp.FirstValue):
        at: exp.Expression = exp.Literal.number(1)
    else:
        at = window.copy()
        at.set("this", exp.Count(this=value.copy()))
    return exp.Bracket(this=exp.paren(agg), expressions=[at], offset=1)  # PostgreSQL's index: from 1, as written


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
    lateral = exp.Lateral(this=exp.Subquery(this=inner), alias=exp.TableAlias(this=exp.to_identifier(alias)))
    if (join.args.get("side") or "").upper() == "LEFT":  # ASOF LEFT JOIN: a row without a match is kept
        return exp.Join(this=lateral, side="LEFT", on=exp.true())
    return exp.Join(this=lateral, kind="CROSS")


def _spark_derived(tree: exp.Expression) -> exp.Expression:
    """DuckDB's functions in Spark's terms (see :func:`derived_for`)."""

    def fix(node: exp.Expression) -> exp.Expression:
        cond, target = None, node
        if isinstance(node, exp.Filter) and isinstance(node.this, (exp.ArgMin, exp.ArgMax, exp.IgnoreNulls, exp.AnyValue)):
            cond, target = node.expression.this, node.this
        if isinstance(target, exp.IgnoreNulls) and isinstance(target.this, exp.AnyValue):
            target = target.this
        if isinstance(target, exp.AnyValue):
            # DuckDB's any_value skips NULLs; Spark's does so only when told (its second argument)
            picked = exp.Anonymous(this="ANY_VALUE", expressions=[target.this.copy(), exp.true()])
            return exp.Filter(this=picked, expression=exp.Where(this=cond.copy())) if cond is not None else picked
        if isinstance(target, (exp.ArgMin, exp.ArgMax)):
            # DuckDB's arg_min/arg_max skip rows where the value or the key is NULL; Spark's
            # min_by/max_by only those where the key is
            keep = ([exp.paren(cond.copy())] if cond is not None else []) + [
                _not_null(target.this), _not_null(target.expression)]
            return exp.Filter(this=target.copy(), expression=exp.Where(this=exp.and_(*keep)))
        if isinstance(node, exp.Cast) and isinstance(node.this, (exp.Explode, exp.Unnest)):
            # Spark refuses a generator inside an expression: cast the array, then explode it
            arr = node.this.this if isinstance(node.this, exp.Explode) else node.this.expressions[0]
            to = exp.DataType(this=exp.DataType.Type.ARRAY, expressions=[node.to.copy()], nested=True)
            return exp.Explode(this=exp.Cast(this=arr.copy(), to=to))
        if isinstance(node, exp.TimeToUnix):
            # DuckDB's epoch() keeps the fraction of a second; Spark's unix_timestamp() does not
            micros = exp.Anonymous(this="UNIX_MICROS", expressions=[
                exp.Cast(this=node.this.copy(), to=exp.DataType.build("TIMESTAMP_LTZ", dialect="spark"))])
            return exp.Div(this=exp.Cast(this=micros, to=exp.DataType.build("DOUBLE")), expression=exp.Literal.number(1_000_000))
        if isinstance(node, exp.Div) and not (isinstance(node.this, exp.Cast) and node.this.to.is_type("double")):
            # DuckDB's / is always a DOUBLE division; Spark divides decimals as decimals (rounded
            # to 6 places), so a decimal operand would give another number
            node.set("this", exp.Cast(this=node.this, to=exp.DataType.build("DOUBLE")))
            return node
        return node

    def series(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.GenerateSeries) and not (node.args["start"].is_number and node.args["end"].is_number):
            # DuckDB's generate_series is empty when it would run backwards; Spark's sequence fails
            # ("Illegal sequence boundaries"): run it to the greater bound, keep what is within
            start, end = node.args["start"], node.args["end"]
            step = [node.args["step"].copy()] if node.args.get("step") is not None else []
            seq = exp.Anonymous(this="SEQUENCE", expressions=[
                start.copy(), exp.Greatest(this=start.copy(), expressions=[end.copy()]), *step])
            within = exp.Lambda(this=exp.LTE(this=exp.to_identifier("x_"), expression=end.copy()),
                                expressions=[exp.to_identifier("x_")])
            return exp.Anonymous(this="FILTER", expressions=[seq, within])
        return node

    tree = tree.transform(series).transform(fix)  # two passes: a node replaced is not visited inside
    for cte in tree.find_all(exp.CTE):
        cte.set("materialized", None)  # Spark has no [NOT] MATERIALIZED hint: its optimizer decides
    for select in list(tree.find_all(exp.Select)):
        _one_generator(select)
    for join in list(tree.find_all(exp.Join)):
        if (join.args.get("method") or "").upper() == "ASOF":
            join.replace(_span_asof(join, "Spark"))
    return tree


def _one_generator(select: exp.Select) -> None:
    """Spark allows one generator per SELECT; DuckDB pairs several ``unnest`` row by row. So
    ``unnest(a) AS x, unnest(b) AS y`` becomes ``INLINE(ARRAYS_ZIP(a, b)) AS (x, y)`` (the
    shorter array padded with NULL, as DuckDB does), in the first one's place.

    >>> from sqlglot import parse_one
    >>> derived_for(parse_one("SELECT k, unnest([1, 2]) AS i, unnest(q) AS v FROM t", read="duckdb"), "spark")
    'SELECT k, INLINE(ARRAYS_ZIP(COALESCE(ARRAY(1, 2), ARRAY()), COALESCE(q, ARRAY()))) AS (i, v) FROM t'
    """
    gens = [e for e in select.expressions if isinstance(e, exp.Alias) and isinstance(e.this, (exp.Explode, exp.Unnest))]
    if len(gens) < 2:
        return
    arrays = [g.this.this if isinstance(g.this, exp.Explode) else g.this.expressions[0] for g in gens]
    # a NULL array unnests to nothing in DuckDB but NULLs ARRAYS_ZIP whole: an empty one instead
    lists = [exp.Coalesce(this=a.copy(), expressions=[exp.Array(expressions=[])]) for a in arrays]
    zipped = exp.Anonymous(this="INLINE", expressions=[exp.Anonymous(this="ARRAYS_ZIP", expressions=lists)])
    merged = exp.Aliases(this=zipped, expressions=[exp.to_identifier(g.alias) for g in gens])
    out = []
    for e in select.expressions:
        if e is gens[0]:
            out.append(merged)
        elif not any(e is g for g in gens):
            out.append(e)
    select.set("expressions", out)


def _span_asof(join: exp.Join, engine: str) -> exp.Join:
    """``ASOF [LEFT] JOIN t AS h ON k = h.k AND x > h.at`` (DuckDB) for an engine without an ASOF
    join (Spark; PostgreSQL over a CTE): each row of ``t`` gets the time of the key's next row
    (``LEAD``), and the join keeps the one row whose span holds ``x`` — ``h.at < x <= next`` —
    an equi-join on the key, then a range test. Rows of one key at the same time: the last in
    the window's order wins (``next`` of the others is their own time: no span)."""
    table = join.this
    alias = table.alias_or_name
    on = join.args["on"]
    keys, bound = [], None
    for cond in on.flatten() if isinstance(on, exp.And) else [on]:
        if isinstance(cond, exp.EQ):
            for side in (cond.this, cond.expression):
                if isinstance(side, exp.Column) and side.table == alias:
                    keys.append(exp.column(side.name))
        elif isinstance(cond, (exp.GT, exp.GTE, exp.LT, exp.LTE)):
            left, right = cond.this, cond.expression
            if isinstance(right, exp.Column) and right.table == alias and isinstance(cond, (exp.GT, exp.GTE)):
                bound = (left, right, isinstance(cond, exp.GTE))  # x > h.at
            elif isinstance(left, exp.Column) and left.table == alias and isinstance(cond, (exp.LT, exp.LTE)):
                bound = (right, left, isinstance(cond, exp.LTE))  # h.at < x
    if bound is None or not keys:
        raise QueryError(Problem(f"cannot rewrite ASOF JOIN {alias} for {engine}: no key or no 'x > {alias}.time' bound",
                                 hint="write the ON condition as key = alias.key AND value > alias.time"))
    x, at, inclusive = bound
    nxt = exp.column("_asof_next", table=alias)
    window = exp.Window(this=exp.Anonymous(this="LEAD", expressions=[exp.column(at.name)]),
                        partition_by=keys, order=exp.Order(expressions=[exp.Ordered(this=exp.column(at.name))]))
    inner = exp.select("*", exp.alias_(window, "_asof_next")).from_(exp.Table(this=table.this.copy(), db=table.args.get("db")))
    upto = (exp.LT if inclusive else exp.LTE)(this=x.copy(), expression=nxt)
    within = exp.and_(on.copy(), exp.paren(exp.or_(exp.Is(this=nxt.copy(), expression=exp.Null()), upto)))
    return exp.Join(this=exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier(alias))), on=within,
                    kind=join.args.get("kind"), side=join.args.get("side"))


_DERIVED_RULES = {"postgres": _postgres_derived, "spark": _spark_derived}


def _group_by_aliases(tree: exp.Expression) -> exp.Expression:
    """A SELECT that groups and orders names its grouped expressions by their aliases
    (``GROUP BY team, period``): BigQuery refuses an ORDER BY alias of a grouped expression, and
    sqlglot's BigQuery printer makes this change itself — made here on the tree, the printed SQL
    is the tree (compiler/verify.py compares them).

    >>> from sqlglot import parse_one
    >>> _group_by_aliases(parse_one("SELECT r.team AS team, SUM(x) AS s FROM r GROUP BY r.team ORDER BY team")).sql()
    'SELECT r.team AS team, SUM(x) AS s FROM r GROUP BY team ORDER BY team'
    """
    for select in tree.find_all(exp.Select):
        group, order = select.args.get("group"), select.args.get("order")
        if not (group and order):
            continue
        aliases = {e.this: e.alias for e in select.expressions if isinstance(e, exp.Alias)}
        for grouped in list(group.expressions):
            alias = aliases.get(grouped)
            if alias and not grouped.is_int:
                grouped.replace(exp.column(alias))
    return tree
