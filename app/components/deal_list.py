"""Deal lists: the columns a manager acts on first, totals above, a link to the CRM record.

Any table whose rows are deals (it has a ``deal_id`` column) is drawn here: the Bottlenecks
lists (stalled, moved back) and the Forecast drill's deal level. Columns lead with deal,
amount, stage, days in stage against the stage norm, close date, pushes and owner, then the
rest as the YAML lists them; a ``win_score`` column (the learned model's win probability and
its reasons) only when some listed deal has one. With ``PIPELINEBI_CRM_DEAL_URL`` set, a "CRM" column links each
deal to its record (the id percent-encoded into the template; the grid draws the link as text
on a canvas, so nothing in a name or id becomes markup).

>>> against_norm(34.2, 21.0)
'13 days over (norm 21)'
>>> against_norm(5, 21.0)
'within (norm 21)'
>>> against_norm(5, None)
'no norm'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from pipelinebi.crm_links import deal_url
from pipelinebi.formatting import MISSING, format_value, is_missing, md_escape, plural

from . import data, memo, narrow, ui

#: what a manager acts on, in this order (those the table has)
LEAD = ("deal_name", "amount", "stage", "days_in_stage", "stage_norm_days", "close_date", "deal_pushes", "rep",
        "hv_explanation", "win_score")
LINK = "__crm"
NORM = "__norm"


def against_norm(days: Any, norm: Any) -> str:
    """Days in stage said against the stage norm, in words (colour is never the only signal)."""
    if is_missing(days):
        return MISSING
    if is_missing(norm):
        return "no norm"
    over = float(days) - float(norm)
    return f"{plural(round(over), 'day')} over (norm {float(norm):.0f})" if over > 0 else f"within (norm {float(norm):.0f})"


def ordered(columns: list[str]) -> list[str]:
    """``LEAD`` columns first, the rest as given.

    >>> ordered(["deal_id", "rep", "amount", "deal_name", "stalled_amount"])
    ['deal_name', 'amount', 'rep', 'deal_id', 'stalled_amount']
    """
    return [c for c in LEAD if c in columns] + [c for c in columns if c not in LEAD]


def totals_line(layer: Any, totals: dict[str, Any]) -> str:
    """'Stalled deals **37** · Stalled amount **$2.41M**' (markdown, values escaped)."""
    return " · ".join(f"{md_escape(ui.metric_label(layer, m))} **{md_escape(ui.fmt(layer, m, v))}**"
                      for m, v in totals.items())


def render(layer: Any, df: pd.DataFrame, *, key: str, totals: dict[str, Any] | None = None,
           complete: bool = True, height: int | str | None = None, source: tuple | None = None) -> None:
    """The deals in ``df`` (one row each), ``totals`` (metric -> value over every deal the
    filters select) above them; ``complete``: every such deal is listed (else the caption says
    how many are). ``source``: what ``df`` is made from (the answer's SQL and how it was
    narrowed): the list as shown is then prepared once and kept across reruns (:mod:`memo`)."""
    template = data.snapshot().settings.crm_deal_url
    prepare = lambda: _prepared(layer, df, totals, complete, height, template)  # noqa: E731
    p = memo.kept("deal list", prepare, source, totals, complete, height, template) if source is not None else prepare()
    st.markdown(p.head)
    with narrow.wide(key):
        st.dataframe(p.shown, hide_index=True, width="stretch", height=p.height, column_config=p.config, key=key)
    with narrow.narrow(key):
        st.dataframe(p.phone, hide_index=True, width="stretch", height=p.height, column_config=p.phone_config,
                     key=f"{key}-phone")
        if p.rest:  # under the grid: above it, the grid's own toolbar (shown on a tap) covered it
            st.caption(p.rest)


@dataclass(frozen=True)
class _Prepared:
    """A deal list as drawn: the line above it, the wide grid and the phone's (Arrow tables)."""

    head: str
    shown: Any
    config: dict
    phone: Any
    phone_config: dict
    rest: str
    height: int | str


