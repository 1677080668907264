"""Numbers for people: currency, percent, days, counts (used by the CLI and the app); data
shown inside Streamlit markdown, as plain text (:func:`md_escape`).

>>> format_value(1234567.8, "currency")
'$1,234,568'
>>> format_value(1234567.8, "currency", compact=True)
'$1.23M'
>>> format_value(0.2345, "percent"), format_value(12.04, "days"), format_value(3, "count")
('23.4%', '12.0 days', '3')
>>> format_value(2.364, "multiple")
'2.4×'
>>> format_value(None, "currency"), format_value(float("nan"), "count"), format_value(1, "days")
('—', '—', '1.0 day')
>>> plural(1, "day"), plural(2, "day"), plural(1_250, "deal")
('1 day', '2 days', '1,250 deals')

The gap to a target has one sign convention everywhere, said in words (:func:`gap_words`):
ahead of target or short of it, never a bare signed number.

>>> gap_words(224e6, 189e6), gap_words(8e6, 10e6), gap_words(5, 5), gap_words(None, 5)
('$35.0M ahead', '$2.00M short', 'on target', '—')

Category values for people (:func:`value_label`): a code written in lower case ("best_case",
"referral", "email_open") is shown title-cased, its acronyms upper-cased (:data:`ACRONYMS`:
"sdr" → "SDR"); a value someone wrote with a capital ("EMEA Mid-Market", "HubSpot", "A") is
shown as they wrote it.

>>> value_label("best_case"), value_label("referral"), value_label("EMEA Mid-Market"), value_label("crm_sync")
('Best Case', 'Referral', 'EMEA Mid-Market', 'CRM Sync')
>>> value_label("sdr"), value_label("b2b"), value_label("mql/sql"), value_label("HubSpot")
('SDR', 'B2B', 'MQL/SQL', 'HubSpot')

A name of a column or dimension without a label of its own (:func:`name_label`) reads as a
sentence, its acronyms upper-cased: "sdr_owner" → "SDR owner", "deal_id" → "Deal ID".
"""

from __future__ import annotations

import math
import re
from typing import Any

FORMATS = ("currency", "percent", "days", "count", "number", "multiple")
#: what a blank value (None, NaN, pd.NA) is shown as: never "nan", "None" or "$0"
MISSING = "—"


def is_missing(v: Any) -> bool:
    """None, NaN, NaT or pd.NA (what a blank cell of a query result can be)."""
    return _is_missing(v)


def plural(n: float, noun: str, nouns: str | None = None) -> str:
    """``n`` and the noun, singular for exactly one (``1 day``, ``2 days``, ``1.5 days``)."""
    text = f"{n:,.0f}" if float(n).is_integer() else f"{n:,}"
    return f"{text} {noun if n == 1 else (nouns or noun + 's')}"


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
        return f"{v:,.1f} day{'' if round(v, 1) == 1 else 's'}"
    if fmt == "multiple":  # pipeline coverage: "2.4×", never "2.36"
        return f"{v:,.1f}×"
    if fmt == "count":
        return compact_number(v) if compact and abs(v) >= 10_000 else f"{v:,.0f}"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:,.2f}"
    return f"{v:,.0f}"


def gap_parts(value: Any, target: Any, fmt: str | None = "currency") -> tuple[str, str | None]:
    """:func:`gap_words` in two parts, (the size or the whole words, the side or None), for a
    card that shows the size as its figure and the side under it.

    >>> gap_parts(224e6, 189e6), gap_parts(5, 5), gap_parts(None, 5)
    (('$35.0M', 'ahead'), ('on target', None), ('—', None))
    """
    if _is_missing(value) or _is_missing(target):
        return MISSING, None
    diff = float(value) - float(target)
    if abs(diff) < 0.5:
        return "on target", None
    return format_value(abs(diff), fmt, compact=True), "ahead" if diff > 0 else "short"


def gap_words(value: Any, target: Any, fmt: str | None = "currency") -> str:
    """How far ``value`` (a forecast) lands from ``target``, in words: "$35.0M ahead",
    "$2.00M short", "on target"; "—" when either is blank. The one way the app says a gap."""
    size, side = gap_parts(value, target, fmt)
    return f"{size} {side}" if side else size


