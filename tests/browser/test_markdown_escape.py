"""``md_escape`` against Streamlit's real markdown renderer: hostile values in every place the
app puts data into markdown (markdown, caption, alerts, a colour directive, bold, button labels,
segmented-control options) render as their literal text — no link, no LaTeX, no colour, no
icon, no HTML. AppTest only sees the markdown source; what the text *becomes* is the browser's
business, so it is checked here."""

from __future__ import annotations

import json
import textwrap

import pytest

from browser_helpers import StreamlitServer, wait_for_app
from pipelinebi.formatting import WORD_JOINER

PAYLOADS = [
    "[Session expired - sign in](https://evil.example)",
    "![img](https://evil.example/x.png)",
    "https://evil.example and www.evil.example and mail@evil.example",
    ":red[alert] :material/warning: :smile: $x^2$ $$y$$",
    "**bold** _it_ ~~gone~~ `code` <b>html</b> &lt;amp&gt;",
    "# heading",
    "    indented code",
    "a | b\n--- | ---",
    "back\\slash \\[x\\]",
]


@pytest.fixture
def escape_app(tmp_path):
    script = tmp_path / "escape_app.py"
    script.write_text(textwrap.dedent(f'''
        import streamlit as st
        from pipelinebi.formatting import md_escape

        payloads = {json.dumps(PAYLOADS)}
        st.title("escape test")
        for i, p in enumerate(payloads):
            with st.container(key=f"case{{i}}"):
                e = md_escape(p)
                st.markdown(e)
                st.markdown(f"**{{e}}**")
                st.markdown(f":gray[{{e}} · x]")
                st.caption(e)
                st.error(e)
                st.button(e, key=f"b{{i}}")
                st.segmented_control("pick", [p], format_func=md_escape, key=f"s{{i}}")
    '''))
    with StreamlitServer(script, cwd=tmp_path) as url:
        yield url


def _flat(text: str) -> str:
    """Rendered text compared with the payload: whitespace runs collapse in HTML, and the
    invisible word joiners md_escape puts inside bare URLs are not part of what one reads."""
    return " ".join(text.replace(WORD_JOINER, "").split())


def test_hostile_values_render_as_their_text(page, escape_app, screenshot_dir):
    page.goto(escape_app)
    page.get_by_role("heading", name="escape test").wait_for(timeout=60_000)
    wait_for_app(page)
    main = page.get_by_test_id("stMain")
    # nothing became a link, an image, LaTeX, HTML, a heading or a code block
    for selector in ("a[href*='evil']", "img[src*='evil']", ".katex", "b", "h1:not(:has-text('escape test'))",
                     "pre", "table", "del", "em", "code"):
        assert main.locator(selector).count() == 0, selector
    for i, p in enumerate(PAYLOADS):
        case = page.locator(f".st-key-case{i}")
        want = _flat(p)
        texts = [_flat(t) for t in case.get_by_test_id("stMarkdownContainer").all_inner_texts()]
        # markdown, bold, directive ("… · x"), caption, error, button label, option label
        assert texts.count(want) >= 5 and f"{want} · x" in texts, (p, texts)
        assert _flat(case.get_by_test_id("stButton").inner_text()) == want
    page.screenshot(path=screenshot_dir / "markdown_escape.png", full_page=True)
