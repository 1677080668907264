"""The app's small answers about a dimension's values (app/components/data.py): a picker's
options with how many there are (``picker_values``), and whether a drill link's value exists
(``has_value``). They are cached as what the page needs — a count and a short list, two
booleans — because a cached list comes back unpickled on every rerun (166,000 rep names at 10M
deals: ~40 ms of each deal board rerun). Expected values come from hand SQL on the demo database."""

from __future__ import annotations

import json

import duckdb
from streamlit.testing.v1 import AppTest

from app_support import APP_DIR


def _script(app_dir: str, calls: str) -> str:
    return (f"import json, sys\nsys.path.insert(0, {app_dir!r})\nimport streamlit as st\n"
            "from components import auth, data\ndata.begin_run()\nassert auth.gate() is not None\n"
            f"st.code(json.dumps({calls}))\n")


def _answers(calls: str):
    at = AppTest.from_string(_script(str(APP_DIR), calls), default_timeout=60).run()
    assert not at.exception, at.exception
    return json.loads(at.code[0].value)


def _reps(db, team=None) -> list[str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        # the first probe the semantic layer defines is pipeline_amount (open deals): the names of
        # the owners of open deals, sorted
        sql = ("SELECT DISTINCT r.name FROM deals d JOIN reps r ON d.owner_id = r.rep_id "
               "WHERE r.name IS NOT NULL AND d.status = 'open'")
        rows = con.execute(sql + (" AND r.team = ?" if team else "") + " ORDER BY 1", [team] if team else []).fetchall()
    finally:
        con.close()
    return [r[0] for r in rows]


def test_picker_values_gives_the_count_and_the_options_only_under_the_cap(env):
    every, apac = _reps(env), _reps(env, "APAC")
    assert len(every) > len(apac) > 2
    under, over, team = _answers(f'[data.picker_values("rep", None, {len(every)}), '
                                 f'data.picker_values("rep", None, {len(every) - 1}), '
                                 f'data.picker_values("rep", {{"team": "APAC", "region": None}}, 1000)]')
    assert under == [len(every), every]
    assert over == [len(every), []]  # too many to offer: the count says so, no list kept
    assert team == [len(apac), apac]


def test_has_value_says_whether_a_drill_value_exists(env):
    rep = _reps(env, "APAC")[0]
    other_team = next(r for r in _reps(env) if r not in _reps(env, "APAC"))
    got = _answers(f'[data.has_value("rep", {rep!r}, {{"team": "APAC"}}, every=True), '
                   f'data.has_value("rep", {other_team!r}, {{"team": "APAC"}}, every=True), '
                   f'data.has_value("rep", "Nobody Atall", every=True), '
                   f'data.has_value("rep", {rep!r}, {{"team": "No Such Team"}}, every=True)]')
    assert got == [[True, True], [True, False], [True, False], [False, False]]