def _prepared(layer: Any, df: pd.DataFrame, totals: dict[str, Any] | None, complete: bool,
              height: int | str | None, template: str | None) -> _Prepared:
    head = totals_line(layer, totals) if totals else ""
    listed = f"{plural(len(df), 'deal')} listed" + ("" if complete else ", the first by the list's order")
    if complete and "amount" in df and not totals:
        head = f"{plural(len(df), 'deal')} · **{md_escape(format_value(pd.to_numeric(df['amount'], errors='coerce').sum(), 'currency', compact=True))}**"
        listed = ""
    cols = ordered(list(df.columns))
    if "win_score" in cols and df["win_score"].map(is_missing).all():
        cols.remove("win_score")  # no model trained (or none of these deals open): no empty column
    out = df[cols].copy()
    if "days_in_stage" in out:
        out["days_in_stage"] = pd.to_numeric(out["days_in_stage"], errors="coerce").round()
    if "stage_norm_days" in out:
        out[NORM] = [against_norm(d, n) for d, n in zip(df.get("days_in_stage", [None] * len(df)), df["stage_norm_days"])]
        out = out.drop(columns="stage_norm_days")
        at = list(out.columns).index("days_in_stage") + 1 if "days_in_stage" in out else 0
        out.insert(at, NORM, out.pop(NORM))
    if template and "deal_id" in df:
        out.insert(1 if "deal_name" in out else 0, LINK, [deal_url(template, v) for v in df["deal_id"]])
    shown, as_text = ui.display_frame(layer, out.reset_index(drop=True))
    config = ui.column_config(layer, [c for c in shown.columns if c not in (LINK, NORM)], as_text)
    config[NORM] = st.column_config.TextColumn("Against norm", help="Days in the current stage against its norm "
                                               "(the stalled threshold: historical 75th percentile)")
    if LINK in shown:
        config[LINK] = st.column_config.LinkColumn("CRM", display_text="Open ↗", help="The deal's record in the CRM")
    if "days_in_stage" in shown and "days_in_stage" not in as_text:
        config["days_in_stage"] = st.column_config.NumberColumn("Days in stage", format="%d days")
    if "deal_pushes" in shown and "deal_pushes" not in as_text:
        config["deal_pushes"] = st.column_config.NumberColumn("Pushes", format="%d",
                                                              help="Times the close date was moved later")
    for c in shown.columns:  # large amounts: no cents; compact (294K), the unit in the header
        m = layer.metrics.get(c)
        if c not in as_text and (c == "amount" or (m is not None and m.format == "currency")):
            config[c] = st.column_config.NumberColumn(f"{m.label if m is not None else 'Amount'} ($)", format="compact",
                                                      help=(m.description or None) if m is not None else None)
    h = height or min(38 + 35 * len(shown), 420)
    phone_cols, phone_config, rest = phone(shown, config, as_text)
    return _Prepared(":material/functions: " + " · ".join(x for x in (head, listed) if x), memo.arrow(shown), config,
                     memo.arrow(shown[phone_cols]), phone_config, rest, h)


#: a phone's deal list: what fits 358 px (390 less the page's margins) side by side, widths in px
PHONE = {"deal_name": 126, "deal_id": 126, "amount": 78, "stage": 84, "close_date": 64}


def phone(shown: pd.DataFrame, config: dict[str, Any], as_text: list[str]) -> tuple[list[str], dict[str, Any], str]:
    """The deal list on a phone (shown instead of the wide grid below 640 px): deal, amount,
    stage and close date fit the screen without scrolling sideways; the caption (third) says
    where the other columns are. Returns (its columns, their config, the caption or "")."""
    name = "deal_name" if "deal_name" in shown else "deal_id"
    amount = next((c for c in shown.columns if str((config.get(c) or {}).get("label", "")).endswith("($)")), None)
    cols = [c for c in (name, amount, "stage", "close_date") if c and c in shown]
    cfg = {c: {**(config.get(c) or {}), "width": PHONE["amount"] if c == amount else PHONE.get(c, 62)} for c in cols}
    if "close_date" in cfg and "close_date" not in as_text:  # "2 Jan 27": a date in 64 px
        cfg["close_date"] = {**st.column_config.DateColumn("Close", format="D MMM YY"), "width": PHONE["close_date"]}
    rest = [c for c in shown.columns if c not in cols and c != LINK]
    return cols, cfg, (f"{len(rest)} more column{'s' if len(rest) > 1 else ''} (days in stage, owner…) on a wider screen "
                       "or with the phone turned sideways." if rest else "")
