"""Shared caches, separate people: the app's data path (``app/components/data.py``) with
several people at once.

Streamlit runs every session's script in a thread of one process, and ``st.cache_data`` /
``st.cache_resource`` are shared by all of them. These tests run the app's own data path the
same way — each thread names its viewer as ``components.auth`` does for a session, then runs
page queries through ``data.run`` and ``data.dimension_values`` — and check every answer
against the semantic layer's answer for that viewer's scope, computed beforehand, apart from
the app (own connection, no cache).
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from app_support import APP_DIR
from auth_helpers import scope_as
from pipelinebi.access import OPEN_SCOPE
from pipelinebi.compiler.query import Filter, Query
from pipelinebi.dashboards import load_dashboards, page_queries
from pipelinebi.dashboards.queries import PageState, period_bounds, shift_range
from pipelinebi.warehouse import database_as_of, open_readonly

if str(APP_DIR) not in sys.path:
    sys.path.insert(0, str(APP_DIR))

REPO = Path(__file__).resolve().parents[1]
EMAILS = ("ava.chen@pipelinebi.example", "noah.brown@pipelinebi.example", "apac.manager@pipelinebi.example",
          "emea.lead@pipelinebi.example", None)  # None: open access
SESSIONS = 20
#: PIPELINEBI_SESSION_SECONDS=60 (CI's access tier): every session keeps querying for the whole
#: minute, as the issue asks; by default 40 runs each, stopped at 45 s, for the fast suite.
LONG_S = float(os.environ.get("PIPELINEBI_SESSION_SECONDS", "0"))
DEADLINE_S = LONG_S or 45.0
RUNS_PER_SESSION = 10**9 if LONG_S else 40



@pytest.fixture(scope="module")
def app_data(demo_db):
    """``components.data`` and ``components.auth`` with the demo database in the environment."""
    mp = pytest.MonkeyPatch()
    mp.setenv("PIPELINEBI_DATABASE", str(demo_db))
    mp.setenv("PIPELINEBI_AUTH", "oidc")
    mp.delenv("PIPELINEBI_SEMANTIC_DIR", raising=False)
    from components import auth, data

    yield data, auth
    mp.undo()


def viewer_for(auth, layer, email):
    if email is None:
        return auth.Viewer("none", None, OPEN_SCOPE, "every deal")
    return auth.Viewer("oidc", email, scope_as(email, layer), "")


def canonical(df: pd.DataFrame) -> pd.DataFrame:
    """Rows in a fixed order (a query without ORDER BY may return them in any order)."""
    if df.empty:
        return df.reset_index(drop=True)
    return df.sort_values(list(df.columns), kind="mergesort", na_position="last").reset_index(drop=True)


def same(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    try:
        pd.testing.assert_frame_equal(canonical(a), canonical(b), check_dtype=False)
        return True
    except AssertionError:
        return False


@pytest.fixture(scope="module")
def workload(demo_db, layer):
    """Page queries of every dashboard over three quarters, plus a deal list and a picker, with
    each viewer's true answer."""
    con = open_readonly(demo_db)
    try:
        as_of = database_as_of(con)
        queries: list[Query] = []
        start, end = period_bounds(as_of, "quarter")
        # company-wide figures (marketing spend has no rep) are refused for a scoped viewer, and
        # pages leave them out for one (answers.beyond_scope): they name no one's rows to share
        from pipelinebi.dashboards.answers import metric_tables
        company_wide = frozenset(m for m in layer.metrics if "spend" in metric_tables(layer, m))
        for back in range(3):
            s, e = shift_range(start, end, "quarter", -back)
            state = PageState(s, e, unavailable=company_wide)
            for page in load_dashboards(REPO / "semantic", layer):
                queries += page_queries(page.definition, state, layer)
        queries.append(Query(metrics=("pipeline_amount",), dimensions=("stage", "deal_id", "rep", "team"),
                             filters=(Filter(dimension="status", value="open"),),
                             order_by=(("pipeline_amount", True), ("deal_id", False)), limit=5, limit_per="stage"))
        queries = list(dict.fromkeys(queries))
        truth = {}
        for email in EMAILS:
            scope = scope_as(email, layer) if email else OPEN_SCOPE
            for q in queries:
                truth[(email, q)] = layer.query(q.model_copy(update={"scope": scope}), con).df()
        allowed = {}
        cur = con.cursor()
        for email in EMAILS:
            rule = {"ava.chen@pipelinebi.example": "rep_id = 'R0001'", "noah.brown@pipelinebi.example": "rep_id = 'R0002'",
                    "apac.manager@pipelinebi.example": "team = 'APAC'", "emea.lead@pipelinebi.example": "region = 'EMEA'",
                    None: "TRUE"}[email]
            allowed[email] = set(cur.execute(f"SELECT name FROM reps WHERE {rule}").df()["name"])
        cur.close()
        return queries, truth, allowed
    finally:
        con.close()


