"""The Customers page's answer line (pipelinebi.dashboards.value_answer): the verdict by LTV : CAC,
and what the data cannot answer said in words, never $0."""

from __future__ import annotations

import pytest

from pipelinebi.dashboards.value_answer import ValueAnswerSpec, value_answer
from pipelinebi.formatting import format_value

FORMATS = {"clv": "currency", "cac": "currency", "ltv_to_cac": "multiple", "cac_payback_months": "number",
           "new_customers": "count", "churned_customers": "count"}


def fmt(m, v):
    return format_value(v, FORMATS.get(m), compact=True)


ROW = {"clv": 60000, "cac": 20000, "ltv_to_cac": 3.0, "cac_payback_months": 12.0, "new_customers": 40,
       "churned_customers": 4}


@pytest.mark.parametrize("ratio, tone, verdict", [
    (3.0, "good", "healthy: 3× or more"),    # the threshold itself is healthy
    (2.99, "thin", "thin: under 3×"),
    (1.0, "thin", "thin: under 3×"),
    (0.8, "bad", "a customer costs more to win than it brings in"),
])
def test_the_verdict_turns_at_the_thresholds(ratio, tone, verdict):
    a = value_answer({**ROW, "ltv_to_cac": ratio}, ValueAnswerSpec(), fmt)
    assert (a.tone, a.verdict) == (tone, verdict)
    assert a.words == f"Each customer is worth $60.0K, {format_value(ratio, 'multiple')} what it costs to win."


def test_thresholds_come_from_the_yaml():
    a = value_answer({**ROW, "ltv_to_cac": 2.5}, ValueAnswerSpec(good=2, bad=0.5), fmt)
    assert (a.tone, a.verdict) == ("good", "healthy: 2× or more")


@pytest.mark.parametrize("row, unavailable, words", [
    ({**ROW, "churned_customers": 0, "clv": None}, {},
     "No customer has churned yet (a customer churns a year after its last win), so the expected lifespan — "
     "and with it the lifetime value — is unknown."),
    ({"new_customers": 0}, {}, "No customer has been won yet, so there is no customer value to show."),
    (ROW, {"cac": {"scope"}, "ltv_to_cac": {"scope"}},
     "Each customer is worth $60.0K; what it costs to win is unknown: marketing spend is company-wide, so a "
     "view limited to your rows leaves it out."),
    ({**ROW, "cac": None, "ltv_to_cac": None, "cac_payback_months": None}, {},
     "Each customer is worth $60.0K; what it costs to win is unknown: no spend in the data for these customers."),
])
def test_what_the_data_cannot_answer_is_said_not_shown_as_zero(row, unavailable, words):
    a = value_answer(row, ValueAnswerSpec(), fmt, unavailable)
    assert a.words == words and a.tone == "unknown" and a.verdict is None
    assert "$0" not in a.line and "inf" not in a.line.lower()
