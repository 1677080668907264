"""Numbers for people: currency, percent, days, counts (used by the CLI and the app).

>>> format_value(1234567.8, "currency")
'$1,234,568'
>>> format_value(1234567.8, "currency", compact=True)
'$1.23M'
>>> format_value(0.2345, "percent"), format_value(12.04, "days"), format_value(3, "count")
('23.4%', '12.0 days', '3')
>>> format_value(None, "currency")
'–'
"""

from __future__ import annotations

import math
from typing import Any

FORMATS = ("currency", "percent", "days", "count", "number")
MISSING = "–"


def _is_missing(v: Any) -> bool:
    if v is None:
        return True
    try:
        return bool(v != v) or (isinstance(v, float) and math.isnan(v))  # NaN / pd.NA
    except (TypeError, ValueError):
        return True  # pd.NA raises on bool()


def compact_number(v: float) -> str:
    a = abs(v)
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if a >= div:
            x = v / div
            return f"{x:,.2f}{suffix}" if abs(x) < 10 else f"{x:,.1f}{suffix}" if abs(x) < 100 else f"{x:,.0f}{suffix}"
    return f"{v:,.0f}"


def format_value(v: Any, fmt: str | None, compact: bool = False) -> str:
    """One value as text; ``compact`` shortens large numbers ($1.23M) for KPI cards."""
    if _is_missing(v):
        return MISSING
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        try:
            v = float(v)
        except (TypeError, ValueError):
            return str(v)
    if fmt == "currency":
        sign = "-" if v < 0 else ""
        return f"{sign}${compact_number(abs(v))}" if compact else f"{sign}${abs(v):,.0f}"
    if fmt == "percent":
        return f"{v * 100:.1f}%"
    if fmt == "days":
        return f"{v:,.1f} days"
    if fmt == "count":
        return compact_number(v) if compact and abs(v) >= 10_000 else f"{v:,.0f}"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:,.2f}"
    return f"{v:,.0f}"


def d3_format(fmt: str | None) -> str:
    """A d3/Vega number format for chart axes and tooltips."""
    return {"currency": "$,.3~s", "percent": ".0%", "days": ",.1f", "count": ",.0f"}.get(fmt or "", ",.4~g")


def d3_tooltip_format(fmt: str | None) -> str:
    return {"currency": "$,.0f", "percent": ".1%", "days": ",.1f", "count": ",.0f"}.get(fmt or "", ",.2f")
