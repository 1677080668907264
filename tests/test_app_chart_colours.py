"""#14 colour-blind-safe charts on every page: no red–green colour scheme (a heatmap's
"redyellowgreen", "spectral") and no chart that tells two things apart by a red and a green
(the 8 % of men with red–green colour blindness see one colour). Read from the Vega-Lite
specs each page sends to the browser; hues computed here with colorsys, not the app's code."""

from __future__ import annotations

import colorsys
import json
import re

import pytest

from app_support import PAGES, app_test, chart_frames

#: Vega colour schemes that put red against green
RED_GREEN_SCHEMES = {"redyellowgreen", "redgreen", "greenred", "spectral", "rdylgn", "rdgy"}
HEX = re.compile(r"#[0-9a-fA-F]{6}\b")


def _hue(colour: str) -> tuple[float, float, float]:
    r, g, b = (int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
    h, light, s = colorsys.rgb_to_hls(r, g, b)
    return h * 360, s, light


def _red(colour: str) -> bool:
    h, s, light = _hue(colour)
    return (h < 15 or h > 345) and s > 0.4 and 0.2 < light < 0.8


def _green(colour: str) -> bool:
    h, s, light = _hue(colour)
    return 75 < h < 150 and s > 0.4 and 0.2 < light < 0.8


def test_the_hue_checks_themselves():
    assert _red("#d62728") and _green("#2ca02c") and _green("#00ff00")
    assert not _red("#d55e00") and not _green("#009e73") and not _red("#2f6fde")  # Okabe–Ito vermillion, bluish green


@pytest.mark.parametrize("slug", PAGES)
def test_no_chart_tells_red_from_green(env, slug):
    at = app_test(slug).run(timeout=180)
    assert not at.exception, [e.value for e in at.exception]
    specs = [spec for spec, _ in chart_frames(at)]
    seen: set[str] = set()
    for spec in specs:
        text = json.dumps(spec)
        schemes = set(re.findall(r'"scheme":\s*"([a-z]+)"', text))
        assert not schemes & RED_GREEN_SCHEMES, (spec.get("title"), schemes)
        seen |= schemes
        colours = set(HEX.findall(text))
        reds, greens = {c for c in colours if _red(c)}, {c for c in colours if _green(c)}
        assert not (reds and greens), (spec.get("title"), reds, greens)
    if slug in ("bottlenecks", "customers"):  # their heatmaps were checked, not skipped
        assert seen, f"no heatmap scheme found on {slug}"
