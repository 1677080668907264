"""SQL expressions from YAML are parsed and checked, never trusted.

An analyst writes ``expr: amount * probability`` or ``filter: status = 'won'``; we parse it
with sqlglot and refuse anything that is not a plain scalar expression over known
columns: statements (DDL/DML, SET, COPY, ATTACH …), subqueries, table references, table
functions and file/network readers (``read_csv``, ``glob`` …), unknown functions,
parameters and ``*``.

>>> e = check_expression("amount * 2", own_columns={"amount"})
>>> e.sql()
'amount * 2'
>>> check_expression("read_csv('/etc/passwd')", own_columns={"amount"})
Traceback (most recent call last):
...
pipelinebi.errors.ExpressionError: function read_csv is not allowed in an expression (allowed: scalar and aggregate SQL functions; no table functions, file or network access)
>>> check_expression("amout > 0", own_columns={"amount"})
Traceback (most recent call last):
...
pipelinebi.errors.ExpressionError: unknown column 'amout' (did you mean 'amount'?)
"""

from __future__ import annotations

from typing import Iterable, Mapping

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from ..errors import ExpressionError, Problem, unknown_name_hint

# Statement and relation nodes: never inside a column expression.
_FORBIDDEN_NODES: tuple[type[exp.Expression], ...] = tuple(
    getattr(exp, n)
    for n in (
        "DDL", "DML", "Create", "Drop", "Insert", "Update", "Delete", "Merge", "Alter", "Command",
        "Set", "Pragma", "Use", "Copy", "Attach", "Detach", "Transaction", "Commit", "Rollback",
        "Select", "Subquery", "Union", "Table", "Placeholder", "Parameter", "Lateral", "Unnest",
        "Describe", "Show", "Kill", "Grant", "Into", "With",
    )
    if hasattr(exp, n)
)
_FORBIDDEN_NAMES = {
    "Placeholder": "a parameter placeholder", "Parameter": "a parameter", "Select": "a subquery",
    "Subquery": "a subquery", "Union": "a subquery", "Table": "a table reference", "With": "a CTE",
}

# sqlglot knows most functions as typed nodes; functions it does not know come back as
# exp.Anonymous. We allow those only by name, so a new DuckDB table function or file
# reader can never slip through.
SAFE_ANONYMOUS_FUNCTIONS = frozenset(
    {
        "greatest", "least", "nullif", "coalesce", "ifnull", "round", "floor", "ceil", "abs",
        "sign", "ln", "log10", "log2", "exp", "sqrt", "power", "pow", "mod", "trunc",
        "lower", "upper", "trim", "length", "concat", "replace", "left", "right", "substring",
        "date_part", "datepart", "date_diff", "datediff", "date_trunc", "date_add", "year", "month",
        "quarter", "week", "day", "dayofweek", "epoch", "make_date", "last_day", "strftime",
        "regexp_matches", "starts_with", "ends_with", "contains", "bool_or", "bool_and",
        "quantile_cont", "quantile_disc", "median", "mode", "arg_max", "arg_min", "any_value",
        "count_if", "countif", "list_contains", "string_split",
    }
)
# Typed sqlglot function nodes that read files or the environment.
_IO_FUNCTION_PREFIXES = ("read", "glob", "getenv", "currentsetting", "load", "install", "query")


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.this).lower()
    return node.sql_name().lower()


def _fail(message: str, hint: str | None = None) -> None:
    raise ExpressionError(Problem(message, hint=hint))


def parse_expression(sql: str) -> exp.Expression:
    """Parse one scalar SQL expression (DuckDB syntax)."""
    if not isinstance(sql, str) or not sql.strip():
        _fail("empty expression", "write a SQL expression, e.g. amount * probability")
    if ";" in sql:
        _fail("';' is not allowed: an expression is a single SQL expression, not statements")
    try:
        node = sqlglot.parse_one(sql, read="duckdb")
    except ParseError as e:
        first = e.errors[0] if e.errors else {}
        detail = first.get("description") or str(e).splitlines()[0]
        _fail(f"cannot parse SQL expression {sql!r}: {detail}")
    if node is None:
        _fail(f"cannot parse SQL expression {sql!r}")
    return node


def check_expression(
    sql: str,
    own_columns: Iterable[str],
    joined_columns: Mapping[str, Iterable[str]] | None = None,
    allow_aggregates: bool = False,
) -> exp.Expression:
    """Parse ``sql`` and check it; return the expression tree.

    ``own_columns``: columns usable unqualified. ``joined_columns``: columns of other
    models reachable through a many_to_one join, usable as ``model.column``.
    """
    node = parse_expression(sql)
    own = set(own_columns)
    joined = {k: set(v) for k, v in (joined_columns or {}).items()}
    for sub in node.walk():
        if isinstance(sub, _FORBIDDEN_NODES):
            kind = type(sub).__name__
            what = _FORBIDDEN_NAMES.get(kind, f"a {kind.upper()} statement")
            _fail(f"{what} is not allowed in an expression", "only scalar expressions over the model's columns")
        if isinstance(sub, exp.Star) and not isinstance(sub.parent, exp.Count):
            _fail("'*' is not allowed here", "name the columns")
        if isinstance(sub, exp.Func):
            name = _function_name(sub)
            compact = name.replace("_", "")
            io = compact.startswith(_IO_FUNCTION_PREFIXES)
            if io or (isinstance(sub, exp.Anonymous) and name not in SAFE_ANONYMOUS_FUNCTIONS):
                _fail(
                    f"function {name} is not allowed in an expression",
                    "allowed: scalar and aggregate SQL functions; no table functions, file or network access",
                )
            if isinstance(sub, exp.AggFunc) and not allow_aggregates:
                _fail(f"aggregate {name}() is not allowed here", "measures aggregate with 'agg:'; write the row-level expression")
        if isinstance(sub, exp.Column):
            _check_column(sub, own, joined)
    return node


