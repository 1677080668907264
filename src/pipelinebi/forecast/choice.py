"""Which forecast method the Forecast vs target page shows, and why, in a few words.

``PIPELINEBI_FORECAST_METHOD`` (or the page's *Forecast method* picker) is ``auto`` or a method:

* ``auto`` — the method with the lowest backtest error (Σ|forecast − actual| ÷ Σ actual) over the
  last four completed quarters in the page's filters (:func:`accuracy.recommend`), among the
  methods the page can compute now; the next best when the best cannot be (the learned model
  before ``pipelinebi model train`` has scored the open deals); the page's
  default (the CRM stage probability) while no backtest is stored.
* a method's name — that method, when the page can compute it; otherwise the default, saying why.

The headline then reads "Forecast (historical win rate — most accurate in the last 4 quarters'
backtest) $4.2M", and its P10–P90 range is drawn from the same method's per-deal probabilities.

>>> best = {"method": "model", "ranking": [("model", 0.05), ("historical_win_rate", 0.08),
...         ("stage_probability", 0.12)], "quarters": 4}
>>> choose("auto", "stage_probability", {"stage_probability": None, "historical_win_rate": None,
...        "model": "has no win scores yet"}, best)
Choice(method='historical_win_rate', reason="most accurate available in the last 4 quarters' backtest", note='Learned model was more accurate (5.0%) but has no win scores yet.')
>>> choose("auto", "stage_probability", {"stage_probability": None}, None).reason
'no backtest yet'
>>> choose("model", "stage_probability", {"stage_probability": None, "model": "has no win scores yet"}, best).method
'stage_probability'
"""

from __future__ import annotations

from dataclasses import dataclass

from .accuracy import label

AUTO = "auto"


@dataclass(frozen=True)
class Choice:
    """The method shown, the reason said after it in the headline, and a longer note (or None)."""

    method: str
    reason: str
    note: str | None = None


def _span(quarters: int) -> str:
    return "the last quarter's backtest" if quarters == 1 else f"the last {quarters} quarters' backtest"


def choose(wanted: str, default: str, why_not: dict[str, str | None], best: dict | None,
           source: str = "settings") -> Choice:
    """The method to show.  ``wanted``: :data:`AUTO` or a method; ``default``: the page's own method
    (always computable); ``why_not``: every method the page offers → None if it can be computed
    now, else why not, as a verb phrase ("has no win scores yet"); ``best``: :func:`accuracy.recommend`'s answer (None
    without a scored backtest); ``source``: where ``wanted`` came from, said in the reason."""
    if wanted != AUTO:
        why = why_not.get(wanted, "is not offered on this page")
        if why is None:
            return Choice(wanted, f"chosen {'on this page' if source == 'page' else 'in settings'}")
        return Choice(default, f"{label(wanted).lower()} {why}", f"{label(wanted)} was chosen but {why}.")
    if best is None:
        return Choice(default, "no backtest yet")
    span = _span(int(best.get("quarters") or 4))
    errors = dict(best["ranking"])
    for method, _ in best["ranking"]:
        if why_not.get(method, "is not computed on this page") is None:
            if method == best["method"]:
                return Choice(method, f"most accurate in {span}")
            top = best["method"]
            why = why_not.get(top) or "is not computed on this page"
            return Choice(method, f"most accurate available in {span}",
                          f"{label(top)} was more accurate ({errors[top]:.1%}) but {why}.")
    return Choice(default, f"no method of {span} can be computed here")
