"""Every dimension of the semantic layer with its model, type and a few values from the data.

What ``pipelinebi dimensions`` prints, so an analyst finds that the rep dimension is
``rep`` (and that ``rep_id`` holds ids) without reading YAML.  Categorical dimensions show
their most frequent values, time and number dimensions their range.  One query per
dimension, built as a sqlglot tree from the dimension's checked expression (no text from
the data or the user is formatted into SQL), run on a read-only connection.

>>> import duckdb
>>> from pipelinebi.settings import PROJECT_ROOT
>>> from pipelinebi.semantic import load_semantic_layer
>>> layer = load_semantic_layer(PROJECT_ROOT / "semantic")
>>> con = duckdb.connect()
>>> _ = con.execute("CREATE TABLE reps AS SELECT * FROM (VALUES ('r1', 'Ann Lee', 'East', 'NA', NULL, true, NULL),"
...                 " ('r2', 'Bo Chen', 'East', 'NA', NULL, true, NULL)) v(rep_id, name, team, region, manager, active, hired_at)")
>>> rows = dimension_examples(layer, con, examples=2, models=["reps"])
>>> [(r.name, r.examples, r.distinct) for r in rows][:3]
[('rep', ('Ann Lee', 'Bo Chen'), 2), ('rep_id', ('r1', 'r2'), 2), ('team', ('East',), 1)]
>>> print(render_dimensions(rows[:2]))
dimension  model  type         values (distinct)  examples
rep        reps   categorical                  2  Ann Lee, Bo Chen
rep_id     reps   categorical                  2  r1, r2
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from typing import Iterable

import duckdb
from sqlglot import exp

#: Longest example shown in the table (values are cut, never the list).
MAX_EXAMPLE = 40


@dataclass(frozen=True)
class DimensionInfo:
    name: str
    model: str
    type: str
    label: str | None
    description: str | None
    examples: tuple[str, ...]  # most frequent values; for time/number: (min, max)
    distinct: int | None  # distinct non-blank values; None when the table is missing
    note: str = ""  # "no values", "table missing"


def _source(model) -> exp.Expression:
    """The model's FROM item, aliased by its name (dimension expressions are unqualified)."""
    if model.source is not None:
        return exp.Subquery(this=model.source.copy(), alias=exp.TableAlias(this=exp.to_identifier(model.name)))
    return exp.alias_(exp.to_table(model.definition.table), model.name, table=True)


def _from(select: exp.Select, model, dimension, registry) -> exp.Select:
    """``select`` FROM the model, LEFT JOINed (:func:`~pipelinebi.compiler.aggregate.from_with_joins`,
    as the compiler joins) to each model the dimension's expression names
    (``leads.owner_region`` is ``reps.region``): one row per row of the model."""
    others = {c.table for c in dimension.expr.find_all(exp.Column) if c.table and c.table != model.name}
    if not others or registry is None:
        return select.from_(_source(model))
    from .compiler.aggregate import from_with_joins

    return from_with_joins(registry, model.name, others).select(*select.expressions, copy=False)


def examples_query(model, dimension, examples: int, registry=None) -> exp.Select:
    """SELECT of a dimension's example values, frequency first (or its range), and its distinct count.

    >>> from types import SimpleNamespace as NS
    >>> from sqlglot import parse_one
    >>> m = NS(name="reps", source=None, definition=NS(table="reps"))
    >>> d = NS(expr=parse_one("name"), definition=NS(type="categorical"))
    >>> print(examples_query(m, d, 3).sql("duckdb"))
    SELECT v, n, COUNT(*) OVER () AS distinct_values FROM (SELECT CAST(name AS TEXT) AS v, COUNT(*) AS n FROM reps AS reps WHERE NOT name IS NULL GROUP BY CAST(name AS TEXT)) AS x ORDER BY n DESC, v NULLS FIRST LIMIT 3
    """
    value = dimension.expr.copy()
    present = exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null()))
    if dimension.definition.type in ("time", "number"):
        # a range says more than the most frequent dates or amounts
        return (_from(exp.select(exp.cast(exp.Min(this=value), "VARCHAR").as_("lo"),
                           exp.cast(exp.Max(this=value.copy()), "VARCHAR").as_("hi"),
                           exp.Count(this=exp.Distinct(expressions=[value.copy()])).as_("distinct_values")),
                      model, dimension, registry).where(present))
    text = exp.cast(value, "VARCHAR")
    inner = (_from(exp.select(text.as_("v"), exp.Count(this=exp.Star()).as_("n")), model, dimension, registry)
             .where(present).group_by(text.copy()))
    return (exp.select("v", "n", exp.Window(this=exp.Count(this=exp.Star())).as_("distinct_values"))
            .from_(inner.subquery("x")).order_by(exp.Ordered(this=exp.column("n"), desc=True), "v")
            .limit(exp.Literal.number(int(examples))))


def dimension_examples(layer, con: duckdb.DuckDBPyConnection, examples: int = 3,
                       models: Iterable[str] | None = None) -> list[DimensionInfo]:
    """Every dimension (of ``models``, default all) in model order, with example values."""
    out = []
    for model in layer.registry.models.values():
        if models is not None and model.name not in models:
            continue
        for dim in model.dimensions.values():
            d = dim.definition
            sql = examples_query(model, dim, examples, layer.registry).sql("duckdb")
            try:
                rows = con.execute(sql).fetchall()
            except duckdb.CatalogException:
                out.append(DimensionInfo(d.name, model.name, d.type, d.label, d.description, (), None,
                                         "table missing: ingest again"))
                continue
            if d.type in ("time", "number"):
                lo, hi, distinct = rows[0]
                values = () if lo is None else ((lo,) if lo == hi else (lo, hi))
            else:
                values, distinct = tuple(r[0] for r in rows), (rows[0][2] if rows else 0)
            out.append(DimensionInfo(d.name, model.name, d.type, d.label, d.description,
                                     tuple(_cut(v) for v in values), distinct, "" if values else "no values"))
    return out


def _cut(value: str) -> str:
    return value if len(value) <= MAX_EXAMPLE else value[:MAX_EXAMPLE - 1] + "…"


def _shown(row: DimensionInfo) -> str:
    if row.note:
        return f"({row.note})"
    if row.type in ("time", "number"):
        return " … ".join(row.examples)
    more = ", …" if row.distinct and row.distinct > len(row.examples) else ""
    return ", ".join(row.examples) + more


def render_dimensions(rows: list[DimensionInfo], fmt: str = "table") -> str:
    """``table`` (aligned text), ``csv`` or ``json``."""
    if fmt == "json":
        return json.dumps([asdict(r) for r in rows], indent=2, default=str)
    header = ("dimension", "model", "type", "values (distinct)", "examples")
    body = [(r.name, r.model, r.type, "" if r.distinct is None else f"{r.distinct:,}", _shown(r)) for r in rows]
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        w.writerows(body)
        return buf.getvalue().rstrip("\n")
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body)]
    right = {3}  # counts line up on the right

    def line(cells) -> str:
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(header)] + [line(b) for b in body])
