"""Render a query result for the terminal: an aligned text table, CSV or JSON.

CSV is the spreadsheet-safe CSV of :mod:`pipelinebi.export` (the app's downloads use the same
function): text is quoted, and text a spreadsheet would run as a formula gets a ``'`` in front.

>>> import pandas as pd
>>> df = pd.DataFrame({"team": ["APAC", "NA SMB"], "forecast": [1234567.0, 950.0], "win_rate": [0.25, None]})
>>> print(render_frame(df, "table", {"forecast": "currency", "win_rate": "percent"}))
team      forecast  win_rate
------  ----------  --------
APAC    $1,234,567     25.0%
NA SMB        $950         —
>>> print(render_frame(df, "csv", {}).splitlines()[1])
"APAC",1234567.0,0.25
>>> print(render_frame(pd.DataFrame({"deal": ["=1+2"], "amount": [-5]}), "csv", {}))
"deal","amount"
"'=1+2",-5
>>> render_frame(df, "json", {}).splitlines()[1].strip()
'{"team": "APAC", "forecast": 1234567.0, "win_rate": 0.25},'
>>> from decimal import Decimal                     # a DECIMAL column (sums of amounts)
>>> render_frame(pd.DataFrame({"amount": [Decimal("1250.50")]}), "json", {}).splitlines()[1].strip()
'{"amount": 1250.5}'
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import re
from typing import Any

from .errors import ConfigError, Problem
from .export import safe_csv_text
from .formatting import format_value

OUTPUT_FORMATS = ("table", "csv", "json")


def _jsonable(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        try:
            v = v.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(v, decimal.Decimal):  # JSON has one number type; json.dumps refuses Decimal
        return None if not v.is_finite() else float(v)
    if isinstance(v, (dt.datetime, dt.date)):
        return v.isoformat()
    if hasattr(v, "isoformat"):
        return v.isoformat()
    try:
        if v != v:  # pd.NA / NaT
            return None
    except (TypeError, ValueError):
        return None
    if isinstance(v, float) and v.is_integer() is False:
        return v
    return v


#: C0 and C1 control characters (ESC, BEL, CR, …): data printed to a terminal must not move the
#: cursor, recolour, retitle the window or hide earlier lines.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def terminal_safe(text: str) -> str:
    r"""Text with control characters shown as visible escapes (``\x1b``), never interpreted.

    >>> terminal_safe("ok\x1b[2J\x07 done")
    'ok\\x1b[2J\\x07 done'
    """
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _cell(v: Any, fmt: str | None) -> str:
    return terminal_safe(_raw_cell(v, fmt))


def _raw_cell(v: Any, fmt: str | None) -> str:
    if fmt:
        return format_value(v, fmt)
    if v is None:
        return ""
    try:
        if v != v:
            return ""
    except (TypeError, ValueError):
        return ""
    if isinstance(v, dt.datetime) and v.time() == dt.time(0):
        return v.date().isoformat()
    if hasattr(v, "isoformat"):
        s = v.isoformat()
        return s[:10] if s.endswith("T00:00:00") else s
    if isinstance(v, float):
        return format_value(v, "number")
    return str(v)


def _numeric(series: Any) -> bool:
    try:
        return series.dtype.kind in "iuf"
    except AttributeError:
        return False


def render_frame(df: Any, fmt: str = "table", formats: dict[str, str] | None = None) -> str:
    """A pandas DataFrame as text. ``formats`` maps columns to currency|percent|days|count|number
    (used by ``table``; ``csv`` and ``json`` keep raw values so they can be processed)."""
    formats = formats or {}
    if fmt not in OUTPUT_FORMATS:
        raise ConfigError(Problem(f"unknown output format '{fmt}'", hint="accepted: " + ", ".join(OUTPUT_FORMATS)))
    if fmt == "csv":
        text = safe_csv_text(df)
        return text[:-1] if text.endswith("\n") else text  # print() adds the last line end
    if fmt == "json":
        rows = [{str(k): _jsonable(v) for k, v in row.items()} for row in df.to_dict(orient="records")]
        if not rows:
            return "[]"
        return "[\n" + ",\n".join("  " + json.dumps(r, ensure_ascii=False) for r in rows) + "\n]"
    columns = [terminal_safe(str(c)) for c in df.columns]
    if not columns:
        return "(no columns)"
    cells = [[_cell(v, formats.get(c)) for v in df[c].tolist()] for c in columns]
    right = [_numeric(df[c]) or c in formats for c in columns]
    widths = [max([len(c)] + [len(x) for x in col]) for c, col in zip(columns, cells)]
    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right)).rstrip()
    out = [line(columns), "  ".join("-" * w for w in widths)]
    out += [line([col[i] for col in cells]) for i in range(len(df))]
    if len(df) == 0:
        out.append("(no rows)")
    return "\n".join(out)
