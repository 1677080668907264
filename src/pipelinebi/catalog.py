"""The metric catalog: every metric with its label, description, type, formula, format,
owner and definitional choices — as markdown (``pipelinebi catalog``) and as dicts (the
app's catalog page).

>>> from pipelinebi.settings import Settings
>>> from pipelinebi.semantic import load_semantic_layer
>>> layer = load_semantic_layer(Settings().semantic_dir)
>>> e = {x["name"]: x for x in catalog_entries(layer)}
>>> e["win_rate"]["type"], e["win_rate"]["formula"]
('ratio', 'won_deals ÷ closed_deals')
>>> e["closed_won_amount"]["formula"]
"sum(amount) over deals where status = 'won'"
>>> catalog_markdown(layer).splitlines()[0]
'# Metric catalog'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .semantic.definitions import (
    ConversionMetric, CumulativeMetric, DerivedMetric, PeriodOverPeriodMetric, RatioMetric, SimpleMetric,
)


def _measure_formula(layer, ref: str) -> str:
    m = layer.registry.measure(ref)
    d = m.definition
    if d.agg == "count":
        inner = f"count({d.expr or '*'})"
    elif d.agg == "count_distinct":
        inner = f"count(DISTINCT {d.expr})"
    elif d.agg == "percentile":
        inner = f"percentile_cont({d.percentile})({d.expr})"
    else:
        inner = f"{d.agg}({d.expr})"
    out = f"{inner} over {m.model}"
    if d.filter:
        out += f" where {d.filter}"
    if d.time_dimension:
        out += f" (time: {d.time_dimension})"
    return out


def formula(layer, name: str) -> str:
    """A one-line formula of metric ``name``."""
    d = layer.metrics[name]
    if isinstance(d, SimpleMetric):
        return _measure_formula(layer, d.measure)
    if isinstance(d, RatioMetric):
        return f"{d.numerator} ÷ {d.denominator}"
    if isinstance(d, DerivedMetric):
        return d.expr
    if isinstance(d, CumulativeMetric):
        return f"running sum of {d.metric}" if d.window == "running" else f"{d.to_date_grain}-to-date sum of {d.metric}"
    if isinstance(d, PeriodOverPeriodMetric):
        return f"{d.calc} of {d.metric} vs {d.offset} period(s) earlier"
    if isinstance(d, ConversionMetric):
        window = f" within {d.within_days} days" if d.within_days else ""
        return (f"{d.output} of {d.entity} in {d.model}: [{d.step_a}] then [{d.step_b}]{window} "
                f"(time: {d.timestamp})")
    return ""


def _parts(layer, name: str) -> dict[str, str]:
    """Formulas of the metrics a ratio/derived metric is built from (one level)."""
    d = layer.metrics[name]
    refs: list[str] = []
    if isinstance(d, RatioMetric):
        refs = [d.numerator, d.denominator]
    elif isinstance(d, DerivedMetric):
        refs = sorted({c.name for c in layer.registry.formulas[name].find_all(_column_type())})
    elif isinstance(d, (CumulativeMetric, PeriodOverPeriodMetric)):
        refs = [d.metric]
    return {r: formula(layer, r) for r in refs}


def _column_type():
    from sqlglot import exp

    return exp.Column


def catalog_entries(layer) -> list[dict[str, Any]]:
    """One dict per metric (sorted by name): name, label, description, type, formula, parts,
    format, owner, choices, source (file:line relative to the semantic folder)."""
    out = []
    for name in sorted(layer.metrics):
        d = layer.metrics[name]
        loc = layer.registry.metrics[name]
        out.append({
            "name": name, "label": d.label, "description": d.description, "type": d.type,
            "formula": formula(layer, name), "parts": _parts(layer, name), "format": d.format,
            "owner": d.owner, "choices": dict(d.choices),
            "source": f"{source_path(layer, loc.doc.path)}:{loc.line}" if getattr(loc, "doc", None) is not None else "",
        })
    return out


def source_path(layer, path: str) -> str:
    """Where a definition was written, relative to the semantic folder — never an absolute
    path (the catalog is shown to every viewer, who has no business knowing the server's folders).

    >>> class L: semantic_dir = "/srv/app/semantic"
    >>> source_path(L(), "semantic/metrics/core.yml"), source_path(L(), "/srv/app/semantic/metrics/x.yml")
    ('metrics/core.yml', 'metrics/x.yml')
    >>> source_path(L(), "/elsewhere/extra.yml")
    'extra.yml'
    """
    p = Path(path)
    root = Path(getattr(layer, "semantic_dir", "") or "")
    for base in (root, Path(root.name) if root.name else None):
        if base is not None and str(base) not in ("", "."):
            try:
                return p.relative_to(base).as_posix()
            except ValueError:
                pass
    return p.name


def catalog_markdown(layer) -> str:
    """The catalog as markdown: a summary table, then one section per metric."""
    entries = catalog_entries(layer)
    lines = ["# Metric catalog", "", f"{len(entries)} metrics.", "",
             "| metric | label | type | format | owner |", "|---|---|---|---|---|"]
    for e in entries:
        lines.append(f"| `{e['name']}` | {e['label']} | {e['type']} | {e['format']} | {e['owner'] or '—'} |")
    for e in entries:
        lines += ["", f"## `{e['name']}` — {e['label']}", ""]
        if e["description"]:
            lines += [e["description"], ""]
        lines.append(f"- **type**: {e['type']}; **format**: {e['format']}; **owner**: {e['owner'] or '—'}")
        lines.append(f"- **formula**: `{e['formula']}`")
        for part, f in e["parts"].items():
            lines.append(f"  - `{part}` = `{f}`")
        if e["choices"]:
            lines.append("- **choices**:")
            for k, v in e["choices"].items():
                lines.append(f"  - *{k}*: {v}")
        if e["source"]:
            lines.append(f"- defined in `{e['source']}`")
    return "\n".join(lines) + "\n"
