"""Check the measures' declared ``positive_where`` facts against a database.

A measure that declares ``positive_where: <condition>`` promises that every row meeting the
condition has ``expr > 0`` and that no row has ``expr < 0`` or NULL; the compiler relies on it to
divide the measure away from a product of ratios (:mod:`pipelinebi.compiler.cancel`). This
module finds the rows that break such a promise, one counting query per declaration, so tests
(and anyone with a database) can see that it holds on real data.

>>> import duckdb
>>> from pipelinebi.semantic import load_semantic_layer
>>> from pipelinebi.settings import PROJECT_ROOT
>>> registry = load_semantic_layer(PROJECT_ROOT / "semantic").registry
>>> con = duckdb.connect()
>>> _ = con.execute("CREATE TABLE customer_facts AS SELECT * FROM (VALUES (1, 2.0, true), (2, 0.0, false)) "
...                 "v(won_deals, exposure_years, is_churned)")
>>> broken(registry, con)
{}
>>> _ = con.execute("INSERT INTO customer_facts VALUES (0, 0.0, true)")   # no win, churned with no exposure
>>> broken(registry, con)
{'customers.customer_won_deals': 1, 'customers.customer_years': 1}
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from .registry import Registry


def declared(registry: Registry) -> list[Any]:
    """Every measure with a ``positive_where`` declaration."""
    return [m for model in registry.models.values() for m in model.measures.values() if m.positive is not None]


def check_sql(registry: Registry, measure: Any) -> str:
    """The count of rows of ``measure``'s model that break its declaration."""
    from ..compiler.aggregate import from_with_joins
    from ..compiler.fields import qualify

    value = qualify(measure.expr, measure.model)
    where = qualify(measure.positive, measure.model)
    needed = {c.table for node in (value, where) for c in node.find_all(exp.Column) if c.table}
    bad = exp.or_(exp.Is(this=value.copy(), expression=exp.Null()),
                  exp.LT(this=value.copy(), expression=exp.Literal.number(0)),
                  exp.and_(exp.Paren(this=where), exp.Not(this=exp.GT(this=value.copy(), expression=exp.Literal.number(0)))))
    select = from_with_joins(registry, measure.model, needed - {measure.model})
    return select.select(exp.Count(this=exp.Star()), copy=False).where(bad, copy=False).sql("duckdb")


def problems(registry: Registry, con: Any) -> list[Any]:
    """:func:`broken` as problems that name the YAML file, line and key of each declaration the
    data breaks (ingest refuses such data: the compiler would rely on a promise it breaks).

    >>> import duckdb
    >>> from pipelinebi.semantic import load_semantic_layer
    >>> from pipelinebi.settings import PROJECT_ROOT
    >>> registry = load_semantic_layer(PROJECT_ROOT / "semantic").registry
    >>> con = duckdb.connect()
    >>> _ = con.execute("CREATE TABLE customer_facts AS SELECT * FROM (VALUES (0, 1.0, true)) v(won_deals, exposure_years, is_churned)")
    >>> [p.message for p in problems(registry, con)]  # doctest: +ELLIPSIS
    ["measure 'customer_won_deals' breaks its positive_where ('true'): 1 row of customer_facts has ..."]
    """
    out = []
    for name, n in broken(registry, con).items():
        model_name, measure_name = name.split(".", 1)
        model = registry.models[model_name]
        i = next(i for i, m in enumerate(model.definition.measures) if m.name == measure_name)
        m = model.measures[measure_name]
        rows = f"{n:,} row{'s' if n != 1 else ''} of {model.definition.table} {'has' if n == 1 else 'have'}"
        out.append(model.located.problem(
            f"measure '{measure_name}' breaks its positive_where ('{m.definition.positive_where}'): {rows} "
            f"a value ≤ 0 where it holds, or a negative or blank value",
            key=f"measures[{i}].positive_where", subloc=("measures", i, "positive_where"),
            hint="the compiler divides this measure away from products of ratios on that promise, so the "
                 "numbers would be wrong: fix the data or the derived SQL, or remove positive_where"))
    return out


def broken(registry: Registry, con: Any) -> dict[str, int]:
    """``{model.measure: rows breaking its declaration}`` for every declaration ``con``'s
    database breaks (the models whose table it holds); empty when every one holds."""
    out: dict[str, int] = {}
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    for m in declared(registry):
        table = registry.models[m.model].definition.table
        if table is None or table not in tables:
            continue
        n = con.execute(check_sql(registry, m)).fetchone()[0]
        if n:
            out[m.qualified] = n
    return out
