"""#14 phone: deal lists fit a 390 px screen — deal, amount, stage and close date side by side,
no sideways scrolling (usable one-handed); on a desktop the full list shows instead."""

from __future__ import annotations

from browser_helpers import settle

#: the grids' own scroller: wider content than its box means scrolling sideways
WIDTHS = """() => [...document.querySelectorAll('[data-testid=stDataFrame]')]
    .filter(g => g.offsetParent !== null && g.closest('[class*="st-key-narrow-"], [class*="st-key-wide-"]'))
    .map(g => { const s = g.querySelector('.dvn-scroller');
                // where "N more columns … turned sideways" is, against the grid (its toolbar sits above it)
                const box = g.closest('[class*="st-key-narrow-"], [class*="st-key-wide-"]');
                const note = [...(box ? box.querySelectorAll('[data-testid=stCaptionContainer]') : [])]
                    .find(c => c.textContent.includes('turned sideways'));
                return {narrow: !!g.closest('[class*="st-key-narrow-"]'), box: g.getBoundingClientRect().right,
                        scroll: s ? s.scrollWidth : null, client: s ? s.clientWidth : null,
                        bottom: g.getBoundingClientRect().bottom,
                        note: note ? note.getBoundingClientRect().top : null}; })"""


def _grids(browser, app_server, viewport):
    context = browser.new_context(viewport=viewport, is_mobile=viewport["width"] < 500,
                                  has_touch=viewport["width"] < 500)
    page = context.new_page()
    try:
        page.goto(f"{app_server}/bottlenecks")
        page.get_by_role("heading", name="Stalled deals").first.wait_for(timeout=60_000)
        page.wait_for_function(f"() => ({WIDTHS})().length >= 2", timeout=60_000)  # the grids mount after the run
        settle(page)  # and are painted and still before they are measured
        return page.evaluate(WIDTHS)
    finally:
        context.close()


def test_deal_lists_fit_a_phone(browser, app_server):
    grids = _grids(browser, app_server, {"width": 390, "height": 844})
    assert grids and all(g["narrow"] for g in grids), grids  # the phone lists, not the wide ones
    for g in grids:
        assert g["box"] <= 390, g
        assert g["scroll"] is not None and g["scroll"] <= g["client"] + 1, g  # nothing to scroll sideways
    # the note on the other columns is under its grid, where the grid's toolbar cannot cover it
    noted = [g for g in grids if g["note"] is not None]
    assert noted and all(g["note"] >= g["bottom"] for g in noted), grids


def test_desktop_shows_the_full_lists(browser, app_server):
    grids = _grids(browser, app_server, {"width": 1440, "height": 900})
    assert grids and not any(g["narrow"] for g in grids), grids
