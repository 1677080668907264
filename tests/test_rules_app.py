"""The Catalog lists each scorecard rule with its points and how many leads/deals it fired for;
deal lists and the deal board say why a deal scores what it scores (#17)."""

from __future__ import annotations

import duckdb

from app_support import app_test, board_cards, card_parts


def test_catalog_shows_each_rule_its_points_and_fired_counts(env):
    at = app_test("catalog").run()
    assert not at.exception, [e.value for e in at.exception]
    rules = next(d.value for d in at.dataframe if "fired" in d.value.columns)  # headed "Fired for"
    with duckdb.connect(str(env), read_only=True) as con:
        # independent counts: deals whose account is Enterprise (rule: segment = 'Enterprise') …
        enterprise = con.execute("SELECT count(*) FROM deals d JOIN accounts a USING (account_id) "
                                 "WHERE a.segment = 'Enterprise'").fetchone()[0]
        # … and leads with at least one call before converting (or before as_of)
        calls = con.execute("""SELECT count(DISTINCT l.lead_id) FROM leads l JOIN activities a ON a.lead_id = l.lead_id
            WHERE a.kind = 'call' AND a.occurred_at < coalesce(l.converted_at,
                  (SELECT CAST(value AS TIMESTAMP) FROM pipelinebi_meta WHERE key = 'as_of'))""").fetchone()[0]
    row = rules[rules["label"] == "Enterprise"].iloc[0]
    assert (row["when"], row["points"], row["group"], row["fired"]) == (
        "segment = 'Enterprise'", "+20", "Segment (first match)", f"{enterprise:,}")
    row = rules[rules["label"] == "Calls"].iloc[0]
    assert (row["when"], row["points"], row["fired"]) == (
        "each row of activities where activity_kind = 'call'", "+5 each", f"{calls:,}")
    assert len(rules) == 23 and enterprise > 0 and calls > 0


def _explanations_by_hand(db) -> dict[str, str]:
    """Each deal's high-value score and the rules behind it, from the raw tables (not deal_scores):
    the rules of semantic/rules/scorecards.yml written out in SQL."""
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("""
            WITH m AS (SELECT CAST(value AS TIMESTAMP) AS as_of FROM pipelinebi_meta WHERE key = 'as_of'),
            acts AS (SELECT deal_id, count(*) AS n FROM activities, m
                     WHERE deal_id IS NOT NULL AND occurred_at >= as_of - INTERVAL 30 DAY AND occurred_at < as_of GROUP BY 1),
            prior AS (SELECT d.deal_id, count(w.deal_id) AS n FROM deals d JOIN deals w ON w.account_id = d.account_id
                      AND w.status = 'won' AND w.close_date < CAST(d.created_at AS DATE) GROUP BY 1)
            SELECT d.deal_id, d.amount, a.segment, a.industry, coalesce(p.n, 0), coalesce(x.n, 0), s.probability
            FROM deals d LEFT JOIN accounts a USING (account_id) LEFT JOIN prior p USING (deal_id)
            LEFT JOIN acts x USING (deal_id) LEFT JOIN stages s ON s.pipeline = d.pipeline AND s.stage = d.stage
        """).fetchall()
    out = {}
    for deal_id, amount, segment, industry, prior, acts, prob in rows:
        parts = []
        if amount is not None and amount >= 20000:
            parts.append(("Amount 100k+", 30) if amount >= 100000 else ("Amount 50k+", 20) if amount >= 50000
                         else ("Amount 20k+", 10))
        if segment in ("Enterprise", "Mid-Market"):
            parts.append((segment, 20 if segment == "Enterprise" else 10))
        if industry in ("Financial Services", "Healthcare", "Software"):
            parts.append(("Target industry", 5))
        if prior >= 1:
            parts.append(("Account won before", 15))
        if acts >= 2:
            parts.append(("5+ activities in 30 d", 20) if acts >= 5 else ("2+ activities in 30 d", 10))
        if prob is not None and prob >= 0.6:
            parts.append(("Late stage", 15))
        total = sum(p for _, p in parts)
        out[deal_id] = f"Score {total}: " + (", ".join(f"{n} +{p}" for n, p in parts) or "no rule fired")
    return out


def test_deal_lists_and_the_board_say_why_a_deal_scores_what_it_scores(env):
    by_hand = _explanations_by_hand(env)
    at = app_test("bottlenecks").run()
    assert not at.exception, [e.value for e in at.exception]
    stalled = next(d.value for d in at.dataframe if "hv_explanation" in d.value.columns and "__norm" in d.value.columns)
    assert len(stalled) > 0
    for deal_id, why in zip(stalled["deal_id"], stalled["hv_explanation"]):
        assert why == by_hand[deal_id]
    board = app_test("deal-board").run()
    assert not board.exception, [e.value for e in board.exception]
    # captions are markdown-escaped ('High\\-value score 25\\: …'): compare the text a person reads
    shown = [t for card in board_cards(board) for t in card_parts(card, "pbi-small") if t.startswith("High-value score ")]
    assert shown, "no card says why its deal scores what it scores"
    expected = {"High-value score " + v[len("Score "):] for v in by_hand.values()}
    assert all(s in expected for s in shown), shown[:3]