def _check_column(col: exp.Column, own: set[str], joined: dict[str, set[str]]) -> None:
    name, qualifier = col.name, col.table
    if qualifier:
        if qualifier not in joined:
            _fail(f"unknown model '{qualifier}' in '{col.sql()}'",
                  unknown_name_hint(qualifier, joined) if joined else "this model has no many_to_one joins")
        if name not in joined[qualifier]:
            _fail(f"unknown column '{name}' of model '{qualifier}'", unknown_name_hint(name, joined[qualifier]))
        return
    if name not in own:
        _fail(f"unknown column '{name}'", unknown_name_hint(name, own))


def referenced_models(node: exp.Expression) -> set[str]:
    """Qualifiers used in an expression (the joined models it needs).

    >>> sorted(referenced_models(parse_expression("amount * stages.probability")))
    ['stages']
    """
    return {c.table for c in node.find_all(exp.Column) if c.table}


def check_metric_formula(sql: str, metric_names: Iterable[str]) -> exp.Expression:
    """A derived metric's formula: arithmetic over metric names only.

    >>> check_metric_formula("target - forecast", ["target", "forecast"]).sql()
    'target - forecast'
    """
    names = set(metric_names)
    node = parse_expression(sql)
    for sub in node.walk():
        if isinstance(sub, _FORBIDDEN_NODES) or isinstance(sub, exp.Star):
            _fail("a derived metric is arithmetic over metric names", "e.g. target - forecast")
        if isinstance(sub, exp.AggFunc):
            _fail(f"aggregate {_function_name(sub)}() is not allowed in a derived metric", "reference metrics by name")
        if isinstance(sub, exp.Func):
            name = _function_name(sub)
            if name.replace("_", "").startswith(_IO_FUNCTION_PREFIXES) or (
                isinstance(sub, exp.Anonymous) and name not in SAFE_ANONYMOUS_FUNCTIONS
            ):
                _fail(f"function {name} is not allowed in a derived metric")
        if isinstance(sub, exp.Column):
            if sub.table:
                _fail(f"'{sub.sql()}': reference metrics by plain name")
            if sub.name not in names:
                _fail(f"unknown metric '{sub.name}'", unknown_name_hint(sub.name, names))
    return node


def check_select(sql: str, allowed_tables: Iterable[str]) -> exp.Select:
    """A model's ``sql:``: one SELECT over known tables, no table functions or statements.

    >>> check_select("SELECT deal_id FROM deals WHERE amount > 0", ["deals"]).sql()
    'SELECT deal_id FROM deals WHERE amount > 0'
    >>> check_select("SELECT * FROM read_csv('x.csv')", ["deals"])
    Traceback (most recent call last):
    ...
    pipelinebi.errors.ExpressionError: 'READ_CSV('x.csv')' is not allowed as a table (a model's SQL may only read canonical and derived tables)
    """
    allowed = set(allowed_tables)
    if ";" in sql.strip().rstrip(";"):
        _fail("';' is not allowed: a model's sql is one SELECT")
    try:
        node = sqlglot.parse_one(sql, read="duckdb")
    except ParseError as e:
        _fail(f"cannot parse SQL: {str(e).splitlines()[0]}")
    if not isinstance(node, (exp.Select, exp.Union)):
        _fail(f"a model's sql must be a SELECT, got {type(node).__name__.upper()}")
    ctes = {c.alias_or_name for c in node.find_all(exp.CTE)}
    for sub in node.walk():
        if isinstance(sub, (exp.DDL, exp.DML, exp.Command, exp.Set, exp.Pragma, exp.Copy)) or type(sub).__name__ in ("Attach", "Detach", "Use"):
            _fail(f"{type(sub).__name__.upper()} is not allowed in a model's sql")
        if isinstance(sub, (exp.Placeholder, exp.Parameter)):
            _fail("parameters are not allowed in a model's sql")
        if isinstance(sub, exp.Func):
            name = _function_name(sub)
            if name.replace("_", "").startswith(_IO_FUNCTION_PREFIXES) or (
                isinstance(sub, exp.Anonymous) and name not in SAFE_ANONYMOUS_FUNCTIONS
            ):
                _fail(f"function {name} is not allowed", "a model's SQL may only read canonical and derived tables")
        if isinstance(sub, exp.Table):
            if not isinstance(sub.this, exp.Identifier):
                _fail(f"'{sub.sql()}' is not allowed as a table", "a model's SQL may only read canonical and derived tables")
            if sub.db or sub.catalog:
                _fail(f"'{sub.sql()}': schema-qualified tables are not allowed")
            if sub.name not in allowed and sub.name not in ctes:
                _fail(f"unknown table '{sub.name}'", unknown_name_hint(sub.name, allowed))
    return node
