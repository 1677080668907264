"""SQL expressions from YAML are parsed and checked, never trusted.

An analyst writes ``expr: amount * probability`` or ``filter: status = 'won'``; we parse it
with sqlglot and accept it only when every node, function and CAST type in it is on the
allow-list of :mod:`pipelinebi.semantic.allowlist`, and every column is known.

>>> e = check_expression("amount * 2", own_columns={"amount"})
>>> e.sql()
'amount * 2'
>>> check_expression("read_csv('/etc/passwd')", own_columns={"amount"})
Traceback (most recent call last):
...
pipelinebi.errors.ExpressionError: function read_csv is not allowed in an expression (accepted: abs, add_months, any_value, arg_max, arg_min, bool_and, bool_or, ceil, coalesce, concat, contains, count_if, countif, date_add, date_diff, … (56 more))
>>> check_expression("amout > 0", own_columns={"amount"})
Traceback (most recent call last):
...
pipelinebi.errors.ExpressionError: unknown column 'amout' (did you mean 'amount'?)
"""

from __future__ import annotations

from typing import Iterable, Mapping

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from ..errors import ExpressionError, Problem, unknown_name_hint
from . import allowlist
from .allowlist import DERIVED_SQL, EXPRESSION, FORMULA, MODEL_SQL, Policy

#: Longest text accepted for an expression or filter, and for a model's/derived table's SQL.
MAX_EXPRESSION_CHARS = 4_000
MAX_SQL_CHARS = 100_000

def _fail(message: str, hint: str | None = None, error: type[Exception] = ExpressionError) -> None:
    raise error(Problem(message, hint=hint))


def _paren_depth(text: str) -> int:
    """Deepest parenthesis nesting outside quotes (checked before parsing: sqlglot's parser
    recurses per level, so 10,000 '(' would end in RecursionError)."""
    depth = deepest = 0
    quote = None
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif ch == ")":
            depth -= 1
    return deepest


def parse_sql(text: object, what: str = "SQL expression", max_chars: int = MAX_EXPRESSION_CHARS,
              error: type[Exception] = ExpressionError) -> exp.Expression:
    """Parse exactly one DuckDB expression or statement; every failure is ``error`` with a message.

    >>> parse_sql("status = 'won;lost'").sql()
    "status = 'won;lost'"
    >>> parse_sql("1; SELECT 2")
    Traceback (most recent call last):
    ...
    pipelinebi.errors.ExpressionError: ';' is not allowed: write one SQL expression, not 2 statements
    >>> parse_sql("'unterminated")
    Traceback (most recent call last):
    ...
    pipelinebi.errors.ExpressionError: cannot parse the SQL expression: a quote or comment is not closed
    """
    if not isinstance(text, str) or not text.strip():
        _fail(f"empty {what}", "write a SQL expression, e.g. amount * probability", error)
    if len(text) > max_chars:
        _fail(f"{what} is {len(text):,} characters long; the limit is {max_chars:,}", None, error)
    if _paren_depth(text) > allowlist.MAX_DEPTH:
        _fail(f"{what} nests parentheses more than {allowlist.MAX_DEPTH} levels deep", "simplify it", error)
    problem = None
    try:
        nodes = [n for n in sqlglot.parse(text, read="duckdb") if n is not None]
    except RecursionError:
        problem = (f"{what} is nested too deeply to read", "simplify it")
    except SqlglotError as e:
        problem = (f"cannot parse the {what}: {_parse_detail(e)}", None)
    except Exception as e:  # noqa: BLE001 — the parser's own bugs on hostile text (a TypeError
        # from sqlglot on '->' was found by tests/security/test_fuzz.py) are a parse failure too
        problem = (f"cannot parse the {what} ({type(e).__name__})", None)
    if problem:  # raised outside the except block: no chained sqlglot traceback in the message
        _fail(*problem, error)
    if len(nodes) != 1:
        _fail(f"';' is not allowed: write one {what}, not {len(nodes)} statements" if nodes else f"empty {what}",
              None, error)
    return nodes[0]


def _parse_detail(e: SqlglotError) -> str:
    errors = getattr(e, "errors", None) or []
    if errors and errors[0].get("description"):
        return errors[0]["description"]
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    if text.startswith("Error tokenizing"):  # sqlglot's tokenizer: an unclosed quote or comment
        return "a quote or comment is not closed"
    return text


