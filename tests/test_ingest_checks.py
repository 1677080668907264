"""Every validation class of ingest, each with the exact message a user sees.

The good fixture is copied and one thing is broken per test; the expected text is
written out by hand (file, line, row, column, value, what is expected, did-you-mean).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipelinebi.ingest import ingest

GOOD = Path(__file__).parent / "fixtures" / "ingest" / "good"


@pytest.fixture
def data(tmp_path) -> Path:
    folder = tmp_path / "data"
    shutil.copytree(GOOD, folder)
    return folder


def edit(folder: Path, name: str, old: str, new: str, count: int = 1) -> None:
    """Replace text in a fixture file; the text must be there (so the test breaks what it says)."""
    path = folder / name
    text = path.read_text()
    assert text.count(old) >= count, f"{old!r} not in {name}"
    path.write_text(text.replace(old, new, count))


def check(folder: Path) -> tuple[list[str], list[str]]:
    """(errors, warnings) as printed, from a dry run (semantic folder without derived SQL)."""
    report = ingest(folder, folder.parent / "never.duckdb", dry_run=True, semantic_dir=folder.parent / "none")
    assert not (folder.parent / "never.duckdb").exists()
    return [str(p) for p in report.problems], [str(w) for w in report.warnings]


def errors(folder: Path) -> list[str]:
    return check(folder)[0]


def test_good_fixture_has_no_findings(data):
    assert check(data) == ([], [])


def test_missing_required_column(data):
    edit(data, "deals.csv", "deal_id,name,pipeline", "deal_id,name")
    edit(data, "deals.csv", ",New Business,", ",", count=4)
    assert errors(data)[0] == (
        f"{data}/deals.csv: table deals: missing column pipeline (required) (Pipeline (see stages).)")


def test_missing_close_date_column_refuses_only_closed_deals(data):
    # a blank close date is allowed on open deals ("no close date set"), so the column is optional
    edit(data, "deals.csv", "created_at,close_date", "created_at")
    for d in ("2024-01-20", "2024-01-25", "2024-04-30", "2024-07-31"):
        edit(data, "deals.csv", f",{d},", ",")
    errs, warns = check(data)
    assert errs == [f"{data}/deals.csv:2: row 1: column close_date: close date is blank on a won deal "
                    "(won and lost deals need the date they closed; blank is allowed on open deals)",
                    f"{data}/deals.csv:3: row 2: column close_date: close date is blank on a lost deal "
                    "(won and lost deals need the date they closed; blank is allowed on open deals)"]
    assert f"{data}/deals.csv: missing optional column close_date: loaded as empty" in warns


def test_missing_optional_column_is_a_warning(data):
    edit(data, "accounts.csv", ",employees", "")
    for n in (",5200", ",40"):
        edit(data, "accounts.csv", n, "")
    errs, warns = check(data)
    assert errs == []
    assert warns == [f"{data}/accounts.csv: missing optional column employees: loaded as empty"]


def test_misspelled_column_is_refused_with_did_you_mean(data):
    edit(data, "deals.csv", ",amount,", ",amout,")
    assert errors(data) == [f"{data}/deals.csv: table deals: unknown column 'amout' (did you mean 'amount'?)"]


def test_extra_column_is_ignored_with_a_warning(data):
    path = data / "reps.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(line + (",nickname" if i == 0 else ",x") for i, line in enumerate(lines)) + "\n")
    errs, warns = check(data)
    assert errs == []
    assert warns == [f"{data}/reps.csv: column 'nickname' is not in the canonical table reps: ignored "
                     "(accepted: active, hired_at, manager, name, region, rep_id, team)"]


def test_wrong_types(data):
    edit(data, "deals.csv", "Core,5000.00,EUR", "Core,5k,EUR")
    edit(data, "stages.csv", "Proposal,3,", "Proposal,third,")
    edit(data, "reps.csv", "NA,US,Ned Park,yes", "NA,US,Ned Park,maybe")
    assert errors(data) == [
        f"{data}/reps.csv:3: row 2: column active: wrong type: 'maybe' is not true/false, 1/0 or yes/no",
        f"{data}/stages.csv:4: row 3: column position: wrong type: 'third' is not a whole number",
        f"{data}/deals.csv:3: row 2: column amount: wrong type: '5k' is not a number like 1234.50",
    ]


def test_unparseable_dates_and_timestamps(data):
    edit(data, "deals.csv", "2024-04-30,Negotiation", "30.04.2024,Negotiation")
    edit(data, "deal_history.csv", "D3,2024-02-10 08:00:00", "D3,yesterday")
    assert errors(data) == [
        f"{data}/deals.csv:4: row 3: column close_date: unparseable date '30.04.2024': expected a date like 2024-01-31",
        f"{data}/deal_history.csv:13: row 12: column changed_at: unparseable date 'yesterday': "
        "expected a timestamp like 2024-01-31 13:45:00 or 2024-01-31T13:45:00Z",
    ]


def test_empty_value_in_required_column(data):
    edit(data, "deals.csv", "a2,r2,partner", "a2,,partner")
    edit(data, "deal_history.csv", "D4,2024-03-20 12:00:00,Discovery", "D4,2024-03-20 12:00:00,  ")
    assert errors(data) == [
        f"{data}/deals.csv:4: row 3: column owner_id: empty value in a required column (Owning rep (reps.rep_id).)",
        f"{data}/deal_history.csv:15: row 14: column stage: empty value in a required column (Stage after the change.)",
    ]


def test_values_outside_the_vocabulary_grouped_with_accepted_list(data):
    edit(data, "deals.csv", "Negotiation,open,commit", "Negotiation,Open,commit")
    edit(data, "deals.csv", "Discovery,open,pipeline", "Discovery,Open,pipline")
    edit(data, "stages.csv", "Closed Lost,6,0,lost", "Closed Lost,6,0,lose")
    errs = errors(data)
    assert errs == [
        f"{data}/stages.csv:7: row 6: column kind: 'lose' is not an accepted value "
        "(did you mean 'lost'? accepted: lost, open, won)",
        f"{data}/deals.csv:4: row 3: column status: 'Open' is not an accepted value (2 rows, first row 3) "
        "(did you mean 'open'? accepted: lost, open, won)",
        f"{data}/deals.csv:5: row 4: column forecast_category: 'pipline' is not an accepted value "
        "(did you mean 'pipeline'? accepted: best_case, closed, commit, omitted, pipeline)",
    ]


def test_unknown_stage_and_pipeline(data):
    edit(data, "deals.csv", "Negotiation,open", "Negotation,open")
    edit(data, "deals.csv", "D4,Globex fresh,New Business", "D4,Globex fresh,New Busines")
    edit(data, "deal_history.csv", "D2,2024-01-04 10:00:00,Qualification", "D2,2024-01-04 10:00:00,Qualify")
    errs, warns = check(data)
    assert errs == [
        f"{data}/deals.csv:5: row 4: column pipeline: unknown pipeline 'New Busines' (did you mean 'New Business'?)",
        f"{data}/deals.csv:4: row 3: column stage: unknown stage 'Negotation' in pipeline 'New Business' "
        "(did you mean 'Negotiation'?)",
        f"{data}/deal_history.csv:7: row 6: column stage: unknown stage 'Qualify' in pipeline 'New Business' "
        "(did you mean 'Qualification'?)",
    ]
    # D3's current stage no longer matches its last history row: a warning, not an error
    assert warns == [f"{data}/deals.csv:4: row 3: column stage: current stage 'Negotation' but the last history "
                     "row says 'Negotiation' (the deal's current stage wins; stage_intervals follow the history)"]


def test_stage_of_another_pipeline_is_unknown(data):
    edit(data, "deal_history.csv", "D4,2024-03-20 12:00:00,Discovery", "D4,2024-03-20 12:00:00,Renewal Due")
    errs, _ = check(data)
    assert errs == [f"{data}/deal_history.csv:15: row 14: column stage: unknown stage 'Renewal Due' in pipeline "
                    "'New Business' (accepted: Closed Lost, Closed Won, Discovery, Negotiation, Proposal, Qualification)"]


def test_negative_amounts(data):
    edit(data, "deal_history.csv", "D3,2024-02-01 08:00:00,Proposal,30000", "D3,2024-02-01 08:00:00,Proposal,-30000")
    edit(data, "targets.csv", "r1,,50000", "r1,,-1")
    assert errors(data) == [
        f"{data}/deal_history.csv:12: row 11: column amount: negative amount -30000.00: must be >= 0",
        f"{data}/targets.csv:2: row 1: column amount: negative amount -1.00: must be >= 0",
    ]


def test_duplicate_ids(data):
    edit(data, "deals.csv", "D4,Globex fresh", "D1,Globex fresh")
    edit(data, "reps.csv", "r2,Bob Ito", "r1,Bob Ito")
    errs = errors(data)
    assert f"{data}/reps.csv:3: row 2: column rep_id: duplicate rep_id 'r1' (first at row 1) (ids must be unique)" in errs
    assert f"{data}/deals.csv:5: row 4: column deal_id: duplicate deal_id 'D1' (first at row 1) (ids must be unique)" in errs


def test_history_of_unknown_deals(data):
    edit(data, "deal_history.csv", "D3,", "D33,", count=2)
    errs, warns = check(data)
    assert errs == [f"{data}/deal_history.csv:12: row 11: column deal_id: history of unknown deal 'D33' "
                    "(2 rows, first row 11) (every deal_history.deal_id must be in deals)"]
    assert f"{data}/deals.csv:4: row 3: column deal_id: deal 'D3' has no history rows " \
           "(it has no stage_intervals; stage metrics leave it out)" in warns


def test_history_out_of_time_order_and_duplicate_timestamps(data):
    edit(data, "deal_history.csv", "D2,2024-01-08 10:00:00", "D2,2024-01-01 10:00:00")
    edit(data, "deal_history.csv", "D3,2024-02-10 08:00:00", "D3,2024-02-01 08:00:00")
    assert errors(data) == [
        f"{data}/deal_history.csv:8: row 7: column changed_at: history of deal 'D2' out of time order: "
        "2024-01-01 10:00:00 comes after 2024-01-04 10:00:00 (list each deal's changes oldest first)",
        f"{data}/deal_history.csv:13: row 12: column changed_at: duplicate timestamp 2024-02-01 08:00:00 for deal 'D3' "
        "(a deal has one history row per moment; merge the two changes)",
    ]


def test_close_date_before_create_date(data):
    edit(data, "deals.csv", "2024-03-01,2024-07-31", "2024-03-01,2024-02-29")
    assert errors(data) == [f"{data}/deals.csv:5: row 4: column close_date: close date 2024-02-29 is before the "
                            "create date 2024-03-01 (close_date >= created_at)"]


def test_status_disagreeing_with_stage_kind(data):
    edit(data, "deals.csv", "Negotiation,open", "Negotiation,won")
    assert errors(data) == [f"{data}/deals.csv:4: row 3: column status: status 'won' disagrees with stage "
                            "'Negotiation' of kind 'open' (a deal in a stage of kind 'open' has status 'open')"]


def test_owner_not_a_known_rep(data):
    edit(data, "deals.csv", "a2,r2,partner", "a2,r22,partner")
    assert errors(data) == [f"{data}/deals.csv:4: row 3: column owner_id: owner 'r22' is not a known rep "
                            "(did you mean 'r2'?)"]


def test_unknown_account_is_only_a_warning_with_count(data):
    edit(data, "deals.csv", "a1,r1", "a9,r1", count=2)
    errs, warns = check(data)
    assert errs == []
    assert warns == [f"{data}/deals.csv:2: row 1: column account_id: account 'a9' is not in accounts "
                     "(2 rows, first row 1) (loaded anyway; such deals show under an unknown account)"]


def test_unknown_and_misnamed_table_files(data):
    (data / "deal_history.csv").rename(data / "deal_histroy.csv")
    (data / "notes.csv").write_text("a\n1\n")
    errs, warns = check(data)
    assert errs == [
        f"{data}/deal_histroy.csv: unknown table file 'deal_histroy.csv' (did you mean 'deal_history'?)",
        f"{data}: missing required file deal_history.csv (or deal_history.parquet) "
        "(table deal_history: one change of a deal (first row = creation))",
    ]
    assert warns[0].startswith(f"{data}/notes.csv: ignored file 'notes.csv': not a canonical table")


def test_ragged_row_names_its_line(data):
    edit(data, "accounts.csv", "a2,Globex,Software,SMB,US,40", "a2,Globex,Software,SMB")
    assert errors(data) == [
        f"{data}/accounts.csv:3: row 2: cannot parse the row: Expected Number of Columns: 6 Found: 4 "
        "(each row needs one value per header column; quote values holding the delimiter)"]


def test_problems_from_all_files_come_together_and_are_capped(data):
    # 60 bad amounts in history, one bad reps row, one unknown owner: all reported in one run
    lines = (data / "deal_history.csv").read_text().splitlines()
    extra = [f"D4,2024-03-{d:02d} 0{h}:00:00,Discovery,-{d}{h},,pipeline," for d in range(21, 31) for h in range(6)]
    (data / "deal_history.csv").write_text("\n".join(lines + extra) + "\n")
    edit(data, "reps.csv", "true,2022-01-10", "true,2022-01-32")
    edit(data, "deals.csv", "a1,r1,outbound", "a1,rx,outbound")
    report = ingest(data, data.parent / "x.duckdb", dry_run=True, semantic_dir=data.parent / "none")
    text = [str(p) for p in report.problems]
    assert text[0] == f"{data}/reps.csv:2: row 1: column hired_at: unparseable date '2022-01-32': " \
                      "expected a date like 2024-01-31"
    assert f"{data}/deal_history.csv:16: row 15: column amount: negative amount -210.00: must be >= 0" in text
    assert f"{data}/deal_history.csv: column amount: … and 50 more rows like this" in text
    assert any("owner 'rx' is not a known rep" in t for t in text)
    assert len(text) == 13  # 1 + 10 examples + 1 summary + 1
    rendered = report.render()
    assert "62 errors:" in rendered  # the true count: 1 + 60 negative amounts + 1


# ------------------------------------------------------------------- spend (optional table)
def test_spend_is_optional_and_checked_when_present(data, tmp_path):
    assert check(data) == ([], [])  # no spend.csv: fine
    (data / "spend.csv").write_text(
        "period_start,period_end,source,campaign,amount,currency\n"
        "2024-01-01,2024-01-31,inbound,Search,1200.50,USD\n"   # row 1: fine
        "2024-02-01,2024-01-31,inbound,,10,USD\n"            # row 2: ends before it starts
        "2024-02-01,2024-02-29,inbound,,-5,USD\n"             # row 3: negative
        "2024-02-01,2024-02-29,billboards,,50,USD\n"          # row 4: a source no deal names
        "2024-02-01,2024-02-29,,,50,USD\n")                   # row 5: no source
    errs, warns = check(data)
    assert errs == [
        f"{data}/spend.csv:6: row 5: column source: empty value in a required column (Source or channel the "
        "money bought, in the vocabulary of leads.source and deals.source (inbound, outbound, event, partner, "
        "referral, …).)",
        f"{data}/spend.csv:4: row 3: column amount: negative amount -5.00: must be >= 0",
        f"{data}/spend.csv:3: row 2: column period_end: period ends 2024-01-31, before it starts 2024-02-01",
    ]
    assert [w for w in warns if "spend" in w] == [
        f"{data}/spend.csv:5: row 4: column source: source 'billboards' is not the source of any deal or lead "
        "(spend.source uses the vocabulary of deals.source and leads.source)"]


def test_a_pipeline_with_more_funnel_stages_than_stage_intervals_holds(data):
    # stage_intervals keeps a deal's later funnel positions as the bits of one BIGINT: 62 open and
    # won stages fit (the good file's Renewal pipeline, one open and one won, is given 60 more open ones), 63 do not
    extra = "".join(f"Renewal,Step {i},{i + 3},0.5,open,pipeline\n" for i in range(60))
    edit(data, "stages.csv", "Renewal,Churned,3,0,lost,omitted\n", "Renewal,Churned,3,0,lost,omitted\n" + extra)
    assert errors(data) == []
    edit(data, "stages.csv", "Renewal,Step 59,62,0.5,open,pipeline\n", "Renewal,Step 59,62,0.5,open,pipeline\n"
         "Renewal,Step 60,63,0.5,open,pipeline\n")
    assert errors(data) == [
        f"{data}/stages.csv:8: row 7: column kind: pipeline 'Renewal' has 63 stages that are not lost; at most 62 are "
        "supported (stage_intervals keeps a deal's later funnel positions as the bits of one 64-bit integer "
        "(semantic/derived/stage_intervals.sql): merge stages)"]