#: words of a code that are acronyms, shown upper case ("crm_sync" → "CRM Sync", "sdr" → "SDR"):
#: sales and marketing's own (roles, segments, regions, funnel stages, channels). The one list:
#: a lower-case code word found here is an acronym wherever the app shows it. Not here: short
#: English words a code may hold ("it", "us" in "contact_us" would read "IT", "US").
ACRONYMS = frozenset({
    "abm", "ae", "ai", "anz", "apac", "api", "arr", "b2b", "b2c", "bdr", "cac", "crm", "csm", "dach", "emea", "id",
    "kpi", "latam", "ltv", "mql", "mrr", "na", "nps", "poc", "ppc", "qbr", "roi", "sal", "sdr", "sem", "seo", "sla",
    "smb", "sql", "uk", "url", "usa",
})
#: separators between the words of a code: "_" reads as a space; "/", "-" and a space are kept
_SEP = re.compile(r"([_ /-])")


def _code_words(text: str) -> list[str] | None:
    """The words and separators of a code ("mql/sql" → ["mql", "/", "sql"]), or None when
    ``text`` is not a code: every word lower-case letters (or an acronym such as "b2b"), one
    separator between two words."""
    parts = _SEP.split(text)
    words = parts[::2]
    if not all(w and ((w.isascii() and w.isalpha() and w.islower()) or w in ACRONYMS) for w in words):
        return None
    return parts


def value_label(value: Any) -> str:
    """A category value (a dimension's value: source, forecast category, status, activity
    kind, an action's team) as people read it; the one place the app turns codes into words.
    Charts, legends, grids, tables and filter options show this; URLs, query filters and
    drill state keep the raw value (a select box's ``format_func``, a chart's pick mapped
    back: :func:`label_map`).

    Only codes change: lower-case words joined by ``_``, a space, ``/`` or ``-`` are
    title-cased (``_`` becomes a space; words in :data:`ACRONYMS` upper-cased). Anything with
    a capital letter, a digit outside an acronym or other punctuation is kept as written, so
    names ("HubSpot", "EMEA Mid-Market") and ids ("d000123") are never touched. A blank is "—".

    >>> value_label("pipeline"), value_label("closed_won"), value_label("d000123"), value_label("(none)")
    ('Pipeline', 'Closed Won', 'd000123', '(none)')
    >>> value_label(None), value_label(3), value_label("Q3 2026"), value_label("existing customer")
    ('—', '3', 'Q3 2026', 'Existing Customer')
    >>> value_label("emea_smb"), value_label("self-serve"), value_label("ae"), value_label("na")
    ('EMEA SMB', 'Self-Serve', 'AE', 'NA')
    """
    if _is_missing(value):
        return MISSING
    text = str(value)
    parts = _code_words(text)
    if parts is None:
        return text
    return "".join(" " if p == "_" else p if p in " /-" else p.upper() if p in ACRONYMS else p.capitalize()
                   for p in parts)


def name_label(name: str) -> str:
    """A column or dimension name as a heading, when it has no label of its own: a sentence
    (first word capitalised), ``_`` as spaces, acronyms upper-cased (:data:`ACRONYMS`).

    >>> name_label("sdr_owner"), name_label("deal_id"), name_label("days_in_stage"), name_label("crm")
    ('SDR owner', 'Deal ID', 'Days in stage', 'CRM')
    """
    words = [w.upper() if w in ACRONYMS else w for w in name.split("_") if w]
    if words and words[0] == words[0].lower():
        words[0] = words[0].capitalize()
    return " ".join(words)


def label_map(values: Any) -> dict[str, str]:
    """``{shown label: raw value}`` for values shown through :func:`value_label`: what a click
    on a chart (which sees the labels) maps back to for the URL and the queries. The first raw
    value keeps a label two values share.

    >>> label_map(["best_case", "commit", "Commit"])
    {'Best Case': 'best_case', 'Commit': 'commit'}
    """
    out: dict[str, str] = {}
    for v in values:
        if not _is_missing(v):
            out.setdefault(value_label(v), str(v))
    return out


def d3_format(fmt: str | None) -> str:
    """A d3/Vega number format for chart axes and tooltips."""
    # "~": no needless trailing zeros (a days axis reads 200, 12.5 — not 200.0)
    return {"currency": "$,.3~s", "percent": ".0%", "days": ",.1~f", "count": ",.0f",
            "multiple": ",.1~f"}.get(fmt or "", ",.4~g")