def test_two_scopes_never_share_a_cached_result(app_data, layer, workload):
    data, auth = app_data
    import streamlit as st

    st.cache_data.clear()
    queries, truth, _ = workload
    q = next(q for q in queries if "team" in q.dimensions) if any("team" in q.dimensions for q in queries) else queries[0]
    seen = {}
    for email in EMAILS + EMAILS:  # each viewer twice: the second time from the cache
        data.begin_run()
        data.set_viewer(viewer_for(auth, layer, email))
        ans = data.run(q)
        assert same(ans.df, truth[(email, q)]), email
        if email in seen:
            assert ans.sql == seen[email][0] and same(ans.df, seen[email][1])
        seen[email] = (ans.sql, ans.df, data.db_key(), tuple(data.dimension_values("rep")))
    # one SQL text, one cache key and one picker list per scope: nothing to share
    assert len({s[0] for s in seen.values()}) == len(EMAILS)
    assert len({s[2] for s in seen.values()}) == len(EMAILS)
    assert len({s[3] for s in seen.values()}) == len(EMAILS)
    assert seen["ava.chen@pipelinebi.example"][3] == ("Ava Chen",)


def test_a_page_cannot_swap_in_a_wider_scope(app_data, layer):
    data, auth = app_data
    from pipelinebi.errors import AccessError

    data.begin_run()
    data.set_viewer(viewer_for(auth, layer, "ava.chen@pipelinebi.example"))
    with pytest.raises(AccessError, match="is signed in"):
        data.run(Query(metrics=("pipeline_amount",), scope=OPEN_SCOPE))
    # a benchmark is company-wide only for listed metrics, and says so
    assert data.run(Query(metrics=("stage_conversion_resolved",), dimensions=("stage",)), benchmark=True).benchmark
    assert not data.run(Query(metrics=("pipeline_amount",)), benchmark=True).benchmark


def test_twenty_concurrent_sessions_never_see_each_others_rows(app_data, layer, workload):
    """20 threads (Streamlit sessions are threads), alternating five viewers, each running
    random page queries and pickers through the shared caches — 40 runs each within 45 s, or
    for PIPELINEBI_SESSION_SECONDS seconds."""
    data, auth = app_data
    import streamlit as st

    st.cache_data.clear()
    queries, truth, allowed = workload
    problems: list[str] = []
    counts = [0] * SESSIONS
    deadline = time.monotonic() + DEADLINE_S
    start = threading.Barrier(SESSIONS)

    def session(i: int) -> None:
        email = EMAILS[i % len(EMAILS)]
        rng = random.Random(i)
        viewer = viewer_for(auth, layer, email)
        start.wait()
        try:
            for n in range(RUNS_PER_SESSION):
                if time.monotonic() > deadline:
                    break
                data.begin_run()  # a rerun: the entrypoint names the viewer again
                data.set_viewer(viewer)
                if n % 10 == 9:
                    reps = set(data.dimension_values("rep"))
                    if not reps <= allowed[email] or (email and not reps):
                        problems.append(f"session {i} ({email}): picker lists {sorted(reps - allowed[email])[:3]}")
                    continue
                q = rng.choice(queries)
                df = data.run(q).df
                if not same(df, truth[(email, q)]):
                    problems.append(f"session {i} ({email}): wrong answer to {q.metrics} by {q.dimensions}")
                if "rep" in df.columns and not set(df["rep"].dropna()) <= allowed[email]:
                    problems.append(f"session {i} ({email}): rows of {sorted(set(df['rep']) - allowed[email])[:3]}")
                counts[i] += 1
        except Exception as e:  # noqa: BLE001 - reported below, with the session
            problems.append(f"session {i} ({email}): {type(e).__name__}: {e}")

    threads = [threading.Thread(target=session, args=(i,), name=f"session-{i}") for i in range(SESSIONS)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=DEADLINE_S + 30)
    elapsed = time.monotonic() - t0
    assert not any(t.is_alive() for t in threads), "a session did not finish"
    assert not problems, problems[:10]
    assert sum(counts) >= SESSIONS * 5, f"only {sum(counts)} queries ran in {elapsed:.1f} s"
    assert elapsed < DEADLINE_S + 15  # every session stops at the deadline: none hung on a lock
    if LONG_S:
        assert elapsed >= LONG_S, f"the sessions ran {elapsed:.1f} s, not {LONG_S:.0f} s"
    print(f"\n{SESSIONS} sessions, {sum(counts)} queries checked in {elapsed:.1f} s")
