"""Chart descriptions for screen readers: one sentence per chart that says what a sighted
reader takes from it ("Bar chart of Win rate by team, 6 teams: highest APAC 31.0%, lowest
EMEA 22.0%."). The sentence goes into the Vega-Lite spec's ``description``, which Vega puts on
the chart's SVG as its ``aria-label`` (checked in Chromium's accessibility tree by
tests/browser/test_chart_descriptions.py).

The numbers are formatted like the KPI cards (``format_value(..., compact=True)``).

>>> import pandas as pd
>>> df = pd.DataFrame({"team": ["APAC", "EMEA", "NA"], "win_rate": [0.31, 0.22, 0.27]})
>>> bars(df, "team", ["win_rate"], {"win_rate": "Win rate"}, {"win_rate": "percent"}, "Team")
'Bar chart of Win rate by team, 3 teams: highest APAC: 31.0%, lowest EMEA: 22.0%.'
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from pipelinebi.formatting import format_value


def _plural(noun: str, n: int) -> str:
    if n == 1 or noun.endswith("s"):
        return noun
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def _extremes(values: pd.Series, names: pd.Series, fmt: str | None, noun: str = "") -> str:
    v = pd.to_numeric(values, errors="coerce")
    ok = v.notna()
    if not ok.any():
        return "no values"
    v, names = v[ok], names[ok].astype(str)
    if noun and names.str.fullmatch(r"[\d.,\- ]+").all():  # "lead score 25 37" reads as one number
        names = noun + " " + names
    hi, lo = v.idxmax(), v.idxmin()
    if len(v) == 1 or v[hi] == v[lo]:
        return f"{'all ' if len(v) > 1 else ''}{format_value(v[hi], fmt, compact=True)}" + (f" ({names[hi]})" if len(v) == 1 else "")
    return (f"highest {names[hi]}: {format_value(v[hi], fmt, compact=True)}, "
            f"lowest {names[lo]}: {format_value(v[lo], fmt, compact=True)}")


def bars(df: pd.DataFrame, dim: str, metrics: list[str], labels: dict[str, str], fmts: dict[str, str | None],
         dim_label: str | None = None, kind: str = "Bar chart") -> str:
    """Per metric its highest and lowest category."""
    noun = (dim_label or dim).lower()
    d = df.groupby(dim, sort=False, as_index=False)[metrics].first() if dim in df else df
    n = d[dim].nunique() if dim in d else len(d)
    what = " and ".join(labels.get(m, m) for m in metrics)
    parts = []
    for m in metrics:
        if m not in d:
            continue
        text = _extremes(d[m].reset_index(drop=True), d[dim].reset_index(drop=True), fmts.get(m), noun)
        parts.append(text if len(metrics) == 1 else f"{labels.get(m, m)} {text}")
    return f"{kind} of {what} by {noun}, {n} {_plural(noun, n)}: {'; '.join(parts)}."


def trend(long: pd.DataFrame, names: dict[Any, str], fmts: dict[str, str | None], title: str, grain: str,
          line: str = "measure", partial: str | None = None) -> str:
    """Per line its first and last value and its highest period; ``names``: period start → "Q4 2026";
    ``partial``: the words for the periods not final."""
    parts = []
    d = long[~long.get("bridge", False)] if "bridge" in long else long
    for key, g in d.groupby(line, sort=False):
        g = g.sort_values("period")
        v = pd.to_numeric(g["value"], errors="coerce")
        g, v = g[v.notna()], v[v.notna()]
        if g.empty:
            continue
        fmt = fmts.get(g["metric"].iloc[0]) if "metric" in g else None
        first, last = g.iloc[0], g.iloc[-1]
        hi = v.idxmax()
        parts.append(f"{key}: {format_value(first['value'], fmt, compact=True)} in {names.get(first['period'], '')} to "
                     f"{format_value(last['value'], fmt, compact=True)} in {names.get(last['period'], '')}, "
                     f"highest {format_value(v[hi], fmt, compact=True)} in {names.get(g.loc[hi, 'period'], '')}")
    lines = d[line].nunique()
    text = f"Line chart of {title} by {grain}" + (f", {lines} lines" if lines > 1 else "") + ". " + "; ".join(parts) + "."
    if partial:
        text += f" {partial}."
    return text


def heatmap(df: pd.DataFrame, x: str, y: str, metric: str, label: str, fmt: str | None,
            x_label: str | None = None, y_label: str | None = None) -> str:
    """The highest and lowest cell."""
    v = pd.to_numeric(df[metric], errors="coerce")
    d = df[v.notna()].assign(_v=v[v.notna()])
    if d.empty:
        return f"Heatmap of {label} by {(y_label or y).lower()} and {(x_label or x).lower()}: no values."
    hi, lo = d["_v"].idxmax(), d["_v"].idxmin()
    cell = lambda i: f"{d.loc[i, y]} × {d.loc[i, x]} {format_value(d.loc[i, '_v'], fmt, compact=True)}"  # noqa: E731
    return (f"Heatmap of {label} by {(y_label or y).lower()} and {(x_label or x).lower()}, {len(d)} cells: "
            f"highest {cell(hi)}, lowest {cell(lo)}.")
