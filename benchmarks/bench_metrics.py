"""Benchmark: generated SQL of the metric library vs hand-written SQL for the same answer.

    python benchmarks/bench_metrics.py [--deals 1000000] [--runs 5] [--db existing.duckdb] [--metrics a,b]

Generates ``--deals`` deals (parquet) into a temp dir, ingests them (canonical + derived tables),
then for each metric below, by team and quarter, times the compiled semantic query and a
hand-written query on the same connection, alternately (median of ``--runs``, after one warm-up),
checks that both give the same rows, and prints ratio and absolute medians.
Goal: ratio <= 1.1 and <= 300 ms for dashboard-sized queries.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]

DEALS_TQ = """FROM deals d JOIN reps r ON r.rep_id = d.owner_id"""
Q = "CAST(date_trunc('quarter', d.close_date) AS DATE)"

# metric -> hand-written SQL returning (team, period, value), the same rows as the semantic query
HAND: dict[str, str] = {
    "pipeline_amount": f"SELECT r.team, {Q}, sum(d.amount) {DEALS_TQ} WHERE d.status = 'open' GROUP BY 1, 2",
    "weighted_pipeline": f"""SELECT r.team, {Q}, sum(d.amount * s.probability) {DEALS_TQ}
        LEFT JOIN stages s ON s.pipeline = d.pipeline AND s.stage = d.stage WHERE d.status = 'open' GROUP BY 1, 2""",
    "weighted_pipeline_historical": f"""SELECT r.team, {Q}, sum(d.amount * w.win_rate_effective) {DEALS_TQ}
        LEFT JOIN stage_win_rates w ON w.pipeline = d.pipeline AND w.stage = d.stage WHERE d.status = 'open' GROUP BY 1, 2""",
    "closed_won_amount": f"SELECT r.team, {Q}, sum(d.amount) {DEALS_TQ} WHERE d.status = 'won' GROUP BY 1, 2",
    "forecast": f"""SELECT r.team, {Q}, coalesce(sum(d.amount) FILTER (WHERE d.status = 'won'), 0)
                        + coalesce(sum(d.amount * s.probability) FILTER (WHERE d.status = 'open'), 0) {DEALS_TQ}
        LEFT JOIN stages s ON s.pipeline = d.pipeline AND s.stage = d.stage GROUP BY 1, 2""",
    "target": """SELECT r.team, CAST(date_trunc('quarter', t.period_start) AS DATE), sum(t.amount)
        FROM targets t LEFT JOIN reps r ON r.rep_id = t.rep_id WHERE t.rep_id IS NOT NULL GROUP BY 1, 2""",
    "attainment": f"""WITH w AS (SELECT r.team, {Q} AS p, sum(d.amount) AS won {DEALS_TQ} WHERE d.status = 'won' GROUP BY 1, 2),
        t AS (SELECT r.team, CAST(date_trunc('quarter', t.period_start) AS DATE) AS p, sum(t.amount) AS tgt
              FROM targets t LEFT JOIN reps r ON r.rep_id = t.rep_id WHERE t.rep_id IS NOT NULL GROUP BY 1, 2)
        SELECT coalesce(w.team, t.team), coalesce(w.p, t.p), coalesce(won, 0) / NULLIF(tgt, 0)
        FROM w FULL JOIN t ON w.team IS NOT DISTINCT FROM t.team AND w.p = t.p""",
    "coverage": f"""WITH d AS (SELECT r.team, {Q} AS p, sum(d.amount) FILTER (WHERE d.status = 'open') AS open_amt,
                                   sum(d.amount) FILTER (WHERE d.status = 'won') AS won {DEALS_TQ} GROUP BY 1, 2),
        t AS (SELECT r.team, CAST(date_trunc('quarter', t.period_start) AS DATE) AS p, sum(t.amount) AS tgt
              FROM targets t LEFT JOIN reps r ON r.rep_id = t.rep_id WHERE t.rep_id IS NOT NULL GROUP BY 1, 2)
        SELECT coalesce(d.team, t.team), coalesce(d.p, t.p),
               coalesce(open_amt, 0) / NULLIF(greatest(coalesce(tgt, 0) - coalesce(won, 0), 0), 0)
        FROM d FULL JOIN t ON d.team IS NOT DISTINCT FROM t.team AND d.p = t.p""",
    "win_rate": f"""SELECT r.team, {Q}, count(*) FILTER (WHERE d.status = 'won') / count(*)
        {DEALS_TQ} WHERE d.status IN ('won', 'lost') GROUP BY 1, 2""",
    "win_rate_value": f"""SELECT r.team, {Q}, sum(d.amount) FILTER (WHERE d.status = 'won') / NULLIF(sum(d.amount), 0)
        {DEALS_TQ} WHERE d.status IN ('won', 'lost') GROUP BY 1, 2""",
    "avg_deal_size": f"SELECT r.team, {Q}, avg(d.amount) {DEALS_TQ} WHERE d.status = 'won' GROUP BY 1, 2",
    "sales_cycle_days": f"""SELECT r.team, {Q}, avg(date_diff('day', CAST(d.created_at AS DATE), d.close_date))
        {DEALS_TQ} WHERE d.status = 'won' GROUP BY 1, 2""",
    "stalled_deals": f"""SELECT r.team, {Q}, count(*) {DEALS_TQ} JOIN deal_facts f ON f.deal_id = d.deal_id
        WHERE d.status = 'open' AND f.is_stalled GROUP BY 1, 2""",
    "stalled_amount": f"""SELECT r.team, {Q}, sum(d.amount) {DEALS_TQ} JOIN deal_facts f ON f.deal_id = d.deal_id
        WHERE d.status = 'open' AND f.is_stalled GROUP BY 1, 2""",
    # Stage-visit, funnel and flow metrics: the question is about visits / funnel steps / flows, so the
    # hand-written query reads the same derived table as the semantic one (marked * in the output).
    # Each of these tables carries the deal's owner_id (copied from deals at ingest), and a person
    # writing the query by hand would join reps on it directly, so the baseline does too: anything
    # slower would flatter the ratio.
    "stage_conversion": """SELECT r.team, CAST(date_trunc('quarter', f.first_entered_at) AS DATE),
            count(*) FILTER (WHERE f.exited_to_next) / count(*)
        FROM stage_funnel f JOIN reps r ON r.rep_id = f.owner_id
        WHERE f.entered GROUP BY 1, 2""",
    "stage_conversion_resolved": """SELECT r.team, CAST(date_trunc('quarter', f.first_entered_at) AS DATE),
            count(*) FILTER (WHERE f.exited_to_next) / count(*)
        FROM stage_funnel f JOIN reps r ON r.rep_id = f.owner_id
        WHERE f.entered AND f.completed_visits > 0 GROUP BY 1, 2""",
    "stage_conversion_top_of_funnel": """SELECT r.team, CAST(date_trunc('quarter', f.first_entered_at) AS DATE),
            count(*) FILTER (WHERE f.exited_to_next) / count(*)
        FROM stage_funnel f JOIN reps r ON r.rep_id = f.owner_id
        WHERE f.entered AND f.started_at_top GROUP BY 1, 2""",
    "funnel_reach_rate": """SELECT r.team, CAST(date_trunc('quarter', f.first_seen_at) AS DATE),
            count(*) FILTER (WHERE f.reached) / count(*)
        FROM stage_funnel f JOIN reps r ON r.rep_id = f.owner_id
        WHERE f.started_at_top GROUP BY 1, 2""",
    "stage_conversion_per_visit": """SELECT r.team, CAST(date_trunc('quarter', v.entered_at) AS DATE),
            count(*) FILTER (WHERE v.exited_at IS NOT NULL AND v.exited_to_next) / count(*)
        FROM stage_intervals v JOIN reps r ON r.rep_id = v.owner_id
        WHERE v.stage_kind = 'open' GROUP BY 1, 2""",
    "backward_moves": """SELECT r.team, CAST(date_trunc('quarter', v.exited_at) AS DATE), count(*)
        FROM stage_intervals v JOIN reps r ON r.rep_id = v.owner_id WHERE v.is_regression GROUP BY 1, 2""",
    "stage_skips": """SELECT r.team, CAST(date_trunc('quarter', v.exited_at) AS DATE), count(*)
        FROM stage_intervals v JOIN reps r ON r.rep_id = v.owner_id WHERE v.is_skip GROUP BY 1, 2""",
    "dwell_days_mean": """SELECT r.team, CAST(date_trunc('quarter', v.exited_at) AS DATE), avg(v.dwell_days)
        FROM stage_intervals v JOIN reps r ON r.rep_id = v.owner_id
        WHERE v.exited_at IS NOT NULL GROUP BY 1, 2""",
    "dwell_days_median": """SELECT r.team, CAST(date_trunc('quarter', v.exited_at) AS DATE), median(v.dwell_days)
        FROM stage_intervals v JOIN reps r ON r.rep_id = v.owner_id
        WHERE v.exited_at IS NOT NULL GROUP BY 1, 2""",
    "dwell_days_p90": """SELECT r.team, CAST(date_trunc('quarter', v.exited_at) AS DATE), quantile_cont(v.dwell_days, 0.9)
        FROM stage_intervals v JOIN reps r ON r.rep_id = v.owner_id
        WHERE v.exited_at IS NOT NULL GROUP BY 1, 2""",
    "dwell_days_cumulative_median": """SELECT r.team, CAST(date_trunc('quarter', f.first_entered_at) AS DATE),
            median(f.dwell_days_total)
        FROM stage_funnel f JOIN reps r ON r.rep_id = f.owner_id
        WHERE f.entered AND NOT f.in_stage_now GROUP BY 1, 2""",
    "flow_net_change": """SELECT r.team, CAST(date_trunc('quarter', p.window_start) AS DATE),
            sum(CASE WHEN p.category IN ('created', 'pulled_in', 'increased') THEN p.amount ELSE -p.amount END)
        FROM pipeline_flow p JOIN reps r ON r.rep_id = p.owner_id
        WHERE p.category NOT IN ('start', 'end') GROUP BY 1, 2""",
    "flow_end": """SELECT r.team, CAST(date_trunc('quarter', p.window_start) AS DATE), sum(p.amount)
        FROM pipeline_flow p JOIN reps r ON r.rep_id = p.owner_id WHERE p.category = 'end' GROUP BY 1, 2""",
    "slipped_deals": """SELECT c.owner_team, CAST(date_trunc('quarter', c.close_date_before) AS DATE), count(DISTINCT c.deal_id)
        FROM close_date_changes c JOIN reps r ON r.rep_id = c.owner_id
        WHERE c.pushed_out_of_quarter GROUP BY 1, 2""",
    "lead_conversion": """SELECT r.team, CAST(date_trunc('quarter', l.created_at) AS DATE), count(*) FILTER (WHERE l.is_converted) / count(*)
        FROM lead_facts l LEFT JOIN reps r ON r.rep_id = l.owner_id GROUP BY 1, 2""",
    "pipeline_as_of": """SELECT r.team, CAST(date_trunc('quarter', p.close_date) AS DATE), sum(p.amount)
        FROM pipeline_snapshots p JOIN reps r ON r.rep_id = p.owner_id
        WHERE p.snapshot_date = (SELECT max(snapshot_date) FROM pipeline_snapshots) GROUP BY 1, 2""",
    # ---- the rest of the library (every metric has a baseline)
    # deals: simple counts / sums / medians by close_date (created_* by created_at)
    "open_deals": f"SELECT r.team, {Q}, count(*) {DEALS_TQ} WHERE d.status = 'open' GROUP BY 1, 2",
    "closed_lost_amount": f"SELECT r.team, {Q}, sum(d.amount) {DEALS_TQ} WHERE d.status = 'lost' GROUP BY 1, 2",
    "forecast_closed": f"SELECT r.team, {Q}, sum(d.amount) {DEALS_TQ} WHERE d.status = 'won' GROUP BY 1, 2",
    "commit_open_amount": f"""SELECT r.team, {Q}, sum(d.amount) {DEALS_TQ}
        WHERE d.status = 'open' AND d.forecast_category = 'commit' GROUP BY 1, 2""",
    "best_case_open_amount": f"""SELECT r.team, {Q}, sum(d.amount) {DEALS_TQ}
        WHERE d.status = 'open' AND d.forecast_category = 'best_case' GROUP BY 1, 2""",
    "pipeline_category_open_amount": f"""SELECT r.team, {Q}, sum(d.amount) {DEALS_TQ}
        WHERE d.status = 'open' AND d.forecast_category = 'pipeline' GROUP BY 1, 2""",
    "won_deals": f"SELECT r.team, {Q}, count(*) {DEALS_TQ} WHERE d.status = 'won' GROUP BY 1, 2",
    "lost_deals": f"SELECT r.team, {Q}, count(*) {DEALS_TQ} WHERE d.status = 'lost' GROUP BY 1, 2",
    "closed_deals": f"SELECT r.team, {Q}, count(*) {DEALS_TQ} WHERE d.status IN ('won', 'lost') GROUP BY 1, 2",
    "closed_amount": f"SELECT r.team, {Q}, sum(d.amount) {DEALS_TQ} WHERE d.status IN ('won', 'lost') GROUP BY 1, 2",
    "won_cycle_days_total": f"""SELECT r.team, {Q}, sum(date_diff('day', CAST(d.created_at AS DATE), d.close_date))
        {DEALS_TQ} WHERE d.status = 'won' GROUP BY 1, 2""",
    "sales_cycle_days_median": f"""SELECT r.team, {Q}, median(date_diff('day', CAST(d.created_at AS DATE), d.close_date))
        {DEALS_TQ} WHERE d.status = 'won' GROUP BY 1, 2""",
    "created_deals": """SELECT r.team, CAST(date_trunc('quarter', d.created_at) AS DATE), count(*)
        FROM deals d JOIN reps r ON r.rep_id = d.owner_id GROUP BY 1, 2""",
    "created_amount": """SELECT r.team, CAST(date_trunc('quarter', d.created_at) AS DATE), sum(d.amount)
        FROM deals d JOIN reps r ON r.rep_id = d.owner_id GROUP BY 1, 2""",
    # deals: derived sums (absent component = 0)
    "forecast_historical": f"""SELECT r.team, {Q}, coalesce(sum(d.amount) FILTER (WHERE d.status = 'won'), 0)
                        + coalesce(sum(d.amount * w.win_rate_effective) FILTER (WHERE d.status = 'open'), 0) {DEALS_TQ}
        LEFT JOIN stage_win_rates w ON w.pipeline = d.pipeline AND w.stage = d.stage GROUP BY 1, 2""",
    "forecast_commit": f"""SELECT r.team, {Q}, sum(d.amount) FILTER (WHERE d.status = 'won'
            OR (d.status = 'open' AND d.forecast_category = 'commit')) {DEALS_TQ} GROUP BY 1, 2""",
    "forecast_best_case": f"""SELECT r.team, {Q}, sum(d.amount) FILTER (WHERE d.status = 'won'
            OR (d.status = 'open' AND d.forecast_category IN ('commit', 'best_case'))) {DEALS_TQ} GROUP BY 1, 2""",
    "forecast_pipeline": f"""SELECT r.team, {Q}, sum(d.amount) FILTER (WHERE d.status = 'won'
            OR (d.status = 'open' AND d.forecast_category IN ('commit', 'best_case', 'pipeline'))) {DEALS_TQ} GROUP BY 1, 2""",
    "sales_velocity": f"""SELECT r.team, {Q},
            count(*) FILTER (WHERE d.status = 'open')
            * avg(d.amount) FILTER (WHERE d.status = 'won')
            * (count(*) FILTER (WHERE d.status = 'won') / NULLIF(count(*) FILTER (WHERE d.status IN ('won', 'lost')), 0))
            / avg(date_diff('day', CAST(d.created_at AS DATE), d.close_date)) FILTER (WHERE d.status = 'won')
        {DEALS_TQ} GROUP BY 1, 2""",
    # targets, and targets against closed won / forecast
    "target_team_rows": """SELECT r.team, CAST(date_trunc('quarter', t.period_start) AS DATE), sum(t.amount)
        FROM targets t LEFT JOIN reps r ON r.rep_id = t.rep_id WHERE t.rep_id IS NULL GROUP BY 1, 2""",
    "target_gap": f"""WITH d AS (SELECT r.team, {Q} AS p, sum(d.amount) FILTER (WHERE d.status = 'won') AS won,
                                   sum(d.amount * s.probability) FILTER (WHERE d.status = 'open') AS weighted {DEALS_TQ}
              LEFT JOIN stages s ON s.pipeline = d.pipeline AND s.stage = d.stage GROUP BY 1, 2),
        t AS (SELECT r.team, CAST(date_trunc('quarter', t.period_start) AS DATE) AS p, sum(t.amount) AS tgt
              FROM targets t LEFT JOIN reps r ON r.rep_id = t.rep_id WHERE t.rep_id IS NOT NULL GROUP BY 1, 2)
        SELECT coalesce(d.team, t.team), coalesce(d.p, t.p), coalesce(tgt, 0) - coalesce(won, 0) - coalesce(weighted, 0)
        FROM d FULL JOIN t ON d.team IS NOT DISTINCT FROM t.team AND d.p = t.p""",
    "target_gap_closed": f"""WITH w AS (SELECT r.team, {Q} AS p, sum(d.amount) AS won {DEALS_TQ} WHERE d.status = 'won' GROUP BY 1, 2),
        t AS (SELECT r.team, CAST(date_trunc('quarter', t.period_start) AS DATE) AS p, sum(t.amount) AS tgt
              FROM targets t LEFT JOIN reps r ON r.rep_id = t.rep_id WHERE t.rep_id IS NOT NULL GROUP BY 1, 2)
        SELECT coalesce(w.team, t.team), coalesce(w.p, t.p), coalesce(tgt, 0) - coalesce(won, 0)
        FROM w FULL JOIN t ON w.team IS NOT DISTINCT FROM t.team AND w.p = t.p""",
    "remaining_quota": f"""WITH w AS (SELECT r.team, {Q} AS p, sum(d.amount) AS won {DEALS_TQ} WHERE d.status = 'won' GROUP BY 1, 2),
        t AS (SELECT r.team, CAST(date_trunc('quarter', t.period_start) AS DATE) AS p, sum(t.amount) AS tgt
              FROM targets t LEFT JOIN reps r ON r.rep_id = t.rep_id WHERE t.rep_id IS NOT NULL GROUP BY 1, 2)
        SELECT coalesce(w.team, t.team), coalesce(w.p, t.p), greatest(coalesce(tgt, 0) - coalesce(won, 0), 0)
        FROM w FULL JOIN t ON w.team IS NOT DISTINCT FROM t.team AND w.p = t.p""",
    # cumulative / period over period, by hand
    "closed_won_cumulative": f"""WITH w AS (SELECT r.team, {Q} AS p, sum(d.amount) AS won {DEALS_TQ} WHERE d.status = 'won' GROUP BY 1, 2)
        SELECT team, p, sum(won) OVER (PARTITION BY team, year(p) ORDER BY p) FROM w""",
    "closed_won_qoq": f"""WITH w AS (SELECT r.team, {Q} AS p, sum(d.amount) AS won {DEALS_TQ} WHERE d.status = 'won' GROUP BY 1, 2)
        SELECT cur.team, cur.p, cur.won / NULLIF(prev.won, 0) - 1
        FROM w cur LEFT JOIN w prev ON prev.team = cur.team AND prev.p = cur.p - INTERVAL 3 MONTH""",
    # deal_facts (current-state facts per deal)
    "days_in_current_stage": f"""SELECT r.team, {Q}, avg(f.days_in_stage) {DEALS_TQ} JOIN deal_facts f ON f.deal_id = d.deal_id
        WHERE d.status = 'open' GROUP BY 1, 2""",
    "days_in_current_stage_median": f"""SELECT r.team, {Q}, median(f.days_in_stage) {DEALS_TQ} JOIN deal_facts f ON f.deal_id = d.deal_id
        WHERE d.status = 'open' GROUP BY 1, 2""",
    "stalled_share": f"""SELECT r.team, {Q}, coalesce(sum(d.amount) FILTER (WHERE f.is_stalled), 0) / NULLIF(sum(d.amount), 0)
        {DEALS_TQ} JOIN deal_facts f ON f.deal_id = d.deal_id WHERE d.status = 'open' GROUP BY 1, 2""",
    "high_value_deals": f"""SELECT r.team, {Q}, count(*) {DEALS_TQ} JOIN deal_scores f ON f.deal_id = d.deal_id
        WHERE d.status = 'open' AND f.is_high_value GROUP BY 1, 2""",
    "high_value_amount": f"""SELECT r.team, {Q}, sum(d.amount) {DEALS_TQ} JOIN deal_scores f ON f.deal_id = d.deal_id
        WHERE d.status = 'open' AND f.is_high_value GROUP BY 1, 2""",
    "avg_high_value_score": f"""SELECT r.team, {Q}, avg(f.hv_score) {DEALS_TQ} JOIN deal_scores f ON f.deal_id = d.deal_id
        WHERE d.status = 'open' GROUP BY 1, 2""",
    "top20_amount": f"""SELECT r.team, {Q}, sum(d.amount) {DEALS_TQ} JOIN deal_facts f ON f.deal_id = d.deal_id
        WHERE d.status = 'open' AND f.is_top20 GROUP BY 1, 2""",
    "top20_share": f"""SELECT r.team, {Q}, coalesce(sum(d.amount) FILTER (WHERE f.is_top20), 0) / NULLIF(sum(d.amount), 0)
        {DEALS_TQ} JOIN deal_facts f ON f.deal_id = d.deal_id WHERE d.status = 'open' GROUP BY 1, 2""",
    # stage_funnel (deal x open stage), timed by first entry (cohort metrics by first seen)
    "stage_entries": """SELECT r.team, CAST(date_trunc('quarter', f.first_entered_at) AS DATE), count(*)
        FROM stage_funnel f JOIN reps r ON r.rep_id = f.owner_id WHERE f.entered GROUP BY 1, 2""",
    "stage_to_next": """SELECT r.team, CAST(date_trunc('quarter', f.first_entered_at) AS DATE), count(*)
        FROM stage_funnel f JOIN reps r ON r.rep_id = f.owner_id WHERE f.entered AND f.exited_to_next GROUP BY 1, 2""",
    "stage_forward": """SELECT r.team, CAST(date_trunc('quarter', f.first_entered_at) AS DATE), count(*)
        FROM stage_funnel f JOIN reps r ON r.rep_id = f.owner_id WHERE f.entered AND f.exited_forward GROUP BY 1, 2""",
    "stage_conversion_with_skips": """SELECT r.team, CAST(date_trunc('quarter', f.first_entered_at) AS DATE),
            count(*) FILTER (WHERE f.exited_forward) / count(*)
        FROM stage_funnel f JOIN reps r ON r.rep_id = f.owner_id WHERE f.entered GROUP BY 1, 2""",
    "stage_advanced": """SELECT r.team, CAST(date_trunc('quarter', f.first_entered_at) AS DATE), count(*)
        FROM stage_funnel f JOIN reps r ON r.rep_id = f.owner_id WHERE f.entered AND f.advanced_later GROUP BY 1, 2""",
    "stage_advance_rate": """SELECT r.team, CAST(date_trunc('quarter', f.first_entered_at) AS DATE),
            count(*) FILTER (WHERE f.advanced_later) / count(*)
        FROM stage_funnel f JOIN reps r ON r.rep_id = f.owner_id WHERE f.entered GROUP BY 1, 2""",
    "stage_exits": """SELECT r.team, CAST(date_trunc('quarter', f.first_entered_at) AS DATE), count(*)
        FROM stage_funnel f JOIN reps r ON r.rep_id = f.owner_id WHERE f.entered AND f.completed_visits > 0 GROUP BY 1, 2""",
    "stage_exits_to_next": """SELECT r.team, CAST(date_trunc('quarter', f.first_entered_at) AS DATE), count(*)
        FROM stage_funnel f JOIN reps r ON r.rep_id = f.owner_id
        WHERE f.entered AND f.completed_visits > 0 AND f.exited_to_next GROUP BY 1, 2""",
    "top_stage_entries": """SELECT r.team, CAST(date_trunc('quarter', f.first_entered_at) AS DATE), count(*)
        FROM stage_funnel f JOIN reps r ON r.rep_id = f.owner_id WHERE f.entered AND f.started_at_top GROUP BY 1, 2""",
    "top_stage_to_next": """SELECT r.team, CAST(date_trunc('quarter', f.first_entered_at) AS DATE), count(*)
        FROM stage_funnel f JOIN reps r ON r.rep_id = f.owner_id
        WHERE f.entered AND f.started_at_top AND f.exited_to_next GROUP BY 1, 2""",
    "funnel_cohort": """SELECT r.team, CAST(date_trunc('quarter', f.first_seen_at) AS DATE), count(*)
        FROM stage_funnel f JOIN reps r ON r.rep_id = f.owner_id WHERE f.started_at_top GROUP BY 1, 2""",
    "funnel_reached": """SELECT r.team, CAST(date_trunc('quarter', f.first_seen_at) AS DATE), count(*)
        FROM stage_funnel f JOIN reps r ON r.rep_id = f.owner_id WHERE f.started_at_top AND f.reached GROUP BY 1, 2""",
    "skipped_stage_deals": """SELECT r.team, CAST(date_trunc('quarter', f.first_seen_at) AS DATE), count(*)
        FROM stage_funnel f JOIN reps r ON r.rep_id = f.owner_id WHERE f.skipped GROUP BY 1, 2""",
    "dwell_days_cumulative_mean": """SELECT r.team, CAST(date_trunc('quarter', f.first_entered_at) AS DATE),
            avg(f.dwell_days_total)
        FROM stage_funnel f JOIN reps r ON r.rep_id = f.owner_id
        WHERE f.entered AND NOT f.in_stage_now GROUP BY 1, 2""",
    # stage_intervals (one row per visit), timed by entry
    "stage_visits_to_next": """SELECT r.team, CAST(date_trunc('quarter', v.entered_at) AS DATE), count(*)
        FROM stage_intervals v JOIN reps r ON r.rep_id = v.owner_id
        WHERE v.stage_kind = 'open' AND v.exited_at IS NOT NULL AND v.exited_to_next GROUP BY 1, 2""",
    "stage_visits_entered": """SELECT r.team, CAST(date_trunc('quarter', v.entered_at) AS DATE), count(*)
        FROM stage_intervals v JOIN reps r ON r.rep_id = v.owner_id WHERE v.stage_kind = 'open' GROUP BY 1, 2""",
    # close_date_changes, timed by the close date before the change
    "slipped_deals_month": """SELECT c.owner_team, CAST(date_trunc('quarter', c.close_date_before) AS DATE), count(DISTINCT c.deal_id)
        FROM close_date_changes c JOIN reps r ON r.rep_id = c.owner_id
        WHERE c.pushed_out_of_month GROUP BY 1, 2""",
    "slip_count": """SELECT c.owner_team, CAST(date_trunc('quarter', c.close_date_before) AS DATE), count(*)
        FROM close_date_changes c JOIN reps r ON r.rep_id = c.owner_id
        WHERE c.pushed_out_of_quarter GROUP BY 1, 2""",
    "close_date_pushes": """SELECT c.owner_team, CAST(date_trunc('quarter', c.close_date_before) AS DATE), count(*)
        FROM close_date_changes c JOIN reps r ON r.rep_id = c.owner_id WHERE c.is_push GROUP BY 1, 2""",
    # pipeline_snapshots (last snapshot) and pipeline_flow (by close quarter)
    "pipeline_as_of_deals": """SELECT r.team, CAST(date_trunc('quarter', p.close_date) AS DATE), count(*)
        FROM pipeline_snapshots p JOIN reps r ON r.rep_id = p.owner_id
        WHERE p.snapshot_date = (SELECT max(snapshot_date) FROM pipeline_snapshots) GROUP BY 1, 2""",
    **{f"flow_{name}": f"""SELECT r.team, CAST(date_trunc('quarter', p.window_start) AS DATE), sum(p.amount)
        FROM pipeline_flow p JOIN reps r ON r.rep_id = p.owner_id WHERE p.category IN ({cats}) GROUP BY 1, 2"""
       for name, cats in [("start", "'start'"), ("created", "'created'"), ("pulled_in", "'pulled_in'"),
                          ("increased", "'increased'"), ("decreased", "'decreased'"),
                          ("pushed_out", "'pushed_out', 'pulled_out'"), ("won", "'won'"), ("lost", "'lost'")]},
    # lead_facts, timed by lead created_at (leads without an owner: team NULL)
    "leads": """SELECT r.team, CAST(date_trunc('quarter', l.created_at) AS DATE), count(*)
        FROM lead_facts l LEFT JOIN reps r ON r.rep_id = l.owner_id GROUP BY 1, 2""",
    "converted_leads": """SELECT r.team, CAST(date_trunc('quarter', l.created_at) AS DATE), count(*)
        FROM lead_facts l LEFT JOIN reps r ON r.rep_id = l.owner_id WHERE l.is_converted GROUP BY 1, 2""",
    "lead_time_to_convert": """SELECT r.team, CAST(date_trunc('quarter', l.created_at) AS DATE), avg(l.days_to_convert)
        FROM lead_facts l LEFT JOIN reps r ON r.rep_id = l.owner_id WHERE l.is_converted GROUP BY 1, 2""",
    "lead_time_to_convert_median": """SELECT r.team, CAST(date_trunc('quarter', l.created_at) AS DATE), median(l.days_to_convert)
        FROM lead_facts l LEFT JOIN reps r ON r.rep_id = l.owner_id WHERE l.is_converted GROUP BY 1, 2""",
    "avg_lead_score": """SELECT r.team, CAST(date_trunc('quarter', l.created_at) AS DATE), avg(s.lead_score)
        FROM lead_facts l JOIN lead_scores s ON s.lead_id = l.lead_id LEFT JOIN reps r ON r.rep_id = l.owner_id GROUP BY 1, 2""",
    # ---- customer value and acquisition cost (#19), over the derived tables the metrics read; the
    # owner's team as those tables store it (owner_team, written at ingest), as a person would query it
    "new_customers": """SELECT c.owner_team, CAST(date_trunc('quarter', c.first_won_date) AS DATE), count(*)
        FROM customer_facts c GROUP BY 1, 2""",
    "clv": """SELECT c.owner_team, CAST(date_trunc('quarter', c.first_won_date) AS DATE),
               sum(c.won_revenue) / NULLIF(count(*) FILTER (WHERE c.is_churned), 0)
        FROM customer_facts c GROUP BY 1, 2""",
    "cohort_retention": """SELECT q.owner_team, CAST(date_trunc('quarter', q.quarter_start) AS DATE),
               count(*) FILTER (WHERE q.bought) / count(*)
        FROM customer_quarters q GROUP BY 1, 2""",
    "new_customer_revenue": """SELECT w.owner_team, CAST(date_trunc('quarter', w.close_date) AS DATE), sum(w.amount)
        FROM won_deals w WHERE w.is_new GROUP BY 1, 2""",
    "attributed_linear": """SELECT a.owner_team, CAST(date_trunc('quarter', a.close_date) AS DATE), sum(a.rev_linear)
        FROM attribution_credit a GROUP BY 1, 2""",
    "marketing_spend": """SELECT CAST(date_trunc('quarter', period_start) AS DATE), sum(amount) FROM spend GROUP BY 1""",
    "cac": """WITH s AS (SELECT CAST(date_trunc('quarter', period_start) AS DATE) AS p, sum(amount) AS spend
                        FROM spend GROUP BY 1),
                   c AS (SELECT CAST(date_trunc('quarter', first_won_date) AS DATE) AS p, count(*) AS n
                         FROM customer_facts GROUP BY 1)
        SELECT coalesce(s.p, c.p), s.spend / NULLIF(c.n, 0) FROM s FULL JOIN c ON s.p = c.p""",
}
# hand queries that read the same derived table as the semantic one (see the comment above)
SAME_TABLE = {"new_customers", "clv", "cohort_retention", "new_customer_revenue", "attributed_linear", "cac",
              "stage_conversion", "stage_conversion_resolved", "stage_conversion_top_of_funnel", "funnel_reach_rate",
              "stage_conversion_per_visit", "backward_moves", "stage_skips", "dwell_days_mean", "dwell_days_median", "dwell_days_p90",
              "dwell_days_cumulative_median", "flow_net_change", "flow_end", "slipped_deals", "pipeline_as_of",
              "stalled_deals", "stalled_amount", "weighted_pipeline_historical", "lead_conversion",
              "forecast_historical", "days_in_current_stage", "days_in_current_stage_median", "stalled_share",
              "high_value_deals", "high_value_amount", "avg_high_value_score", "top20_amount", "top20_share",
              "stage_entries", "stage_to_next", "stage_forward", "stage_conversion_with_skips", "stage_advanced",
              "stage_advance_rate", "stage_exits", "stage_exits_to_next", "top_stage_entries", "top_stage_to_next",
              "funnel_cohort", "funnel_reached", "skipped_stage_deals", "dwell_days_cumulative_mean",
              "stage_visits_to_next", "stage_visits_entered", "slipped_deals_month", "slip_count", "close_date_pushes",
              "pipeline_as_of_deals", "flow_start", "flow_created", "flow_pulled_in", "flow_increased",
              "flow_decreased", "flow_pushed_out", "flow_won", "flow_lost", "leads", "converted_leads",
              "lead_time_to_convert", "lead_time_to_convert_median", "avg_lead_score"}
# metrics whose hand query needs the same filter in the semantic query
FILTERS = {"pipeline_as_of": "SNAPSHOT", "pipeline_as_of_deals": "SNAPSHOT"}
# metrics where an absent group is 0 in the semantic answer (additive) but absent in the hand SQL
ADDITIVE = {"pipeline_amount", "weighted_pipeline", "weighted_pipeline_historical", "closed_won_amount", "forecast",
            "target", "stalled_deals", "stalled_amount", "pipeline_as_of", "backward_moves", "stage_skips", "flow_net_change", "flow_end",
            "open_deals", "closed_lost_amount", "forecast_historical", "forecast_closed", "commit_open_amount",
            "best_case_open_amount", "pipeline_category_open_amount", "forecast_commit", "forecast_best_case",
            "forecast_pipeline", "target_team_rows", "target_gap", "target_gap_closed", "remaining_quota", "won_deals",
            "lost_deals", "closed_deals", "closed_amount", "won_cycle_days_total", "created_deals", "created_amount",
            "closed_won_cumulative", "high_value_deals", "high_value_amount", "top20_amount", "stage_entries",
            "stage_to_next", "stage_forward", "stage_advanced", "stage_exits", "stage_exits_to_next",
            "top_stage_entries", "top_stage_to_next", "funnel_cohort", "funnel_reached", "skipped_stage_deals",
            "stage_visits_to_next", "stage_visits_entered", "slipped_deals_month", "slip_count", "close_date_pushes",
            "pipeline_as_of_deals", "flow_start", "flow_created", "flow_pulled_in", "flow_increased", "flow_decreased",
            "flow_pushed_out", "flow_won", "flow_lost", "leads", "converted_leads", "new_customers", "new_customer_revenue",
            "attributed_linear"}


def _median_ms(con, sql: str, runs: int, other: str | None = None) -> tuple[float, list, float | None, list | None]:
    """Median ms of ``sql`` (and of ``other``, run alternately with it so both see the same machine load:
    on a shared 2-core box a burst of someone else's work otherwise lands on one side only)."""
    cur = con.cursor()
    rows = cur.execute(sql).fetchall()  # warm-up
    other_rows = cur.execute(other).fetchall() if other else None
    times, other_times = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        rows = cur.execute(sql).fetchall()
        times.append((time.perf_counter() - t0) * 1000)
        if other:
            t0 = time.perf_counter()
            other_rows = cur.execute(other).fetchall()
            other_times.append((time.perf_counter() - t0) * 1000)
    cur.close()
    return statistics.median(times), rows, (statistics.median(other_times) if other else None), other_rows


def _normal(rows, drop_zero: bool):
    out = {}
    for row in rows:
        # metrics no team reaches (spend) come back as (period, value)
        team, period, value = row if len(row) == 3 else (None, *row)
        v = None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
        if drop_zero and (v is None or v == 0):
            continue
        out[(team, str(period))] = v
    return out


def _equal(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for k in a:
        x, y = a[k], b[k]
        if (x is None) != (y is None):
            return False
        if x is not None and not math.isclose(x, y, rel_tol=1e-9, abs_tol=0.01):
            return False
    return True


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--deals", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--db", help="reuse an ingested database instead of generating one")
    ap.add_argument("--metrics", help="comma-separated metric names to time (default: all)")
    ap.add_argument("--ordered", action="store_true",
                    help="compile with the default ORDER BY of the dimensions (the hand-written queries have none)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO / "src"))
    from pipelinebi.compiler.query import Filter, Query
    from pipelinebi.semantic import load_semantic_layer

    layer = load_semantic_layer(REPO / "semantic")
    if args.db:
        db = Path(args.db)
    else:
        from pipelinebi.generate import generate
        from pipelinebi.ingest import ingest

        tmp = Path(tempfile.mkdtemp(prefix="bench-metrics-"))
        t0 = time.perf_counter()
        generate(tmp / "data", deals=args.deals, seed=42, fmt="parquet")
        t1 = time.perf_counter()
        report = ingest(tmp / "data", tmp / "bench.duckdb", semantic_dir=REPO / "semantic")
        assert report.ok, report.problems
        print(f"generated {args.deals} deals in {t1 - t0:.1f}s, ingested in {time.perf_counter() - t1:.1f}s")
        db = tmp / "bench.duckdb"
    con = duckdb.connect(str(db), read_only=True)
    last_snapshot = con.execute("SELECT max(snapshot_date) FROM pipeline_snapshots").fetchall()[0][0]

    print(f"{'metric':32} {'semantic ms':>12} {'hand ms':>9} {'ratio':>6}  same")
    worst, slow, mismatches = 0.0, [], []
    names = args.metrics.split(",") if args.metrics else list(layer.metrics)
    for name in names:
        filters = ()
        if FILTERS.get(name) == "SNAPSHOT":
            filters = (Filter(dimension="snapshot_date", value=last_snapshot),)
        dims = ("team",) if "team" in layer.dimensions_for(name) else ()
        # rows compared as sets (_normal keys them by team and period) and the hand-written queries
        # write no ORDER BY: the generated one is asked the same way (Query.ordered=False) unless
        # --ordered times the default, rows ordered by the dimensions
        q = Query(metrics=(name,), dimensions=dims, grain="quarter", filters=filters, ordered=args.ordered)
        # as `pipelinebi query` and the app compile it on this database: with the copies checked
        # on it (a team read off owner_team, no join: access/copies.py) — but without rollups,
        # which would answer from precomputed rows the hand-written query does not have
        q = layer.with_copies(q, con)
        sql = layer.compile(q, pretty=False)
        sem_ms, sem_rows, hand_ms, hand_rows = _median_ms(con, sql, args.runs, HAND.get(name))
        if name not in HAND:
            print(f"{name:32} {sem_ms:12.1f} {'-':>9} {'-':>6}  (no hand-written query)")
            if sem_ms > 300:
                slow.append(name)
            continue
        same = _equal(_normal(sem_rows, name in ADDITIVE), _normal(hand_rows, name in ADDITIVE))
        ratio = sem_ms / hand_ms
        worst = max(worst, ratio)
        if sem_ms > 300:
            slow.append(name)
        if not same:
            mismatches.append(name)
        label = f"{name}{' *' if name in SAME_TABLE else ''}"
        print(f"{label:32} {sem_ms:12.1f} {hand_ms:9.1f} {ratio:6.2f}  {'yes' if same else 'NO'}")
    print("\n* hand-written over the same derived table (the rows the question is about), not only canonical tables")
    print(f"worst ratio {worst:.2f} (goal <= 1.1); over 300 ms: {', '.join(slow) or 'none'}; "
          f"answers differ: {', '.join(mismatches) or 'none'}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    raise SystemExit(main())
