"""The derived tables rewritten for 10M deals (issue #20) still answer what their plain SQL answers.

At 1M deals ``benchmarks/compare_derived.py`` proves old SQL = new SQL with EXCEPT ALL both ways;
these tests pin the same equalities on the demo data, every run:

- ``deal_facts.amount_rank``: computed from per-amount counts plus a rank within each amount, it
  equals ``row_number() OVER (ORDER BY amount DESC, deal_id)`` over open deals (ties included);
- ``stage_norms``: one ``quantile_cont(x, [0.5, 0.75, 0.9])`` state per stage equals ``median``
  and two ``quantile_cont`` calls, exactly;
- ``stage_intervals`` is stored in exit order (what lets a period query skip row groups);
- generating in chunks of deals gives the same files as one pass;
- ``stage_funnel`` (no window: its per-visit facts read from ``stage_intervals``),
  ``close_date_changes`` and ``stage_win_rates`` (deals joined after the window / DISTINCT) give the
  rows the plain SQL they replaced gives (``tests/fixtures/derived_plain``), on the demo data and on
  a pipeline whose funnel stages share a position; ``stage_intervals``' reached-later flags (which
  ``stage_funnel`` now reads) equal their definition written as EXISTS subqueries.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import duckdb
import pytest

import pipelinebi.generate as generate_module
from pipelinebi.ingest import ingest
from pipelinebi.ingest.derived import load_derived
from pipelinebi.settings import PROJECT_ROOT

PLAIN = Path(__file__).parent / "fixtures" / "derived_plain"
REWRITTEN = ("stage_intervals", "stage_funnel", "close_date_changes", "stage_win_rates", "pipeline_snapshots",
             "pipeline_flow", "quarter_flow")


@pytest.fixture(scope="module")
def demo(plain_seeds_db) -> Path:
    """The seeds as a plain ``ingest`` builds them: the session's build (conftest); read only
    (``differences`` rewrites a copy)."""
    return plain_seeds_db


@pytest.fixture(scope="module")
def con(demo):
    c = duckdb.connect(str(demo), read_only=True)
    yield c
    c.close()


def differences(db: Path, work: Path) -> dict[str, tuple[int, int, int]]:
    """Per rewritten table: (rows, rows of it not in the plain SQL's table, rows of that not in it),
    EXCEPT ALL (duplicates count); doubles rounded to 9 decimals (a parallel sum's last bits vary)."""
    copy = work / f"plain-{db.name}"
    shutil.copy(db, copy)
    out = {}
    with duckdb.connect(str(copy)) as c:
        c.execute("SET TimeZone = 'UTC'")
        c.execute("CREATE SCHEMA plain")
        c.execute("SET search_path = 'plain,main'")  # plain.stage_funnel reads plain.stage_intervals
        for m in load_derived(PLAIN):
            c.execute(f"CREATE TABLE plain.{m.name} AS {m.sql}")
        c.execute("SET search_path = 'main'")
        for name in REWRITTEN:
            cols = c.execute(f"DESCRIBE main.{name}").fetchall()
            assert [x[:2] for x in cols] == [x[:2] for x in c.execute(f"DESCRIBE plain.{name}").fetchall()], name
            sel = ", ".join(f"round({x[0]}, 9)" if x[1] == "DOUBLE" else x[0] for x in cols)

            def minus(a: str, b: str) -> int:
                return c.execute(f"SELECT count(*) FROM (SELECT {sel} FROM {a}.{name} "
                                 f"EXCEPT ALL SELECT {sel} FROM {b}.{name})").fetchone()[0]
            out[name] = (c.execute(f"SELECT count(*) FROM main.{name}").fetchone()[0],
                         minus("main", "plain"), minus("plain", "main"))
    return out


def test_amount_rank_is_the_row_number_by_amount_then_deal_id(con):
    ties = con.execute("SELECT count(*) FROM (SELECT amount FROM deals WHERE status = 'open' "
                       "GROUP BY amount HAVING count(*) > 1)").fetchone()[0]
    assert ties > 10  # amounts are rounded to 50: many ties to break by deal_id
    diff = con.execute("""
        WITH plain AS (
            SELECT deal_id, row_number() OVER (ORDER BY amount DESC, deal_id) AS amount_rank,
                   count(*) OVER () AS open_deals
            FROM deals WHERE status = 'open' AND amount IS NOT NULL
        ), expected AS (
            SELECT d.deal_id, p.amount_rank, coalesce(p.amount_rank <= ceil(0.2 * p.open_deals), false) AS is_top20
            FROM deals d LEFT JOIN plain p USING (deal_id)
        )
        SELECT count(*) FROM (
            (SELECT deal_id, amount_rank, is_top20 FROM deal_facts EXCEPT ALL SELECT * FROM expected)
            UNION ALL
            (SELECT * FROM expected EXCEPT ALL SELECT deal_id, amount_rank, is_top20 FROM deal_facts))
    """).fetchone()[0]
    assert diff == 0
    assert con.execute("SELECT typeof(amount_rank) FROM deal_facts LIMIT 1").fetchone()[0] == "BIGINT"


def test_stage_norms_quantiles_equal_median_and_quantile_cont(con):
    rows = con.execute("""
        SELECT n.stage, n.median_days, n.p75_days, n.p90_days, p.m, p.q75, p.q90
        FROM stage_norms n
        LEFT JOIN (SELECT pipeline, stage, median(dwell_days) AS m, quantile_cont(dwell_days, 0.75) AS q75,
                          quantile_cont(dwell_days, 0.9) AS q90
                   FROM stage_intervals WHERE exited_at IS NOT NULL GROUP BY pipeline, stage) p
          ON p.pipeline = n.pipeline AND p.stage = n.stage
    """).fetchall()
    assert len(rows) == 7
    for stage, *values in rows:
        assert values[:3] == values[3:], stage  # exactly, not approximately


def test_stage_without_completed_visits_has_no_quantiles(tmp_path):
    good = Path(__file__).parent / "fixtures" / "ingest" / "good"
    db = tmp_path / "x.duckdb"
    assert ingest(good, db, semantic_dir=PROJECT_ROOT / "semantic").ok
    with duckdb.connect(str(db), read_only=True) as c:
        empty = c.execute("SELECT completed_visits, median_days, p75_days, p90_days, norm_days FROM stage_norms "
                          "WHERE completed_visits = 0").fetchall()
        assert empty and all(r == (0, None, None, None, None) for r in empty)


def test_stage_intervals_are_stored_in_exit_order(con):
    out_of_order = con.execute("""
        SELECT count(*) FROM (
            SELECT rowid AS r, exited_at, lag(exited_at) OVER (ORDER BY rowid) AS before FROM stage_intervals)
        WHERE exited_at < before OR (before IS NULL AND exited_at IS NOT NULL AND r > 0)
    """).fetchone()[0]
    assert out_of_order == 0
    assert con.execute("SELECT count(*) FROM stage_intervals WHERE exited_at IS NULL").fetchone()[0] > 0


def test_generating_in_chunks_gives_the_same_files(tmp_path, monkeypatch):
    def digest(folder: Path) -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}

    generate_module.generate(tmp_path / "one", deals=2500, seed=3, fmt="csv")
    monkeypatch.setattr(generate_module, "_CHUNK_DEALS", 700)  # 4 chunks, the last one partial
    seen = []
    generate_module.generate(tmp_path / "chunks", deals=2500, seed=3, fmt="csv",
                             progress=lambda step, done=None, total=None: seen.append(step))
    assert any("deals 2,100-2,500 of 2,500" in s for s in seen)
    assert digest(tmp_path / "chunks") == digest(tmp_path / "one")


def test_rewritten_tables_equal_the_plain_sql_on_the_demo_data(demo, tmp_path):
    diff = differences(demo, tmp_path)
    assert diff["stage_funnel"][0] > 10_000 and diff["stage_intervals"][0] > 10_000
    assert diff["close_date_changes"][0] > 1_000 and diff["stage_win_rates"][0] == 7
    assert diff["pipeline_snapshots"][0] > 5_000 and diff["pipeline_flow"][0] > 10_000 and diff["quarter_flow"][0] > 1_000
    assert {name: d[1:] for name, d in diff.items()} == {name: (0, 0) for name in REWRITTEN}


def test_rewritten_tables_equal_the_plain_sql_when_funnel_stages_share_a_position(tmp_path):
    # Qualification and Proposal both at position 2: by funnel rank (position, then name) Proposal
    # comes before Qualification, by position neither is "later". D2 goes Proposal -> Qualification,
    # so stage_intervals says it reached a later stage and stage_funnel (by position) says it did not.
    good = tmp_path / "good"
    shutil.copytree(Path(__file__).parent / "fixtures" / "ingest" / "good", good)
    stages = (good / "stages.csv").read_text().replace("New Business,Proposal,3,", "New Business,Proposal,2,")
    (good / "stages.csv").write_text(stages)
    db = tmp_path / "tied.duckdb"
    report = ingest(good, db, semantic_dir=PROJECT_ROOT / "semantic")
    assert report.ok
    with duckdb.connect(str(db), read_only=True) as c:
        assert c.execute("SELECT bool_or(reached_later) FROM stage_intervals WHERE deal_id = 'D2' "
                         "AND stage = 'Proposal'").fetchone()[0] is True
        assert c.execute("SELECT advanced_later FROM stage_funnel WHERE deal_id = 'D2' "
                         "AND stage = 'Proposal'").fetchone()[0] is False
    assert {name: d[1:] for name, d in differences(db, tmp_path).items()} == {name: (0, 0) for name in REWRITTEN}


def test_snapshots_keep_a_blank_amount_of_the_last_row_before_the_date(tmp_path):
    # D3's amount is blanked at its second row (Negotiation, 2024-02-10): a snapshot after it must
    # show no amount — the last row's — not the 30,000 of the row before (arg_max would skip the
    # blank); every flow table built on the snapshots equals the ASOF JOIN version's
    good = tmp_path / "good"
    shutil.copytree(Path(__file__).parent / "fixtures" / "ingest" / "good", good)
    history = (good / "deal_history.csv").read_text().replace(
        "D3,2024-02-10 08:00:00,Negotiation,30000,", "D3,2024-02-10 08:00:00,Negotiation,,")
    (good / "deal_history.csv").write_text(history)
    db = tmp_path / "blank.duckdb"
    assert ingest(good, db, semantic_dir=PROJECT_ROOT / "semantic").ok
    with duckdb.connect(str(db), read_only=True) as c:
        rows = c.execute("SELECT snapshot_date, stage, amount FROM pipeline_snapshots WHERE deal_id = 'D3' "
                         "ORDER BY snapshot_date").fetchall()
    assert rows and all(stage == "Negotiation" and amount is None for _, stage, amount in rows), rows
    assert {name: d[1:] for name, d in differences(db, tmp_path).items()} == {name: (0, 0) for name in REWRITTEN}


def test_reached_later_flags_follow_their_definition(con):
    # the visit's deal entered the next funnel position / any higher one after this visit began
    wrong, rnl, rl = con.execute("""
        SELECT count(*) FILTER (WHERE v.reached_next_later <> e.next_later OR v.reached_later <> e.later),
               count(*) FILTER (WHERE e.next_later), count(*) FILTER (WHERE e.later)
        FROM stage_intervals v
        JOIN (SELECT deal_id, entered_at,
                     funnel_position IS NOT NULL AND EXISTS (
                         SELECT 1 FROM stage_intervals u WHERE u.deal_id = s.deal_id
                         AND u.funnel_position = s.funnel_position + 1 AND u.entered_at > s.entered_at) AS next_later,
                     funnel_position IS NOT NULL AND EXISTS (
                         SELECT 1 FROM stage_intervals u WHERE u.deal_id = s.deal_id
                         AND u.funnel_position > s.funnel_position AND u.entered_at > s.entered_at) AS later
              FROM stage_intervals s) e USING (deal_id, entered_at)
    """).fetchone()
    assert wrong == 0
    assert 1_000 < rnl < rl  # both occur, and "any higher" is the wider one


def test_stage_intervals_equal_the_plain_sql_at_the_highest_funnel_positions(tmp_path):
    # stage_intervals keeps a deal's later funnel positions as bits 1..62 of a BIGINT: the good
    # fixture's New Business pipeline gets 57 stages before Discovery, so its deals move between
    # positions 58 (Discovery) and 62 (Closed Won), the highest bits ingest accepts
    good = tmp_path / "good"
    shutil.copytree(Path(__file__).parent / "fixtures" / "ingest" / "good", good)
    text = (good / "stages.csv").read_text()
    for stage, pos in (("Discovery", 1), ("Qualification", 2), ("Proposal", 3), ("Negotiation", 4),
                       ("Closed Won", 5), ("Closed Lost", 6)):
        assert f"New Business,{stage},{pos}," in text
        text = text.replace(f"New Business,{stage},{pos},", f"New Business,{stage},{pos + 57},")
    text += "".join(f"New Business,Step {i},{i},0.05,open,pipeline\n" for i in range(1, 58))
    (good / "stages.csv").write_text(text)
    db = tmp_path / "high.duckdb"
    assert ingest(good, db, semantic_dir=PROJECT_ROOT / "semantic").ok
    with duckdb.connect(str(db), read_only=True) as c:
        assert c.execute("SELECT max(funnel_position) FROM stage_intervals").fetchone()[0] == 62
        # D2 went Qualification (59) -> Proposal (60) -> Qualification -> Proposal -> lost
        assert c.execute("SELECT list(reached_next_later ORDER BY visit) FROM stage_intervals WHERE deal_id = 'D2' "
                         "AND stage = 'Qualification'").fetchone()[0] == [True, True]
    assert {name: d[1:] for name, d in differences(db, tmp_path).items()} == {name: (0, 0) for name in REWRITTEN}