def parse_expression(sql: str) -> exp.Expression:
    """Parse one scalar SQL expression (DuckDB syntax)."""
    return parse_sql(sql)


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
    node = parse_sql(sql)
    allowlist.check(node, MEASURE_EXPRESSION if allow_aggregates else EXPRESSION)
    own = set(own_columns)
    joined = {k: set(v) for k, v in (joined_columns or {}).items()}
    for col in node.find_all(exp.Column):
        _check_column(col, own, joined)
    return node


#: Only for callers that aggregate inside an expression themselves.
MEASURE_EXPRESSION = allowlist._policy("an expression", EXPRESSION.nodes, allowlist.AGGREGATE_FUNCTIONS)


def _check_column(col: exp.Column, own: set[str], joined: dict[str, set[str]]) -> None:
    name, qualifier = col.name, col.table
    if col.args.get("db") or col.args.get("catalog"):
        _fail(f"'{col.sql()}': write model.column, not a longer path")
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
    """A derived metric's formula: arithmetic over metric names only, naming at least one.

    >>> check_metric_formula("target - forecast", ["target", "forecast"]).sql()
    'target - forecast'
    >>> check_metric_formula("1 + 1", ["target"])
    Traceback (most recent call last):
    ...
    pipelinebi.errors.ExpressionError: a derived metric must name at least one metric (e.g. target - forecast)
    """
    names = set(metric_names)
    node = parse_sql(sql)
    allowlist.check(node, FORMULA)
    columns = list(node.find_all(exp.Column))
    if not columns:
        _fail("a derived metric must name at least one metric", "e.g. target - forecast")
    for col in columns:
        if col.table:
            _fail(f"'{col.sql()}': reference metrics by plain name")
        if col.name not in names:
            _fail(f"unknown metric '{col.name}'", unknown_name_hint(col.name, names))
    return node


def check_select(sql: str | exp.Expression, allowed_tables: Iterable[str], policy: Policy = MODEL_SQL) -> exp.Select:
    """A model's ``sql:`` (or a derived table): one SELECT over known tables, on the allow-list.

    >>> check_select("SELECT deal_id FROM deals WHERE amount > 0", ["deals"]).sql()
    'SELECT deal_id FROM deals WHERE amount > 0'
    >>> check_select("SELECT * FROM read_csv('x.csv')", ["deals"])
    Traceback (most recent call last):
    ...
    pipelinebi.errors.ExpressionError: 'READ_CSV('x.csv')' is not allowed as a table (a model's sql may only read canonical and derived tables)
    """
    allowed = set(allowed_tables)
    # a tree already parsed (a derived file with its settings bound) is checked as it is
    node = sql if isinstance(sql, exp.Expression) else parse_sql(
        sql.strip().rstrip(";") if isinstance(sql, str) else sql, "SQL", MAX_SQL_CHARS)
    if not isinstance(node, (exp.Select, exp.Union)):
        _fail(f"{policy.where} must be a SELECT, got {type(node).__name__.upper()}")
    # Table-valued functions sit where a table would: name them as such before the generic check.
    for table in node.find_all(exp.Table):
        if not isinstance(table.this, (exp.Identifier, *(allowlist.ROW_GENERATORS & policy.nodes))):
            _fail(f"'{table.sql()}' is not allowed as a table", f"{policy.where} may only read canonical and derived tables")
    allowlist.check(node, policy)
    ctes = {c.alias_or_name for c in node.find_all(exp.CTE)}
    for table in node.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            continue
        if table.db or table.catalog:
            _fail(f"'{table.sql()}': schema-qualified tables are not allowed")
        if table.name not in allowed and table.name not in ctes:
            _fail(f"unknown table '{table.name}'", unknown_name_hint(table.name, allowed))
    return node


def check_derived_sql(sql: str | exp.Expression, allowed_tables: Iterable[str]) -> exp.Select:
    """A derived table's SELECT (``semantic/derived/*.sql``): like a model's SQL, and it may
    expand rows with ``generate_series``/``unnest``."""
    return check_select(sql, allowed_tables, DERIVED_SQL)