def axis_label_expr(fmt: str | None) -> str | None:
    """A Vega label expression that writes compact axis numbers the way the KPI cards do
    ($200K, $1.5M, $2B), not d3's SI letters ($200k, $2G); counts as the cards write them
    (1,500 below ten thousand, 12K from there); None for other formats.

    >>> axis_label_expr("currency")
    "replace(replace(format(datum.value, '$,.3~s'), 'k', 'K'), 'G', 'B')"
    """
    if fmt == "currency":
        return "replace(replace(format(datum.value, '$,.3~s'), 'k', 'K'), 'G', 'B')"
    if fmt == "count":
        return ("abs(datum.value) >= 10000 ? replace(replace(format(datum.value, ',.3~s'), 'k', 'K'), 'G', 'B') "
                ": format(datum.value, ',.0f')")
    return None


def d3_tooltip_format(fmt: str | None) -> str:
    return {"currency": "$,.0f", "percent": ".1%", "days": ",.1f", "count": ",.0f",
            "multiple": ",.1f"}.get(fmt or "", ",.2f")


# Everything Streamlit's markdown gives a meaning to: CommonMark/GFM (emphasis, links, images,
# code, headings, lists, tables, strikethrough, HTML and entities like &lt;), Streamlit's
# directives (:red[…], :material/icon:, emoji :smile:) and LaTeX ($…$). Backslash escapes work
# for any ASCII punctuation, so escaping too much is harmless.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~:$&])")
_MD_BREAKS = re.compile(r"[\r\n\t\v\f\u2028\u2029]+")
# GFM "autolink literals" (https://…, www.…, name@host.tld) and Streamlit's icons
# (:material/name:) are found in the text *after* escapes are resolved, so backslashes do not
# stop them: an invisible WORD JOINER (U+2060) in the middle of the pattern does (checked in
# Chromium by tests/browser/test_markdown_escape.py). The text looks the same; a copied URL
# no longer works.
_AUTOLINK = re.compile(r"(?i)(?:(?<=https:)|(?<=http:))(?=//)|(?<=www)(?=\.)|(?<=[-.\w+])(?=@[-\w]+\.)"
                       r"|(?<=:)(?=material/)")
WORD_JOINER = "\u2060"


def md_escape(value: Any) -> str:
    r"""Any value as plain text inside Streamlit markdown (``st.markdown``, ``st.caption``,
    ``st.error``, widget labels): a team, rep or deal name, a value from the URL or an error
    message shows literally and cannot add links, formatting, colours, icons or LaTeX.

    Bare URLs and e-mail addresses do not become links, nor ``:material/…:`` an icon (an
    invisible U+2060 is put inside them). Line breaks become spaces (a value stays inside the sentence it is put in:
    a newline could start a heading or a list) and leading/trailing spaces become ``&#32;``
    (four leading spaces would start a code block, a space inside ``**…**`` undoes the bold).
    ``None`` is empty.

    >>> show = lambda text: print(text.replace(WORD_JOINER, "<WJ>"))
    >>> show(md_escape("[Session expired - sign in](https://evil.example)"))
    \[Session expired \- sign in\]\(https\:<WJ>//evil\.example\)
    >>> print(md_escape(":red[alert] $x^2$ **bold** <b>hi</b>"))
    \:red\[alert\] \$x^2\$ \*\*bold\*\* \<b\>hi\</b\>
    >>> show(md_escape("www.evil.example mail@evil.example"))
    www<WJ>\.evil\.example mail<WJ>@evil\.example
    >>> print(md_escape("EMEA Enterprise"), md_escape(3), repr(md_escape(None)))
    EMEA Enterprise 3 ''
    >>> print(md_escape("  # two\nlines "))
    &#32;&#32;\# two lines&#32;
    """
    if value is None:
        return ""
    text = _AUTOLINK.sub(WORD_JOINER, _MD_BREAKS.sub(" ", str(value)))
    text = _MD_SPECIAL.sub(r"\\\1", text)
    core = text.strip(" ")
    if not core:
        return "&#32;" * len(text)
    lead = len(text) - len(text.lstrip(" "))
    trail = len(text) - len(text.rstrip(" "))
    return "&#32;" * lead + core + "&#32;" * trail


def file_size(n: int) -> str:
    """Bytes for people (database files, input files in ingest messages).

    >>> file_size(512), file_size(3_400_000), file_size(3_500_000_000)
    ('512 B', '3.2 MiB', '3.3 GiB')
    """
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"
