"""The one allow-list every user and YAML expression passes: node types, functions, CAST types.

A deny-list fails open: a construct nobody thought of (a quoted type name that DuckDB
knows and sqlglot does not, a new table function) goes through.  So every tree is walked
and each node must be of a type named here, each function one we list, and each CAST
target one of :data:`CAST_TYPES`; anything else is refused with a message that says what
*is* accepted.  The :class:`Policy` objects below are the contexts an expression can
appear in; each one is the smallest set that the semantic library and the compiler need.

>>> import sqlglot
>>> check(sqlglot.parse_one("amount * 2 > 10", read="duckdb"), FILTER)
>>> check(sqlglot.parse_one('CAST(1 AS "oid) > 0 OR (TRUE") = TRUE', read="duckdb"), FILTER)
Traceback (most recent call last):
...
pipelinebi.errors.ExpressionError: CAST to type 'oid) > 0 OR (TRUE' is not allowed in a filter (accepted types: BIGINT, BOOLEAN, DATE, DECIMAL, DOUBLE, FLOAT, INTEGER, INTERVAL, SMALLINT, TEXT, TIMESTAMP, TIMESTAMPTZ, TINYINT, VARCHAR)
>>> check(sqlglot.parse_one("random() > 0.5", read="duckdb"), EXPRESSION)
Traceback (most recent call last):
...
pipelinebi.errors.ExpressionError: function rand is not allowed in an expression (accepted: abs, add_months, any_value, arg_max, arg_min, bool_and, bool_or, ceil, coalesce, concat, contains, count_if, countif, date_add, date_diff, … (56 more))
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from sqlglot import exp

from ..errors import ExpressionError, Problem, accepted


def _classes(names: str) -> frozenset[type[exp.Expression]]:
    """sqlglot node classes by name; names a given sqlglot lacks are skipped (their nodes can
    then never be produced, so nothing is opened by skipping them)."""
    return frozenset(getattr(exp, n) for n in names.split() if hasattr(exp, n))


# ------------------------------------------------------------------ building blocks
#: Leaves and operators of a scalar expression.
SCALAR_NODES = _classes("""
    Column Identifier Literal Null Boolean Paren Neg Not And Or Xor
    EQ NEQ GT GTE LT LTE NullSafeEQ NullSafeNEQ Is In Between Like ILike
    Add Sub Mul Div IntDiv Mod Tuple Case If Cast TryCast DataType DataTypeParam Interval Var
""")
#: Pure scalar functions: same input, same output; no I/O, no randomness, no clock.
SCALAR_FUNCTIONS = _classes("""
    Abs Round Floor Ceil Sign Ln Log Exp Sqrt Pow Greatest Least Nullif Coalesce
    Lower Upper Trim Length Concat DPipe Substring Left Right StartsWith EndsWith RegexpLike Contains
    StrPosition DateTrunc TimestampTrunc DateDiff DateAdd DateSub Extract Year Month Quarter Week Day
    DayOfWeek TimeToUnix LastDay DateFromParts TsOrDsToDate AddMonths TimeToStr
""")
#: Aggregates (measures' ``expr`` never needs them: ``agg:`` says how to aggregate).
AGGREGATE_FUNCTIONS = _classes("""
    Sum Avg Count Min Max Median Quantile PercentileCont PercentileDisc CountIf LogicalOr LogicalAnd
    ArgMax ArgMin AnyValue Stddev StddevPop StddevSamp Variance VariancePop Distinct WithinGroup
""")
#: Window functions and their clauses (model/derived SQL and compiled queries).
WINDOW_NODES = _classes("""
    RowNumber Rank DenseRank Lag Lead FirstValue LastValue Window WindowSpec IgnoreNulls RespectNulls Filter
    Ordered Order
""")
#: The relational skeleton of one SELECT (model/derived SQL and compiled queries).
SELECT_NODES = _classes("""
    Select From Join Where Group Having Order Ordered Limit Offset Alias TableAlias Table CTE With
    Union Subquery Star Distinct
