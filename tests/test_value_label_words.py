"""#14 value labels read as users wrote them: a lower-case code is title-cased with its acronyms
upper case ("sdr" → "SDR", "emea_smb" → "EMEA SMB"); a value someone wrote with a capital
("HubSpot", "EMEA Mid-Market") or an id ("d000123") is kept exactly. Expected words are written
out by hand here; the properties check the rule on generated text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelinebi.formatting import ACRONYMS, label_map, name_label, value_label

#: code → what a person reads (sales roles, segments, regions, funnel stages, channels)
CODES = {
    "sdr": "SDR", "ae": "AE", "bdr": "BDR", "smb": "SMB", "abm": "ABM", "emea": "EMEA", "apac": "APAC",
    "na": "NA", "latam": "LATAM", "crm": "CRM", "ai": "AI", "roi": "ROI", "mql": "MQL", "sql": "SQL",
    "b2b": "B2B", "b2c": "B2C",
    "mql/sql": "MQL/SQL", "emea_smb": "EMEA SMB", "na smb": "NA SMB", "sdr_outbound": "SDR Outbound",
    "ai_assistant": "AI Assistant", "abm campaign": "ABM Campaign", "crm_sync": "CRM Sync",
    "b2b_software": "B2B Software", "best_case": "Best Case", "closed_won": "Closed Won", "referral": "Referral",
    "existing customer": "Existing Customer", "mid-market": "Mid-Market", "managers": "Managers",
    "presales": "Presales",
}
#: written by people (a capital, a digit, punctuation): shown exactly as written
AS_WRITTEN = ["HubSpot", "Salesforce", "EMEA Mid-Market", "NA SMB", "APAC", "Closed Won", "SDR prospecting",
              "d000123", "R0001", "Q3 2026", "(none)", "A", "eBay", "iPhone leads", "web 2.0", "a--b", "_x",
              "sdr_", "x  y", "Sdr"]


@pytest.mark.parametrize("code, words", list(CODES.items()))
def test_codes_read_as_words_with_acronyms_upper_case(code, words):
    assert value_label(code) == words


@pytest.mark.parametrize("text", AS_WRITTEN)
def test_what_a_person_wrote_is_kept_as_written(text):
    assert value_label(text) == text


def test_the_acronyms_are_lower_case_codes():
    """The map's keys are what a code holds (lower case); each upper-cases to itself."""
    assert all(a == a.lower() and value_label(a) == a.upper() for a in ACRONYMS)


def test_blanks_and_numbers():
    assert value_label(None) == "—" and value_label(float("nan")) == "—"
    assert value_label(7) == "7"


@given(st.text(min_size=1, max_size=20))
def test_a_value_with_a_capital_letter_is_never_changed(text):
    if any(c.isupper() for c in text):
        assert value_label(text) == text


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_ /-0123456789", min_size=1, max_size=20))
def test_only_case_and_underscores_change(text):
    """A label is the code with its case changed and "_" read as a space: nothing else moves."""
    shown = value_label(text)
    assert shown.lower() == text.replace("_", " ") or shown == text


def test_a_click_on_a_label_maps_back_to_the_raw_code():
    assert label_map(["sdr", "managers", "HubSpot", "mql/sql"]) == {
        "SDR": "sdr", "Managers": "managers", "HubSpot": "HubSpot", "MQL/SQL": "mql/sql"}


@pytest.mark.parametrize("name, heading", [
    ("sdr_owner", "SDR owner"), ("deal_id", "Deal ID"), ("crm_url", "CRM URL"), ("days_in_stage", "Days in stage"),
    ("team", "Team"), ("emea_quota", "EMEA quota"), ("ae", "AE")])
def test_column_names_read_as_sentences_with_acronyms(name, heading):
    assert name_label(name) == heading
