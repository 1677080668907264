"""Deal cards for the deal board, as HTML: a column of cards is one ``st.html`` block.

Why HTML and not Streamlit elements: a board of 70 cards drawn as a bordered box and its
markdown each is 140 elements that the browser renders again at every rerun (~5 s of browser
CPU at 1M deals, measured with benchmarks/bench_browser.py); one block per column is 7.
Every value from the data is escaped (``html.escape``), and ``st.html`` sanitises what is left.

>>> d = pd.Series({"deal_name": "Acme - <b>Big</b>", "account": "Acme", "rep": "Ann", "amount": 1200.0,
...                "close_date": pd.Timestamp("2027-01-05"), "days_in_stage": 3.0, "is_top20": True})
>>> print(card_html(d, 10.0, as_of=pd.Timestamp("2026-12-01").date()))
<div class="pbi-card"><strong>$1,200</strong> <span class="pbi-badge pbi-violet">★ top 20%</span><br>Acme<br><span class="pbi-muted">&lt;b&gt;Big&lt;/b&gt; · Ann · closes 05 Jan 2027</span><br><span class="pbi-badge pbi-green">✓ 3 days in stage</span></div>
"""

from __future__ import annotations

import html

import pandas as pd

from pipelinebi.formatting import format_value, is_missing, plural

#: badge colours: (text, background) per theme, WCAG AA against the card in light and dark
_BADGES = {"green": ("#1b6e2e", "#e6f4ea", "#8fe0a8"), "orange": ("#8a4b00", "#fff1e0", "#ffc47a"),
           "red": ("#b3261e", "#fdecea", "#ff9a90"), "gray": ("#4a5260", "#eef0f3", "#c9ced6"),
           "violet": ("#6a2fb5", "#f1eafd", "#d2b8ff"), "blue": ("#1f5fcc", "#e8f0fe", "#a8c6ff")}
CARD_CSS = "<style>\n" + """
.pbi-card { border: 1px solid light-dark(rgba(49, 51, 63, 0.2), rgba(250, 250, 250, 0.2)); border-radius: 0.5rem;
  padding: 0.6rem 0.75rem; margin: 0 0 0.5rem 0; line-height: 1.45; font-size: 0.92rem; overflow-wrap: anywhere; }
.pbi-card .pbi-muted { opacity: 0.8; }
.pbi-card .pbi-small { font-size: 0.8rem; opacity: 0.85; margin-top: 0.2rem; }
.pbi-badge { display: inline-block; border-radius: 0.25rem; padding: 0 0.35rem; font-size: 0.85rem; margin-top: 0.2rem; }
""" + "".join(f".pbi-{name} {{ color: light-dark({fg}, {dark}); background: light-dark({bg}, rgba(255, 255, 255, 0.08)); }}\n"
              for name, (fg, bg, dark) in _BADGES.items()) + "</style>"


def _badge(colour: str, text: str) -> str:
    return f'<span class="pbi-badge pbi-{colour}">{html.escape(text)}</span>'


def card_html(d: pd.Series, median: float | None, judged: bool = True, as_of=None) -> str:
    """One deal's card (every value from the data escaped): amount and the top-20% badge,
    account, deal · owner · close date, the model's win probability and its reasons, days in
    stage against the stage's median visit (colour, an icon and words: colour is never the
    only signal; grey without a norm or when ``judged`` is false) and why the high-value
    score is what it is."""
    account = _text(d.get("account"))
    name = _text(d.get("deal_name")) or _text(d.get("deal_id"))
    if account and name.startswith(account):
        name = name[len(account):].lstrip(" -–") or name
    amount = d.get("amount") if "amount" in d else d.get("pipeline_amount")
    head = f"<strong>{html.escape(format_value(amount, 'currency'))}</strong>"
    if _flag(d.get("is_top20")):
        head += " " + _badge("violet", "★ top 20%")
    when = ""
    if "close_date" in d:
        close = None if is_missing(d.get("close_date")) else pd.Timestamp(d["close_date"])
        # a close date already behind the data's as-of date is overdue: said, not just dated
        when = ("no close date" if close is None else
                f"overdue, was due {close:%d %b %Y}" if as_of is not None and close.date() < as_of else
                f"closes {close:%d %b %Y}")
    details = " · ".join(html.escape(x) for x in (name, _text(d.get("rep")), when) if x)
    lines = [head, html.escape(account) if account else '<em class="pbi-muted">no account</em>',
             f'<span class="pbi-muted">{details}</span>']
    score = d.get("win_score")
    if not is_missing(score):  # the learned model's win probability and the inputs that moved it most
        lines.append(_badge("blue", str(score)))
    days = d.get("days_in_stage")
    if not is_missing(days):
        if not judged or median is None:
            color = "gray"  # no norm to judge against: neither good nor bad
        elif _flag(d.get("is_stalled")):
            color = "red"
        else:
            color = "orange" if days > median else "green"
        # the word and the icon say what the colour says
        sign = {"gray": "■", "red": "⚠", "orange": "◷", "green": "✓"}[color]
        lines.append(_badge(color, f"{sign} {plural(round(days), 'day')} in stage"))
    why = _text(d.get("hv_explanation"))
    body = "<br>".join(lines)
    if why:  # the high-value score and the rules behind it (scorecard high_value)
        body += f'<div class="pbi-small">{html.escape(why.replace("Score ", "High-value score ", 1))}</div>'
    return f'<div class="pbi-card">{body}</div>'


def _text(v) -> str:
    """A blank (None, NaN) as empty text, never "nan"/"None"."""
    return "" if is_missing(v) else str(v)


def _flag(v) -> bool:
    return False if is_missing(v) else bool(v)