""")
#: Row generators a derived table may use to expand rows (snapshots per week, list columns).
#: Never in expressions, filters or model SQL: ``unnest`` there would multiply every deal.
ROW_GENERATORS = _classes("GenerateSeries Explode Unnest Values Array")

#: Bit operations on integers, for derived tables only: ``stage_intervals`` keeps the set of a
#: deal's later funnel positions as the bits of one BIGINT (``bit_or``) instead of a sort of its own.
BITWISE = _classes("BitwiseAnd BitwiseOr BitwiseLeftShift BitwiseRightShift BitwiseOrAgg")

#: Functions sqlglot does not model (``exp.Anonymous``): accepted only by these names.
ANONYMOUS_FUNCTIONS = frozenset({
    "greatest", "least", "nullif", "coalesce", "ifnull", "round", "floor", "ceil", "abs",
    "sign", "ln", "log10", "log2", "exp", "sqrt", "power", "pow", "mod", "trunc",
    "lower", "upper", "trim", "length", "concat", "replace", "left", "right", "substring",
    "date_part", "datepart", "date_diff", "datediff", "date_trunc", "date_add", "year", "month",
    "quarter", "week", "day", "dayofweek", "epoch", "make_date", "last_day", "strftime",
    "regexp_matches", "starts_with", "ends_with", "contains", "bool_or", "bool_and",
    "quantile_cont", "quantile_disc", "median", "mode", "arg_max", "arg_min", "any_value",
    "count_if", "countif",
})

#: The only types a CAST may name.  A user-defined type name is printed unquoted by
#: sqlglot, so ``CAST(x AS "oid) OR (TRUE")`` would reach the engine as SQL text.
CAST_TYPES = frozenset(
    getattr(exp.DataType.Type, n) for n in (
        "BOOLEAN TINYINT SMALLINT INT BIGINT HUGEINT FLOAT DOUBLE DECIMAL VARCHAR TEXT CHAR "
        "DATE TIMESTAMP TIMESTAMPNTZ TIMESTAMPTZ INTERVAL").split()
    if hasattr(exp.DataType.Type, n)
)
#: Bare words (sqlglot ``Var``) are printed as they are: only date parts are accepted.
DATE_PARTS = frozenset(
    "YEAR QUARTER MONTH WEEK DAY DAYOFWEEK DOW DAYOFYEAR DOY HOUR MINUTE SECOND EPOCH "
    "YEARS QUARTERS MONTHS WEEKS DAYS HOURS MINUTES SECONDS ISODOW ISOYEAR".split()
)
_TYPE_NAMES = {exp.DataType.Type.INT: "INTEGER", exp.DataType.Type.TIMESTAMPNTZ: "TIMESTAMP"}

#: Limits that keep parsing and checking bounded (deep trees exhaust Python's stack).
MAX_DEPTH = 64
_PLAIN_WORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Policy:
    """Where an expression appears, and what is accepted there."""

    where: str  # "an expression", "a filter": used in messages
    nodes: frozenset[type[exp.Expression]]
    star_only_in_count: bool = True
    accepted: str = "comparisons, AND/OR/NOT, IN lists, BETWEEN, LIKE, IS NULL, arithmetic, CASE and CAST"
    functions: frozenset[type[exp.Expression]] = field(default_factory=frozenset)


def _policy(where: str, *groups: frozenset, star_only_in_count: bool = True, accepted: str | None = None) -> Policy:
    nodes = frozenset().union(*groups)
    kw = {"accepted": accepted} if accepted else {}
    return Policy(where, nodes, star_only_in_count, functions=nodes & (SCALAR_FUNCTIONS | AGGREGATE_FUNCTIONS
                                                                        | WINDOW_NODES | ROW_GENERATORS), **kw)


#: A row-level expression of a model (dimension ``sql``, measure ``expr`` and ``filter``).
EXPRESSION = _policy("an expression", SCALAR_NODES, SCALAR_FUNCTIONS)
#: A condition typed by a user (CLI ``-f``, Explore's filter box, dashboard ``filters:``).
FILTER = _policy("a filter", SCALAR_NODES, SCALAR_FUNCTIONS)
#: A derived metric's formula: arithmetic over metric names.
FORMULA = _policy("a derived metric", SCALAR_NODES, SCALAR_FUNCTIONS,
                  accepted="arithmetic over metric names, e.g. target - forecast")
#: A model's ``sql:``: one SELECT over canonical and derived tables.
MODEL_SQL = _policy("a model's sql", SCALAR_NODES, SCALAR_FUNCTIONS, AGGREGATE_FUNCTIONS, WINDOW_NODES,
                    SELECT_NODES, star_only_in_count=False,
                    accepted="one SELECT (joins, CTEs, UNION, GROUP BY, windows) over canonical and derived tables")
#: A derived table (``semantic/derived/*.sql``), built once at ingest: may expand rows.
DERIVED_SQL = _policy("a derived table", MODEL_SQL.nodes, ROW_GENERATORS, BITWISE, star_only_in_count=False,
                      accepted=MODEL_SQL.accepted + ", plus generate_series/unnest to expand rows and bit "
                                                    "operations (&, |, <<, >>, bit_or)")
#: What the compiler itself emits (checked again after printing, see compiler/verify.py).
COMPILED = _policy("a compiled query", MODEL_SQL.nodes, star_only_in_count=False,
                   accepted="the compiler's own SELECT shapes")


def type_name(dt: exp.DataType) -> str:
    """The name of a CAST target as a person wrote it.

    >>> import sqlglot
    >>> type_name(sqlglot.parse_one("CAST(x AS oid)", read="duckdb").to)
    'oid'
    """
    if dt.this == exp.DataType.Type.USERDEFINED:
        return str(dt.args.get("kind") or "?")
    return _TYPE_NAMES.get(dt.this, dt.this.name)


def function_name(node: exp.Func) -> str:
    """A function node's SQL name in lower case (``exp.Anonymous`` by its written name)."""
    if isinstance(node, exp.Anonymous):
        return str(node.this).lower()
    return node.sql_name().lower()




