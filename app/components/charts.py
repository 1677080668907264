"""Altair chart builders for dashboard tiles: bar, line, funnel, heatmap, box (quantile range).

Readable by default: horizontal bars for categories (long team and rep names fit), axes
formatted from the metric's format ($1.2M, 25%, 12 days), tooltips with full values. Charts
that drill or select carry a point selection named ``pick`` on their dimension.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

from pipelinebi.formatting import axis_label_expr, d3_format, d3_tooltip_format, value_label

#: colour-blind-safe (Okabe–Ito hues after the brand blue): no red–green pair
PALETTE = ["#2f6fde", "#a0aab8", "#e69f00", "#56b4e9", "#d55e00", "#009e73"]
WORST = "#d55e00"  # vermillion: "bad" that reads for red–green colour blindness too
#: bullet bars: ahead of target / short of it / no target
AHEAD, SHORT, NO_TARGET = "#2f6fde", "#d55e00", "#a0aab8"


# Theme-aware colours. Vega draws fixed colours, and Streamlit's chart theme sets only axes,
# legends and titles: a mark coloured black vanishes on the dark theme, one coloured white on
# the light one. A layer named with one of these prefixes is recoloured by the app's CSS
# (ui._THEME_CSS) after the theme the viewer picked in the ⋮ menu, live: INK = the theme's
# text colour (currentColor), PAPER = its background (light-dark(), which follows the
# color-scheme Streamlit sets on the app). The colours given in the spec are what a chart
# shows without that CSS (an export), chosen to be visible on both backgrounds.
INK, PAPER, PAPER_STROKE = "pbiink", "pbipaper", "pbipaperstroke"
#: text in a bar's colour: a shade per theme with AA contrast against its background (the
#: bars' own hues are too light on white for 12 px text, or too dark on the dark theme)
TEXT_ROLE = {"#2f6fde": "pbiblue", "#d55e00": "pbiorange", "#a0aab8": "pbigrey"}


def themed(chart: alt.Chart, role: str, name: str) -> alt.Chart:
    """The layer named ``<role>_<name>`` (unique within its chart): the app's CSS gives its
    marks the theme's ink or paper colour.

    >>> themed(alt.Chart().mark_tick(), INK, "tick").to_dict()["name"]
    'pbiink_tick'
    """
    return chart.properties(name=f"{role}_{name}")


def coloured_text(base: alt.Chart, field: str, colours: dict[str, str], name: str, **mark) -> list[alt.Chart]:
    """Text marks in the colour of their row's ``field`` value (``colours``: value → bar
    colour), one layer per value so each gets its theme-aware text shade (:data:`TEXT_ROLE`).

    >>> [c.to_dict()["name"] for c in coloured_text(alt.Chart(), "kind", {"in": "#2f6fde", "out": "#d55e00"}, "w")]
    ['pbiblue_w0', 'pbiorange_w1']
    """
    return [themed(base.transform_filter(alt.FieldEqualPredicate(field=field, equal=value)).mark_text(color=colour, **mark),
                   TEXT_ROLE.get(colour, INK), f"{name}{i}")
            for i, (value, colour) in enumerate(colours.items())]


def _tick(chart: alt.Chart, **kw) -> list[alt.Chart]:
    """A target tick visible on light and dark backgrounds alike: a halo of the page's
    background under a core of its text colour (dark on light, light on dark)."""
    return [themed(chart.mark_tick(color="#ffffff", thickness=6, size=kw.get("size", 22), opacity=0.9), PAPER, "tickhalo"),
            themed(chart.mark_tick(color="#5b6372", thickness=3, size=kw.get("size", 22)), INK, "tick")]
PICK = "pick"


def axis_format(fmt: str | None) -> dict[str, str]:
    """An axis's (or legend's) number format written like the KPI cards: $200K, 12K, 25%, 12.5
    (days without a needless ".0").

    >>> axis_format("days")
    {'format': ',.1~f'}
    """
    expr = axis_label_expr(fmt)
    return {"format": d3_format(fmt), **({"labelExpr": expr} if expr else {})}


def _labels(metrics: list[str], defs: dict[str, Any]) -> dict[str, str]:
    return {m: (defs[m].label if m in defs else m) for m in metrics}


def _fmt(metrics: list[str], defs: dict[str, Any]) -> str | None:
    return defs[metrics[0]].format if metrics and metrics[0] in defs else None


def _clean(df: pd.DataFrame, dims: list[str]) -> pd.DataFrame:
    """Dimension values as shown: periods as dates, categories as text for people ("best_case"
    → "Best Case", :func:`value_label`; a blank "(none)"). A click on a chart therefore sees
    the label: the caller maps it back to the raw value (``formatting.label_map``)."""
    df = df.copy()
    for d in dims:
        if d == "period":
            df[d] = pd.to_datetime(df[d])
        elif d in df:
            df[d] = df[d].astype("string").fillna("(none)").map(value_label).astype("string")
    return df


def _shown(values: list[str] | None) -> list[str] | None:
    """Category values (a sort order, the worst few) as :func:`_clean` shows them."""
    return None if values is None else list(dict.fromkeys(value_label(v) for v in values))


def _long(df: pd.DataFrame, dims: list[str], metrics: list[str], labels: dict[str, str]) -> pd.DataFrame:
    long = df.melt(id_vars=[d for d in dims if d in df], value_vars=metrics, var_name="metric", value_name="value")
    long["measure"] = long["metric"].map(labels)
    long["value"] = pd.to_numeric(long["value"], errors="coerce")
    return long


def _selection(dim: str) -> alt.Parameter:
    return alt.selection_point(name=PICK, fields=[dim], on="click", clear="dblclick")


def _category_sort(df: pd.DataFrame, dim: str, order_by: list[str] | None) -> list[str]:
    """Category order from the raw result: by ``order_by``, numerically for numbers, else as queried."""
    order_by = [o for o in (order_by or []) if o in df]
    if order_by and order_by != [dim]:
        d = df.sort_values(order_by + [dim])[dim]
    elif (order_by == [dim] or pd.api.types.is_numeric_dtype(df[dim])) and dim in df:
        d = df.sort_values(dim)[dim]
    else:
        d = df[dim]
    return list(dict.fromkeys(d.astype("string").fillna("(none)").tolist()))


def bar_chart(df: pd.DataFrame, dim: str, metrics: list[str], defs: dict[str, Any], *, series: str | None = None,
              order_by: list[str] | None = None, interactive: bool = False, title: str | None = None,
              baseline: str | None = None, baseline_label: str | None = None, worst: list[str] | None = None, dim_label: str | None = None,
              horizontal: bool = True, height: int | None = None, stack: bool = False) -> alt.Chart:
    """Bars per category: one per metric side by side, or per ``series`` value stacked;
    ``stack``: the metrics stacked in one bar (parts of a whole: closed won + weighted open)."""
    labels = _labels(metrics, defs)
    if baseline:
        labels[baseline] = baseline_label or _labels([baseline], defs)[baseline]
    fmt = _fmt(metrics, defs)
    order = _shown(_category_sort(df, dim, order_by))
    worst = _shown(worst)
    dims = [dim] + ([series] if series else [])
    df = _clean(df, dims)
    long = _long(df, dims, metrics, labels)
    if stack and not series:
        # a part that is zero (or blank) draws nothing, but would still answer a hover or a click
        long = long[long["value"].fillna(0) != 0]
    n_cat = max(1, len(order or []))
    n_group = len(metrics) if not series else max(1, df[series].nunique())
    stacked = bool(series) or stack
    color_field = "series_value" if series else "measure"
    if series:
        long["series_value"] = long[series]
    domain = list(labels[m] for m in metrics) if not series else sorted(long["series_value"].dropna().unique().tolist())
    color = alt.Color(f"{color_field}:N", title=None, scale=alt.Scale(domain=domain, range=PALETTE[: len(domain)] or PALETTE),
                      legend=alt.Legend(orient="top", labelLimit=400,
                                        # parts of a whole in two columns: four fit a phone's width
                                        **({"columns": 2} if stack and not series and len(metrics) > 2
                                           else legend_columns(domain)))
                      if (len(metrics) > 1 or series) else None)
    if worst:
        color = alt.condition(alt.FieldOneOfPredicate(field=dim, oneOf=worst), alt.value(WORST), color)
    # At most 6 ticks, written like the KPI cards ($200K, not $200k); counts have no fractional
    # ticks (otherwise a 0–2 axis reads "0 0 0 1 1 1 …").
    value_axis = alt.Axis(**axis_format(fmt), title=measures_title([labels[m] for m in metrics], fmt, limit=48 if horizontal else 32), grid=True,
                          tickCount=5,
                          **({"tickMinStep": 1} if fmt == "count" else {}))
    cat_axis = alt.Axis(title=dim_label, labelLimit=260)
    tooltip = [alt.Tooltip(f"{dim}:N", title=dim_label or dim), alt.Tooltip("measure:N", title="Metric"),
               alt.Tooltip("value:Q", title="Value", format=d3_tooltip_format(fmt))]
    if series:
        tooltip.insert(1, alt.Tooltip(f"{series}:N"))
    base = alt.Chart(long)
    if horizontal:
        enc = dict(y=alt.Y(f"{dim}:N", sort=order, axis=cat_axis),
                   x=alt.X("value:Q", axis=value_axis, stack="zero" if stacked else None),
                   color=color, tooltip=tooltip)
        if n_group > 1 and not stacked:
            enc["yOffset"] = alt.YOffset("measure:N", sort=[labels[m] for m in metrics])
        # Streamlit sizes charts with autosize 'fit' (legend and axes inside the height): leave room
        # for the value axis, and for the legend when there is one, so two bars never shrink to slivers.
        legend = 44 if (series or n_group > 1) else 0
        h = height or min(1400, max(150 + legend, n_cat * (16 * (n_group if not stacked else 1) + 14) + 56 + legend))
    else:
        # at most MAX_TICKS labels: every k-th category (a lead-score histogram has ~60 bars)
        step = -(-len(order) // MAX_TICKS)
        every = {"values": order[::step]} if step > 1 else {}
        enc = dict(x=alt.X(f"{dim}:N", sort=order, axis=alt.Axis(title=dim_label, labelAngle=0 if len(order) > 12 else -30,
                                                                 labelLimit=160, labelOverlap=True, **every)),
                   y=alt.Y("value:Q", axis=value_axis, stack="zero" if stacked else None),
                   color=color, tooltip=tooltip)
        if n_group > 1 and not stacked:
            enc["xOffset"] = alt.XOffset("measure:N", sort=[labels[m] for m in metrics])
        h = height or 320
    chart = base.mark_bar(cornerRadiusEnd=3, cursor="pointer" if interactive else "default").encode(**enc)
    if interactive:
        pick = _selection(dim)
        chart = chart.add_params(pick).encode(opacity=alt.condition(pick, alt.value(1.0), alt.value(0.35)))
    layers = [chart]
    if baseline and baseline in df:
        b = df[[dim, baseline]].rename(columns={baseline: "baseline"})
        b["baseline"] = pd.to_numeric(b["baseline"], errors="coerce")
        tick_enc = (dict(y=alt.Y(f"{dim}:N", sort=order), x="baseline:Q") if horizontal
                    else dict(x=alt.X(f"{dim}:N", sort=order), y="baseline:Q"))
        tip = [alt.Tooltip(f"{dim}:N"), alt.Tooltip("baseline:Q", title=labels[baseline], format=d3_tooltip_format(fmt))]
        layers += [t.encode(**tick_enc, tooltip=tip) for t in _tick(alt.Chart(b), size=18)]
    out = alt.layer(*layers) if len(layers) > 1 else chart
    from . import a11y

    desc = a11y.bars(df, dim, metrics, labels, {m: _fmt([m], defs) for m in metrics}, dim_label,
                     kind="Stacked bar chart" if stacked else "Bar chart")
    return out.properties(height=h, title=title or "", description=desc)


def bullet_chart(df: pd.DataFrame, dim: str, value: str, target: str, defs: dict[str, Any], *,
                 interactive: bool = False, dim_label: str | None = None, height: int | None = None) -> alt.LayerChart:
    """One bar per category for ``value`` (forecast) with a tick at ``target``; sorted by the
    gap, furthest short first (no target last); a bar short of target is vermillion and says
    "$2.00M short" beside it, one ahead is blue and says "$35.0M ahead" (colour is never the
    only signal)."""
    from pipelinebi.formatting import gap_words

    labels = _labels([value, target], defs)
    fmt = _fmt([value], defs)
    d = _clean(df, [dim]).groupby(dim, as_index=False, sort=False)[[value, target]].first()
    d["v"] = pd.to_numeric(d[value], errors="coerce")
    d["t"] = pd.to_numeric(d[target], errors="coerce")
    d["gap"] = d["v"] - d["t"]
    d["status"] = ["no target" if t != t else ("short" if g < 0 else "ahead") for g, t in zip(d["gap"], d["t"])]
    d["words"] = [gap_words(v, t, fmt) if t == t else "no target" for v, t in zip(d["v"], d["t"])]
    d = d.sort_values("gap", na_position="last")
    order = d[dim].tolist()
    d["end"] = d[["v", "t"]].max(axis=1)
    value_axis = alt.Axis(**axis_format(fmt), title=f"{labels[value]} (bar) against {labels[target].lower()} (tick)",
                          grid=True, tickCount=5)
    y = alt.Y(f"{dim}:N", sort=order, axis=alt.Axis(title=dim_label, labelLimit=260))
    tooltip = [alt.Tooltip(f"{dim}:N", title=dim_label or dim),
               alt.Tooltip("v:Q", title=labels[value], format=d3_tooltip_format(fmt)),
               alt.Tooltip("t:Q", title=labels[target], format=d3_tooltip_format(fmt)),
               alt.Tooltip("words:N", title="Gap")]
    base = alt.Chart(d)
    colours = {"ahead": AHEAD, "short": SHORT, "no target": NO_TARGET}
    # the legend lists what the chart shows: three entries do not fit a phone's width, and
    # "No target" beside bars that all have one says nothing
    domain = [k for k in colours if k in set(d["status"])] or list(colours)
    bars = base.mark_bar(cornerRadiusEnd=3, height={"band": 0.6}, cursor="pointer" if interactive else "default").encode(
        y=y, x=alt.X("v:Q", axis=value_axis),
        color=alt.Color("status:N", title=None, scale=alt.Scale(domain=domain, range=[colours[k] for k in domain]),
                        legend=alt.Legend(orient="top", labelExpr="datum.label == 'ahead' ? 'Ahead of target' : "
                                          "datum.label == 'short' ? 'Short of target' : 'No target'")),
        tooltip=tooltip)
    if interactive:
        pick = _selection(dim)
        bars = bars.add_params(pick).encode(opacity=alt.condition(pick, alt.value(1.0), alt.value(0.35)))
    ticks = [t.encode(y=y, x="t:Q", tooltip=tooltip) for t in _tick(base.transform_filter("isValid(datum.t)"))]
    # the words in the bar's own colour: readable on the light and the dark theme (a fixed
    # black or the theme-less default vanishes on dark)
    words = [w.encode(y=y, x="end:Q", text="words:N") for w in coloured_text(
        base, "status", {k: colours[k] for k in domain}, "gap", align="left", dx=6, fontSize=12, fontWeight="bold")]
    h = height or min(1400, max(170, len(order) * 34 + 90))
    from . import a11y

    desc = a11y.bars(d[[dim, "v"]], dim, ["v"], {"v": labels[value]}, {"v": fmt}, dim_label)
    desc = desc[:-1] + "; " + "; ".join(f"{n} {w}" for n, w in zip(d[dim], d["words"])) + "."
    return alt.layer(bars, *ticks, *words).properties(height=h, description=desc)


#: Vega-Lite time units of each grain, for the axis ticks
_TIME_UNIT = {"day": "day", "week": "week", "month": "month", "quarter": "month", "year": "year"}
#: at most this many ticks on an axis
MAX_TICKS = 8


def time_ticks(n_periods: int, grain: str) -> dict[str, Any]:
    """A tick every k periods so the axis has at most ``MAX_TICKS`` labels.

    >>> time_ticks(11, "quarter"), time_ticks(6, "month")
    ({'interval': 'month', 'step': 6}, {'interval': 'month', 'step': 1})
    """
    k = max(1, -(-n_periods // MAX_TICKS))
    return {"interval": _TIME_UNIT.get(grain, "day"), "step": k * (3 if grain == "quarter" else 1)}


def unit_title(label: str | None, fmt: str | None) -> str | None:
    """An axis title that names its unit: days are said (the tick labels are bare numbers).

    >>> unit_title("Median dwell", "days"), unit_title("Time to convert (median days)", "days")
    ('Median dwell (days)', 'Time to convert (median days)')
    """
    if fmt == "days" and not label:
        return "days"
    if fmt == "days" and "day" not in label.lower():
        return f"{label} (days)"
    return label


def legend_columns(names: list[str], width: int = 640) -> dict[str, int]:
    """Legend columns for entries that do not fit one row (a Vega legend never wraps by
    itself: five "Attributed revenue (…)" entries ran off the chart's right edge): two columns
    of short names, one of long ones; nothing when one row fits ``width`` pixels.

    >>> legend_columns(["Forecast", "Target"]), legend_columns(["Attributed revenue (first touch)"] * 5)
    ({}, {'columns': 1})
    >>> legend_columns(["Closed won amount", "Open commit amount", "Best case", "Pipeline", "Lost amount", "Pushed"])
    {'columns': 2}
    """
    chars = [len(str(n)) for n in names]
    if sum(c * 7 + 30 for c in chars) <= width:  # ~7 px a character at the legend's size, 30 for the symbol
        return {}
    return {"columns": 2 if max(chars) <= 24 else 1}


#: the title of a value axis several measures share, when their names are too long to list: its unit
UNIT_WORDS = {"currency": "Amount ($)", "count": "Count", "percent": "Share (%)", "days": "Days", "multiple": "Times (×)"}


def measures_title(names: list[str], fmt: str | None, limit: int = 48) -> str:
    """The title of a value axis: what it measures, in its unit (#14: every number axis says
    what it counts). One measure: its name; a few: their names ("Leads and converted leads");
    more than fit in ``limit`` characters: the unit (the legend names them).

    >>> measures_title(["Median dwell"], "days"), measures_title(["Leads", "Converted leads"], "count")
    ('Median dwell (days)', 'Leads and converted leads')
    >>> measures_title(["Closed won", "Commit (open)", "Best case (open)", "Pipeline (open)"], "currency")
    'Amount ($)'
    >>> measures_title(["Forecast", "CAC"], "currency"), measures_title([], None)
    ('Forecast and CAC', 'Value')
    """
    if not names:
        return UNIT_WORDS.get(fmt or "", "Value")
    # later names in lower case, unless they start with an acronym ("CAC", "ROI")
    rest = [n[0].lower() + n[1:] if len(n) > 1 and n[1].islower() else n for n in names[1:]]
    joined = names[0] if not rest else ", ".join([names[0], *rest[:-1]]) + " and " + rest[-1]
    if len(joined) > limit:
        return UNIT_WORDS.get(fmt or "", "Value")
    return unit_title(joined, fmt) or joined


def line_chart(df: pd.DataFrame, metrics: list[str], defs: dict[str, Any], *, series: str | None = None,
               grain: str = "month", title: str | None = None, height: int = 300, as_of: Any = None) -> alt.Chart:
    """A trend by period. With ``as_of`` (the database's as-of date) the periods not final yet
    — the running one, and for a cohort metric (``complete_after_days``) the cohorts still
    maturing — are drawn dashed with a hollow point and a legend entry ("Q4 2026 so far");
    :func:`partial_period.caption` gives the caption that says so."""
    from . import a11y, partial_period

    labels = _labels(metrics, defs)
    fmt = _fmt(metrics, defs)
    dims = ["period"] + ([series] if series else [])
    df = _clean(df, dims)
    long = _long(df, dims, metrics, labels)
    color_field = series if series else "measure"
    time_fmt = {"quarter": "Q%q %Y", "month": "%b %Y", "year": "%Y"}.get(grain, "%d %b %Y")
    starts = sorted({p.date() for p in pd.to_datetime(long["period"]).dropna()})
    names = {pd.Timestamp(s): partial_period.period_name(s, grain) for s in starts}
    after = {m: getattr(defs.get(m), "complete_after_days", 0) or 0 for m in metrics}
    part = partial_period.describe(starts, grain, as_of, after, labels) if as_of is not None and starts else None
    if part is not None:
        long = partial_period.mark(long, grain, as_of, after, part.label, [color_field, "metric"])
        long["status"] = ["final" if f else part.label for f in long["final"]]
    else:
        long["bridge"] = False
    x = alt.X("period:T", title=None, axis=alt.Axis(format=time_fmt, labelAngle=0,
                                                    tickCount=time_ticks(len(starts), grain)))
    y = alt.Y("value:Q", axis=alt.Axis(**axis_format(fmt), tickCount=5),
              # a vertical title longer than the chart's height is cut ("New-customer revenu…")
              title=measures_title([labels[m] for m in metrics], fmt, limit=32))
    one_line = long[color_field].nunique() <= 1  # its name is the axis title: no legend for it
    color = alt.Color(f"{color_field}:N", title=None, scale=alt.Scale(range=PALETTE),
                      legend=None if one_line else alt.Legend(orient="top", **legend_columns(
                          [str(v) for v in long[color_field].dropna().unique()])))
    tooltip = [alt.Tooltip("period:T", title="Period", format=time_fmt), alt.Tooltip(f"{color_field}:N", title="Series"),
               alt.Tooltip("value:Q", format=d3_tooltip_format(fmt))]
    base = alt.Chart(long)
    if part is None:
        line = base.mark_line(point=True).encode(x=x, y=y, color=color, tooltip=tooltip)
        layers = [line]
    else:
        tooltip.append(alt.Tooltip("status:N", title="Status"))
        dash = alt.StrokeDash("segment:N", title=None, scale=alt.Scale(domain=[partial_period.FINAL, part.label],
                                                                      range=[[1, 0], [5, 4]]),
                              # below the chart: beside the colour legend it is cut off on a phone
                              legend=alt.Legend(orient="bottom", symbolType="stroke", symbolStrokeWidth=2, labelLimit=300))
        line = base.mark_line().encode(x=x, y=y, color=color, strokeDash=dash, detail=f"{color_field}:N")
        points = base.transform_filter("!datum.bridge")
        layers = [line,
                  points.transform_filter("datum.final").mark_point(filled=True, size=45).encode(x=x, y=y, color=color, tooltip=tooltip),
                  # the partial point hollow: its value is not the period's last word
                  points.transform_filter("!datum.final").mark_point(filled=False, size=70, strokeWidth=2).encode(
                      x=x, y=y, color=color, tooltip=tooltip)]
    what = " and ".join(labels[m] for m in metrics) + (f" per {series.replace('_', ' ')}" if series else "")
    desc = a11y.trend(long, names, {m: defs[m].format if m in defs else None for m in metrics}, what, grain,
                      line=color_field, partial=part.caption.removeprefix("Dashed: ") if part else None)
    out = alt.layer(*layers) if len(layers) > 1 else layers[0]
    return out.properties(height=height, title=title or "", description=desc)


def funnel_chart(df: pd.DataFrame, dim: str, metric: str, defs: dict[str, Any], *, order_by: list[str] | None = None,
                 interactive: bool = False, title: str | None = None, dim_label: str | None = None) -> alt.Chart:
    labels = _labels([metric], defs)
    fmt = _fmt([metric], defs)
    if order_by and all(o in df for o in order_by):
        df = df.sort_values(list(order_by))
    df = _clean(df, [dim])
    df = df.groupby(dim, sort=False, as_index=False)[metric].sum(min_count=1)
    df["value"] = pd.to_numeric(df[metric], errors="coerce")
    first = df["value"].iloc[0] if len(df) and df["value"].iloc[0] else None
    df["share"] = df["value"] / first if first else None
    order = df[dim].tolist()
    base = alt.Chart(df).encode(y=alt.Y(f"{dim}:N", sort=order, axis=alt.Axis(title=dim_label, labelLimit=260)))
    bars = base.mark_bar(color=PALETTE[0], cornerRadiusEnd=3, cursor="pointer" if interactive else "default").encode(
        x=alt.X("value:Q", axis=alt.Axis(**axis_format(fmt), tickCount=5), title=unit_title(labels[metric], fmt)),
        tooltip=[alt.Tooltip(f"{dim}:N"), alt.Tooltip("value:Q", title=labels[metric], format=d3_tooltip_format(fmt)),
                 alt.Tooltip("share:Q", title="Share of first stage", format=".0%")])
    if interactive:
        pick = _selection(dim)
        bars = bars.add_params(pick).encode(opacity=alt.condition(pick, alt.value(1.0), alt.value(0.35)))
    # the bar's blue, not black: readable on the light and the dark theme
    text = themed(base.mark_text(align="left", dx=4, fontSize=12, fontWeight="bold", color=PALETTE[0]),
                  TEXT_ROLE[PALETTE[0]], "values").encode(x="value:Q", text=alt.Text("value:Q", format=d3_format(fmt)))
    from . import a11y

    desc = a11y.bars(df, dim, ["value"], {"value": labels[metric]}, {"value": fmt}, dim_label, kind="Funnel")
    return alt.layer(bars, text).properties(height=max(160, 34 * len(order) + 30), title=title or "", description=desc)


def wrap(text: str, width: int = 18) -> str | list[str]:
    """A chart title on lines of at most ``width`` characters (a list: Vega draws one line per
    item), broken between words; short text unchanged.

    >>> wrap("Stage conversion (resolved visits)")
    ['Stage conversion', '(resolved visits)']
    >>> wrap("Win rate")
    'Win rate'
    """
    if len(text) <= width:
        return text
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def date_names(values: pd.Series) -> pd.Series:
    """Dates as the periods they start, when they all start one: quarters ("Q2 2024"), else
    months ("Apr 2024"); anything else unchanged (names, numbers, other dates).

    >>> list(date_names(pd.Series(["2024-04-01", "2024-07-01"]))), list(date_names(pd.Series(["2024-05-01"])))
    (['Q2 2024', 'Q3 2024'], ['May 2024'])
    >>> list(date_names(pd.Series(["APAC", "EMEA"]))), list(date_names(pd.Series(["2024-05-03"])))
    (['APAC', 'EMEA'], ['2024-05-03'])
    """
    if pd.api.types.is_numeric_dtype(values) or values.isna().all():
        return values
    text = values.astype("string")
    if not text.dropna().str.fullmatch(r"\d{4}-\d{2}-\d{2}( 00:00:00)?").all():
        return values
    days = pd.to_datetime(text, errors="coerce")
    if days.isna().any() or (days.dt.day != 1).any():
        return values
    if days.dt.month.isin([1, 4, 7, 10]).all():
        return pd.Series([f"Q{(d.month - 1) // 3 + 1} {d.year}" for d in days], index=values.index, dtype="string")
    return pd.Series([d.strftime("%b %Y") for d in days], index=values.index, dtype="string")


def heatmap(df: pd.DataFrame, x: str, y: str, metric: str, defs: dict[str, Any], *, x_order: list[str] | None = None,
            title: str | None = None, x_label: str | None = None, y_label: str | None = None) -> alt.Chart:
    labels = _labels([metric], defs)
    fmt = _fmt([metric], defs)
    x_order = _shown(x_order)
    df = df.copy()
    y_order = None
    for d in (x, y):  # cohorts by date read as periods ("Q2 2024"), not "2024-04-01", in time order
        if d in df:
            named = date_names(df[d])
            if not named.equals(df[d]):
                order = list(dict.fromkeys(named.iloc[pd.to_datetime(df[d].astype("string")).argsort()]))
                if d == y:
                    y_order = order
                else:
                    x_order = order
            df[d] = named
    df = _clean(df, [x, y])
    df["value"] = pd.to_numeric(df[metric], errors="coerce")
    # White text only on the dark ends of the colour scale (red and deep green); the scale spans
    # [min, max] of the values, so the cut-offs are positions in that range, not quantiles.
    vmin, vmax = df["value"].min(), df["value"].max()
    span = (vmax - vmin) if vmax == vmax and vmin == vmin else 0
    df["dark"] = ((df["value"] - vmin) <= 0.15 * span) | ((df["value"] - vmin) >= 0.85 * span) if span else False
    n_y = max(1, df[y].nunique())
    n_x = max(1, df[x].nunique())
    height = max(200, 22 * n_y + 60)
    base = alt.Chart(df).encode(
        x=alt.X(f"{x}:N", sort=x_order, axis=alt.Axis(title=x_label, labelAngle=0, labelLimit=140, orient="top",
                                                      labelOverlap=False)),
        # every row named: the theme's labelOverlap hid every other cohort
        y=alt.Y(f"{y}:N", sort=y_order, axis=alt.Axis(title=y_label, labelLimit=220, labelOverlap=False)))
    rect = themed(base.mark_rect(stroke="#a0aab8"), PAPER_STROKE, "cells").encode(
        # blue (high) to orange (low): colour-blind safe, never red against green
        # the legend's title on short lines: one line of "Stage conversion (resolved visits)"
        # is cut to "Stage conversion (resolved v…" beside the cells
        color=alt.Color("value:Q", title=wrap(labels[metric]), scale=alt.Scale(scheme="blueorange", reverse=True),
                        # the gradient shorter than the chart less its wrapped title and the top
                        # axis: at Vega's default 200 px the "0%" end was cut off below the chart
                        legend=alt.Legend(**axis_format(fmt), orient="right", titleLimit=0,
                                          gradientLength=max(60, min(200, height - 120)))),
        tooltip=[alt.Tooltip(f"{y}:N"), alt.Tooltip(f"{x}:N"), alt.Tooltip("value:Q", title=labels[metric],
                                                                           format=d3_tooltip_format(fmt))])
    text = base.mark_text(fontSize=11).encode(
        text=alt.Text("value:Q", format=d3_format(fmt)),
        color=alt.condition("datum.dark", alt.value("white"), alt.value("#111")))
    layers = [rect, text] if n_x <= 10 else [rect]
    from . import a11y

    desc = a11y.heatmap(df, x, y, "value", labels[metric], fmt, x_label, y_label)
    return alt.layer(*layers).properties(height=height, title=title or "", description=desc)


def range_chart(df: pd.DataFrame, dim: str, metrics: list[str], defs: dict[str, Any], *, order_by: list[str] | None = None,
                title: str | None = None, dim_label: str | None = None) -> alt.Chart:
    """A distribution per category from quantile metrics (ordered low → high): a rule from the
    lowest to the highest quantile, a thick bar over the middle ones, a dot per quantile."""
    labels = _labels(metrics, defs)
    fmt = _fmt(metrics, defs)
    order = _shown(_category_sort(df, dim, order_by))
    dims = [dim]
    df = _clean(df, dims)
    for m in metrics:
        df[m] = pd.to_numeric(df[m], errors="coerce")
    df["lo"] = df[metrics].min(axis=1)
    df["hi"] = df[metrics].max(axis=1)
    # every category named (the theme's labelOverlap hid every other stage of a 7-row chart)
    y = alt.Y(f"{dim}:N", sort=order, axis=alt.Axis(title=dim_label, labelLimit=260, labelOverlap=False))
    axis = alt.Axis(**axis_format(fmt), tickCount=5)
    unit = unit_title("", fmt) or measures_title([], fmt)  # the quantiles share one axis: its unit is its title
    layers = [themed(alt.Chart(df).mark_rule(strokeWidth=2, color="#7b8698"), INK, "range").encode(
        y=y, x=alt.X("lo:Q", axis=axis, title=unit), x2="hi:Q")]
    if len(metrics) >= 3:
        mid = metrics[1:-1]
        df["mlo"] = df[mid[0]]
        df["mhi"] = df[mid[-1]] if len(mid) > 1 else df[mid[0]]
        # the brand blue, see-through: a light box on the light theme and a dim one on the dark
        layers.append(alt.Chart(df).mark_bar(size=14, color=PALETTE[0], opacity=0.35).encode(y=y, x="mlo:Q", x2="mhi:Q"))
    long = _long(df, dims, metrics, labels)
    layers.append(alt.Chart(long).mark_point(filled=True, size=90).encode(
        y=y, x=alt.X("value:Q", axis=axis, title=unit),
        color=alt.Color("measure:N", title=None, scale=alt.Scale(domain=[labels[m] for m in metrics], range=PALETTE),
                        legend=alt.Legend(orient="top", labelLimit=400, direction="vertical")),
        tooltip=[alt.Tooltip(f"{dim}:N"), alt.Tooltip("measure:N", title="Quantile"),
                 alt.Tooltip("value:Q", format=d3_tooltip_format(fmt))]))
    from . import a11y

    desc = a11y.bars(df, dim, [metrics[len(metrics) // 2]], labels, {m: fmt for m in metrics}, dim_label,
                     kind="Range chart (its middle quantile)")
    # rows of 34 px plus the axis and the legend above (one line per quantile)
    return alt.layer(*layers).properties(height=max(160, 34 * len(order or []) + 60 + 20 * len(metrics)), title=title or "",
                                         description=desc)


def dim_others(spec: dict, field: str, value: str, dimmed: float = 0.3) -> dict:
    """The chart spec with the marks of ``field == value`` at full strength and every other
    category dimmed (a picked stage highlighted, the chart not narrowed to one bar). Only layers
    that place marks by ``field`` are touched; the value goes into a field predicate, never into
    an expression string.

    >>> s = dim_others({"mark": "bar", "encoding": {"y": {"field": "stage"}}}, "stage", "Quote")
    >>> s["encoding"]["opacity"]["condition"]
    {'test': {'field': 'stage', 'equal': 'Quote'}, 'value': 1.0}
    """
    def walk(node: Any) -> None:
        if isinstance(node, dict):
            enc = node.get("encoding")
            mark = node.get("mark")
            text = (mark.get("type") if isinstance(mark, dict) else mark) == "text"  # labels stay readable
            if not text and isinstance(enc, dict) and any(isinstance(enc.get(c), dict) and enc[c].get("field") == field
                                             for c in ("x", "y")):
                enc["opacity"] = {"condition": {"test": {"field": field, "equal": value}, "value": 1.0},
                                  "value": dimmed}
            for k in ("layer", "hconcat", "vconcat", "concat"):
                for child in node.get(k, []) or []:
                    walk(child)
            if isinstance(node.get("spec"), dict):
                walk(node["spec"])
    walk(spec)
    return spec


def picked(event: Any, dim: str) -> str | None:
    """The value clicked on a chart with the ``pick`` selection, or None."""
    try:
        sel = event.selection.get(PICK) or []
    except AttributeError:
        return None
    if sel and isinstance(sel, list) and dim in sel[0]:
        v = sel[0][dim]
        return None if v is None else str(v)
    return None
