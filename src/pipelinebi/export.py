"""CSV that is safe to open in a spreadsheet (CLI ``query --format csv`` and the app's downloads).

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and, in some of them,
tab or carriage return) as a formula: a deal named ``=HYPERLINK("https://evil.example", "ok")``
becomes a live link, ``=cmd|' /C calc'!A0`` a command prompt (OWASP "CSV injection"). Every
export goes through :func:`safe_csv_text` / :func:`safe_csv`, which follow OWASP:

* **text** cells are always wrapped in double quotes (inner quotes doubled), so a comma,
  semicolon, quote or line break in the data cannot start a new cell;
* a text cell that starts with one of those characters, or where one follows a separator or a
  quote (``Acme;=1+2``: a reader that splits on ``;`` would see ``=1+2`` start a cell), gets a
  single quote ``'`` in front — spreadsheets then show it as text. Spaces before the character
  are looked through, as some readers trim them;
* **numbers, booleans and dates are written as they are**: a numeric column's ``-5`` stays
  ``-5``. Only Python/pandas *strings* are text. A string ``"-5"`` in a text column is text
  (a name, a code): it is prefixed like any other text, as OWASP says — a spreadsheet would
  otherwise turn it into a number, or ``-1+2`` into a formula;
* missing values (None, NaN, NaT) are empty cells; the header is treated as text.

>>> import pandas as pd
>>> df = pd.DataFrame({"account": ["=HYPERLINK(\\"http://x\\")", "Acme, Inc.", None],
...                    "amount": [-5.0, 1200.5, None], "deals": [-3, 0, 7]})
>>> print(safe_csv_text(df), end="")
"account","amount","deals"
"'=HYPERLINK(""http://x"")",-5.0,-3
"Acme, Inc.",1200.5,0
,,7
>>> safe_csv(df.head(1))[:10]
b'"account",'
"""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal
from numbers import Integral, Real
from typing import Any

import numpy as np

#: first characters a spreadsheet may run as a formula (OWASP)
FORMULA_TRIGGERS = "=+-@\t\r"

# A trigger at the start of the cell or right after a separator/quote (spaces looked through;
# tab and CR are triggers themselves, so only plain spaces are skipped).
_DANGEROUS = re.compile(r"(?:^|[,;\"'])[ ]*[=+\-@\t\r]")


def neutralise(text: str) -> str:
    """``text`` with a ``'`` in front when a spreadsheet could run it as a formula.

    >>> neutralise("=1+2"), neutralise("-5"), neutralise("@SUM(A1)"), neutralise("\\tx")
    ("'=1+2", "'-5", "'@SUM(A1)", "'\\tx")
    >>> neutralise('Acme";=1+2'), neutralise("x; -1")
    ('\\'Acme";=1+2', "'x; -1")
    >>> neutralise("Acme - West"), neutralise("Acme, Inc."), neutralise("")
    ('Acme - West', 'Acme, Inc.', '')
    """
    return "'" + text if _DANGEROUS.search(text) else text


def _text(text: str) -> str:
    return '"' + neutralise(text).replace('"', '""') + '"'


def _missing(v: Any) -> bool:
    if v is None:
        return True
    try:
        return bool(v != v)  # NaN, NaT
    except (TypeError, ValueError):
        return True  # pd.NA refuses bool()


def _cell(v: Any) -> str:
    if isinstance(v, str):
        return _text(v)
    if _missing(v):
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "True" if v else "False"
    if isinstance(v, Integral):
        return str(int(v))
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, Real):
        f = float(v)
        return repr(f) if math.isfinite(f) else ("inf" if f > 0 else "-inf")
    if isinstance(v, dt.datetime):  # before date: a datetime is a date
        return v.date().isoformat() if v.time() == dt.time(0) and v.tzinfo is None else v.isoformat(sep=" ")
    if isinstance(v, dt.date):
        return v.isoformat()
    # anything else (intervals, lists, structs, UUIDs) is shown as its text, so it is text
    return _text(str(v))


def safe_csv_text(df: Any) -> str:
    """A pandas DataFrame as spreadsheet-safe CSV text (``\\n`` line ends, header first).

    >>> import pandas as pd
    >>> print(safe_csv_text(pd.DataFrame({"code": ["-5", "+1", "ok"], "n": [-5, 1, 2]})), end="")
    "code","n"
    "'-5",-5
    "'+1",1
    "ok",2
    """
    lines = [",".join(_text(str(c)) for c in df.columns)] if len(df.columns) else []
    columns = [[_cell(v) for v in df.iloc[:, i].tolist()] for i in range(df.shape[1])]
    lines += [",".join(row) for row in zip(*columns)]
    return "".join(line + "\n" for line in lines)


def safe_csv(df: Any) -> bytes:
    """:func:`safe_csv_text` as UTF-8 bytes (the app's "Download CSV")."""
    return safe_csv_text(df).encode("utf-8")
