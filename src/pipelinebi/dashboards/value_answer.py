"""The Customers & acquisition page's answer in one line: what a customer is worth against what
it costs to win, coloured by meaning and said in words, or what the data cannot tell yet.

"CLV $84.0K · CAC $20.0K · LTV : CAC 4.2× · payback 9.3 months" with a verdict on the ratio
(at least ``good``: healthy; below ``bad``: a customer costs more to win than it brings in;
between: thin) and the sentence "Each customer is worth $84.0K, 4.2× what it costs to win".
A figure the data cannot give is "—" with the reason in the sentence (no spend loaded, no
customer churned yet, spend outside a scoped view), never $0. Pure: no Streamlit.

>>> from pipelinebi.formatting import format_value
>>> fmts = {"clv": "currency", "cac": "currency", "ltv_to_cac": "multiple", "cac_payback_months": "number"}
>>> fmt = lambda m, v: format_value(v, fmts.get(m), compact=True)
>>> a = value_answer({"clv": 84000, "cac": 20000, "ltv_to_cac": 4.2, "cac_payback_months": 9.31,
...                   "new_customers": 50, "churned_customers": 5}, ValueAnswerSpec(), fmt)
>>> a.line, a.tone, a.verdict
('CLV $84.0K · CAC $20.0K · LTV : CAC 4.2× · payback 9.3 months', 'good', 'healthy: 3× or more')
>>> a.words
'Each customer is worth $84.0K, 4.2× what it costs to win.'
>>> b = value_answer({"clv": 84000, "new_customers": 50, "churned_customers": 5}, ValueAnswerSpec(), fmt,
...                  unavailable={"cac": {"spend"}, "ltv_to_cac": {"spend"}, "cac_payback_months": {"spend"}})
>>> b.line, b.tone
('CLV $84.0K · CAC — · LTV : CAC — · payback —', 'unknown')
>>> b.words
'Each customer is worth $84.0K; what it costs to win is unknown: no spend loaded — import spend to see it.'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..formatting import MISSING, is_missing

SPEND, SCOPE = "spend", "scope"  # as in pipelinebi.dashboards.answers


@dataclass(frozen=True)
class ValueAnswerSpec:
    """Which metrics the line reads (the shipped names by default) and where the verdict turns."""

    clv: str = "clv"
    cac: str = "cac"
    ratio: str = "ltv_to_cac"
    payback: str = "cac_payback_months"
    customers: str = "new_customers"
    churned: str = "churned_customers"
    #: LTV : CAC at or above: healthy (the usual rule of thumb is 3×); below ``bad``: a loss
    good: float = 3.0
    bad: float = 1.0

    def metrics(self) -> tuple[str, ...]:
        return (self.clv, self.cac, self.ratio, self.payback, self.customers, self.churned)


@dataclass(frozen=True)
class ValueAnswer:
    #: ("CLV", "$84.0K"), ("CAC", "$20.0K"), ("LTV : CAC", "4.2×"), ("payback", "9.3 months")
    figures: tuple[tuple[str, str], ...]
    #: good / thin / bad by the ratio; unknown when there is no ratio
    tone: str
    #: the verdict in words (colour is never the only signal), None when unknown
    verdict: str | None
    #: the answer as a sentence, or what the data cannot answer and why
    words: str

    @property
    def line(self) -> str:
        return " · ".join(f"{label} {text}" for label, text in self.figures)


def _num(v: Any) -> float | None:
    if is_missing(v):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _why_no_cost(needs: frozenset[str] | set[str], customers: float | None) -> str:
    if SCOPE in needs:
        return "marketing spend is company-wide, so a view limited to your rows leaves it out"
    if SPEND in needs:
        return "no spend loaded — import spend to see it"
    if not customers:
        return "no customer was acquired, so there is nothing to divide the spend by"
    return "no spend in the data for these customers"


def _why_no_value(customers: float | None, churned: float | None) -> str:
    if not customers:
        return "No customer has been won yet, so there is no customer value to show."
    if not churned:
        return ("No customer has churned yet (a customer churns a year after its last win), so the "
                "expected lifespan — and with it the lifetime value — is unknown.")
    return "Customer lifetime value is unknown for these customers."


def value_answer(row: Mapping[str, Any], spec: ValueAnswerSpec, fmt: Callable[[str, Any], str],
                 unavailable: Mapping[str, Any] | None = None) -> ValueAnswer:
    """The line, its tone and its words from one KPI row (``row``: metric -> value); ``unavailable``:
    metric -> what the data lacks for it (``{"spend"}``, ``{"scope"}``), as the page knows it."""
    unavailable = unavailable or {}
    get = {m: (None if m in unavailable else _num(row.get(m))) for m in spec.metrics()}
    clv, cac, ratio, payback = (get[m] for m in (spec.clv, spec.cac, spec.ratio, spec.payback))
    customers, churned = get[spec.customers], get[spec.churned]
    # months to one decimal: "9.3 months" reads as a duration, a bare "9.31" does not
    figures = (("CLV", fmt(spec.clv, clv)), ("CAC", fmt(spec.cac, cac)), ("LTV : CAC", fmt(spec.ratio, ratio)),
               ("payback", MISSING if payback is None else f"{payback:,.1f} months"))
    if clv is None:
        return ValueAnswer(figures, "unknown", None, _why_no_value(customers, churned))
    worth = f"Each customer is worth {fmt(spec.clv, clv)}"
    if cac is None or ratio is None:
        needs = set(unavailable.get(spec.cac, ())) | set(unavailable.get(spec.ratio, ()))
        return ValueAnswer(figures, "unknown", None,
                           f"{worth}; what it costs to win is unknown: {_why_no_cost(needs, customers)}.")
    if ratio >= spec.good:
        tone, verdict = "good", f"healthy: {spec.good:g}× or more"
    elif ratio >= spec.bad:
        tone, verdict = "thin", f"thin: under {spec.good:g}×"
    else:
        tone, verdict = "bad", "a customer costs more to win than it brings in"
    return ValueAnswer(figures, tone, verdict, f"{worth}, {fmt(spec.ratio, ratio)} what it costs to win.")