def _refuse(message: str, hint: str | None, error: type[Exception]) -> None:
    raise error(Problem(message, hint=hint))


def _depth_ok(root: exp.Expression) -> bool:
    """True when no path from ``root`` is deeper than :data:`MAX_DEPTH` (iterative: no recursion)."""
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return False
        stack.extend((child, depth + 1) for child in node.iter_expressions())
    return True


def check(root: exp.Expression, policy: Policy, error: type[Exception] = ExpressionError) -> None:
    """Refuse ``root`` unless every node, function and CAST type in it is on ``policy``'s list.

    Column names are not judged here (the caller knows which exist); everything else is.
    """
    if not _depth_ok(root):
        _refuse(f"{policy.where} is nested more than {MAX_DEPTH} levels deep", "simplify it", error)
    for node in root.walk():
        if isinstance(node, exp.Anonymous):
            name = function_name(node)
            if name not in ANONYMOUS_FUNCTIONS:
                _refuse(f"function {name} is not allowed in {policy.where}", _function_hint(name, policy), error)
            continue
        kind = type(node)
        if kind not in policy.nodes:
            if isinstance(node, exp.AggFunc) and kind in AGGREGATE_FUNCTIONS:
                _refuse(f"aggregate {function_name(node)}() is not allowed here in {policy.where}",
                        "measures aggregate with 'agg:'; write the row-level expression", error)
            if isinstance(node, exp.Func) and type(node).__name__ in _DESCRIPTIONS:
                _refuse(f"{_describe(node)} is not allowed in {policy.where}", f"accepted: {policy.accepted}", error)
            if isinstance(node, exp.Func):
                _refuse(f"function {function_name(node)} is not allowed in {policy.where}",
                        _function_hint(function_name(node), policy), error)
            _refuse(f"{_describe(node)} is not allowed in {policy.where}", f"accepted: {policy.accepted}", error)
        if isinstance(node, exp.Star) and policy.star_only_in_count and not isinstance(node.parent, exp.Count):
            _refuse(f"'*' is not allowed in {policy.where}", "name the columns", error)
        if isinstance(node, exp.DataType) and node.this not in CAST_TYPES:
            _refuse(f"CAST to type '{type_name(node)}' is not allowed in {policy.where}",
                    "accepted types: " + ", ".join(sorted({_TYPE_NAMES.get(t, t.name) for t in CAST_TYPES
                                                           if t != exp.DataType.Type.CHAR})), error)
        if isinstance(node, exp.DataTypeParam) and not isinstance(node.this, exp.Literal):
            _refuse(f"type parameter '{node.sql()}' is not allowed in {policy.where}", "use numbers, e.g. DECIMAL(18, 2)", error)
        if isinstance(node, exp.Var) and str(node.this).upper() not in DATE_PARTS:
            _refuse(f"bare word '{node.this}' is not allowed in {policy.where}",
                    "quote text as 'text'; bare words are date parts only (day, month, quarter, year, …)", error)
        if isinstance(node, exp.Identifier) and not node.quoted and not _PLAIN_WORD.match(str(node.this)):
            _refuse(f"identifier '{node.this}' is not allowed in {policy.where}", "use plain names", error)


def accepted_functions(policy: Policy) -> list[str]:
    """Every function name ``policy`` accepts (sorted).

    >>> "read_csv" in accepted_functions(MODEL_SQL), "coalesce" in accepted_functions(EXPRESSION)
    (False, True)
    """
    typed = {c.sql_name().lower() for c in policy.functions if issubclass(c, exp.Func)}
    return sorted(typed | ANONYMOUS_FUNCTIONS)


def _function_hint(name: str, policy: Policy) -> str:
    names = accepted_functions(policy)
    # A strict cutoff: 'random' -> 'round' would be a misleading suggestion.
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.8)
    return f"did you mean '{close[0]}'?" if close else accepted(names, limit=15)


_DESCRIPTIONS = {
    "Select": "a subquery", "Subquery": "a subquery", "Union": "a subquery", "Table": "a table reference",
    "With": "a CTE", "Placeholder": "a parameter placeholder", "Parameter": "a parameter",
    "Bracket": "indexing with [ ]", "Dot": "field access with '.'", "Lambda": "a lambda",
    "Array": "a list literal", "Struct": "a struct literal", "Explode": "unnest()", "Unnest": "unnest()",
    "GenerateSeries": "generate_series()/range()",
}


def _describe(node: exp.Expression) -> str:
    name = type(node).__name__
    if name in _DESCRIPTIONS:
        return _DESCRIPTIONS[name]
    if isinstance(node, (exp.DDL, exp.DML, exp.Command)) or name in ("Install", "Set", "Pragma", "Copy", "Attach"):
        return f"a {name.upper()} statement"
    return f"{name.upper()}"
