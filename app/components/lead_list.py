"""Lead lists: score, grade, source, owner and why the score is what it is, the totals above.

Any dashboard table whose rows are leads (a ``lead_id`` column, no ``deal_id``) is drawn here:
the Leads page's hottest open leads. Columns lead with the score, grade, source, owner and the
scorecard's explanation ("Score 60: 1,000+ employees +25, Target industry +10, …"), then the rest
as the YAML lists them. The rows are leads, so a metric's column would be the same count on each
row: metrics choose which leads are listed (a lead no metric counts is not) and are said as
``totals`` above, not as columns. On a phone the grid becomes a list, one lead per item, so the
explanation is read whole rather than cut off in a 390 px grid.

>>> ordered(["lead_id", "rep", "lead_score_explanation", "lead_score", "industry"])
['lead_score', 'rep', 'lead_score_explanation', 'lead_id', 'industry']
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from pipelinebi.formatting import is_missing, md_escape, plural, value_label

from . import deal_list, narrow, ui

#: what an SDR reads first, in this order (those the table has)
LEAD = ("lead_score", "lead_grade", "source", "rep", "lead_score_explanation", "lead_id")
ROW = 66  #: px: two lines of text per row
PHONE = 10  #: leads listed on a phone before "N more leads"


def ordered(columns: list[str]) -> list[str]:
    """``LEAD`` columns first, the rest as given."""
    return [c for c in LEAD if c in columns] + [c for c in columns if c not in LEAD]


def render(layer: Any, df: pd.DataFrame, *, key: str, metrics: list[str], totals: dict[str, Any] | None = None,
           complete: bool = True) -> None:
    """The leads in ``df`` (one row each), ``totals`` (metric -> value over every lead the
    filters select) above them; ``complete``: every such lead is listed."""
    head = deal_list.totals_line(layer, totals) if totals else ""
    listed = f"{plural(len(df), 'lead')} listed" + ("" if complete else ", the first by the list's order")
    st.markdown(":material/functions: " + " · ".join(x for x in (head, listed) if x))
    out = df[ordered([c for c in df.columns if c not in metrics])].reset_index(drop=True)
    shown, as_text = ui.display_frame(layer, out)
    config = ui.column_config(layer, shown.columns, as_text)
    if "rep" in shown:
        config["rep"] = st.column_config.TextColumn("Owner", help="The rep who owns the lead")
    if "lead_score" in shown and "lead_score" not in as_text:
        config["lead_score"] = st.column_config.NumberColumn("Score", format="%d",
                                                             help="Fit and engagement points (the lead scorecard)")
    if "lead_grade" in shown:
        config["lead_grade"] = st.column_config.TextColumn("Grade", help="A hot, B warm, C cold")
    # rows tall enough for two lines: the grid wraps text only then (Streamlit: row height over 4rem),
    # and an explanation is longer than any column can be wide
    h = min(38 + ROW * len(shown), 38 + ROW * 9)
    with narrow.wide(key):
        st.dataframe(shown, hide_index=True, width="stretch", height=h, row_height=ROW, column_config=config, key=key)
    with narrow.narrow(key):
        phone(out, key=f"{key}-phone")


def phone(out: pd.DataFrame, *, key: str) -> None:
    """One lead per item: "**A** · Referral · Jamal Lopez · L004034" over its explanation
    (which starts with the score), every value escaped; the first ``PHONE`` on the page, the
    rest behind "N more leads" (a box of its own to scroll would be out of a keyboard's reach)."""
    lines = []
    for row in out.to_dict("records"):
        what = [value_label(row[c]) for c in ("lead_grade", "source", "rep", "lead_id") if c in row and not is_missing(row[c])]
        why = row.get("lead_score_explanation")
        if is_missing(why):
            why = f"Score {row['lead_score']}" if not is_missing(row.get("lead_score")) else ""
        first, *rest = what or [""]
        lines.append(f"- **{md_escape(first)}**" + "".join(f" · {md_escape(w)}" for w in rest)
                     + (f"  \n  {md_escape(why)}" if why else ""))
    st.markdown("\n".join(lines[:PHONE]))
    if len(lines) > PHONE:
        with st.expander(f"{plural(len(lines) - PHONE, 'more lead')}", key=f"{key}-more"):
            st.markdown("\n".join(lines[PHONE:]))
