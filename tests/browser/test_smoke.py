"""The browser tier itself works: Streamlit serves, Chromium renders an Altair chart as SVG,
clicking a bar reruns the script with the selection. Independent of the real app."""

from __future__ import annotations

import re
import textwrap

import pytest

from browser_helpers import StreamlitServer, wait_for_app

SCRIPT = textwrap.dedent('''
    import altair as alt
    import pandas as pd
    import streamlit as st

    st.title("PipelineBI browser smoke test")
    df = pd.DataFrame({"stage": ["Prospecting", "Qualified", "Negotiation", "Won"],
                       "amount": [400, 300, 200, 100]})
    pick = alt.selection_point(name="pick", fields=["stage"])
    chart = (alt.Chart(df).mark_bar()
             .encode(x="stage:N", y="amount:Q",
                     opacity=alt.condition(pick, alt.value(1.0), alt.value(0.3)))
             .add_params(pick))
    event = st.altair_chart(chart, on_select="rerun", key="bars", width="stretch")
    picked = event.selection.get("pick") or []
    st.write("Selected stage: " + (picked[0]["stage"] if picked else "none"))
''')


@pytest.fixture
def smoke_app(tmp_path):
    script = tmp_path / "smoke_app.py"
    script.write_text(SCRIPT)
    with StreamlitServer(script, cwd=tmp_path) as url:
        yield url


def test_click_bar_selects_stage(page, smoke_app, screenshot_dir):
    page.goto(smoke_app)
    page.get_by_text("PipelineBI browser smoke test").wait_for()
    wait_for_app(page)
    page.get_by_text("Selected stage: none").wait_for()

    bar = page.get_by_test_id("stVegaLiteChart").locator("g.mark-rect path").first
    label = bar.get_attribute("aria-label") or ""
    stage = re.search(r"stage: ([^;]+)", label).group(1)
    assert stage in {"Prospecting", "Qualified", "Negotiation", "Won"}, label

    bar.click()
    page.get_by_text(f"Selected stage: {stage}").wait_for(timeout=15_000)
    wait_for_app(page)
    page.screenshot(path=screenshot_dir / "smoke_bar_selected.png", full_page=True)
