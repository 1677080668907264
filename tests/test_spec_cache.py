"""Chart specs kept across reruns (``app/components/spec_cache.py``): a spec is rebuilt only
when what it shows changes, and one viewer's picture is never handed to another.

The rows each viewer may see are computed apart from the app (hand-written SQL on the demo
database's ``reps`` table), and the spec's own data is read back from the spec.
"""

from __future__ import annotations

import sys

import altair as alt
import pandas as pd
import pytest

from app_support import APP_DIR
from auth_helpers import scope_as
from pipelinebi.access import OPEN_SCOPE
from pipelinebi.compiler.query import Query
from pipelinebi.warehouse import open_readonly

if str(APP_DIR) not in sys.path:
    sys.path.insert(0, str(APP_DIR))

AVA, APAC = "ava.chen@pipelinebi.example", "apac.manager@pipelinebi.example"


@pytest.fixture(scope="module")
def app(demo_db):
    mp = pytest.MonkeyPatch()
    mp.setenv("PIPELINEBI_DATABASE", str(demo_db))
    mp.setenv("PIPELINEBI_AUTH", "oidc")
    mp.delenv("PIPELINEBI_SEMANTIC_DIR", raising=False)
    from components import auth, data, spec_cache

    yield data, auth, spec_cache
    mp.undo()


def as_viewer(data, auth, email):
    data.begin_run()
    layer = data.base_layer()
    if email is None:
        data.set_viewer(auth.Viewer("none", None, OPEN_SCOPE, "every deal"))
    else:
        data.set_viewer(auth.Viewer("oidc", email, scope_as(email, layer), ""))


def spec_rows(spec: dict) -> list[dict]:
    """The rows a spec draws (Altair puts them in ``datasets``; the cache keeps them as the Arrow
    bytes Streamlit sends)."""
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    (rows,) = spec["datasets"].values()
    return convert_arrow_bytes_to_pandas_df(rows).to_dict("records")


def test_frame_digest_follows_values_columns_and_types(app):
    _, _, spec_cache = app
    d = spec_cache.frame_digest
    a = pd.DataFrame({"team": ["APAC", "EMEA"], "amount": [1.0, 2.0]})
    assert d(a) == d(a.copy())
    assert d(a) != d(a.assign(amount=[1.0, 3.0]))           # a value
    assert d(a) != d(a.rename(columns={"amount": "value"}))  # a column name
    assert d(a) != d(a.astype({"amount": "float32"}))       # a type
    assert d(a) != d(a.iloc[::-1])                          # the order (bars are drawn in it)


def test_a_spec_is_built_once_per_data_and_rebuilt_when_it_changes(app):
    data, auth, spec_cache = app
    import streamlit as st

    st.cache_data.clear()
    as_viewer(data, auth, None)
    built = []

    def build(df):
        built.append(len(df))
        return alt.Chart(df).mark_bar().encode(x="amount:Q", y="team:N")

    a = pd.DataFrame({"team": ["APAC", "EMEA"], "amount": [1.0, 2.0]})
    first = spec_cache.spec(lambda: build(a), "bars", frames=(a,))
    again = spec_cache.spec(lambda: build(a.copy()), "bars", frames=(a.copy(),))
    assert built == [2] and first == again
    b = pd.DataFrame({"team": ["APAC"], "amount": [5.0]})
    other = spec_cache.spec(lambda: build(b), "bars", frames=(b,))
    assert built == [2, 1]
    assert spec_rows(other) == [{"team": "APAC", "amount": 5.0}]
    spec_cache.spec(lambda: build(a), "bars", 400, frames=(a,))  # another argument: another spec
    assert built == [2, 1, 2]


def test_two_viewers_never_share_a_spec(app, demo_db):
    """A rep and a manager draw the same tile (pipeline by rep): each spec holds exactly the
    reps that viewer may see — and even an identical frame gets a key of its own per scope."""
    data, auth, spec_cache = app
    import streamlit as st

    st.cache_data.clear()
    con = open_readonly(demo_db)
    try:
        allowed = {AVA: set(con.execute("SELECT name FROM reps WHERE rep_id = 'R0001'").df()["name"]),
                   APAC: set(con.execute("SELECT name FROM reps WHERE team = 'APAC'").df()["name"])}
    finally:
        con.close()
    q = Query(metrics=("pipeline_amount",), dimensions=("rep",), order_by=(("rep", False),))
    keys = {}
    for email in (AVA, APAC, AVA, APAC):  # the second round comes from the cache
        as_viewer(data, auth, email)
        df = data.run(q).df
        spec = spec_cache.spec(lambda: alt.Chart(df).mark_bar().encode(x="pipeline_amount:Q", y="rep:N"),
                               "pipeline by rep", frames=(df,))
        reps = {r["rep"] for r in spec_rows(spec)}
        assert reps and reps <= allowed[email], email
        assert reps == set(df["rep"])
        same = pd.DataFrame({"x": [1]})
        keys.setdefault(email, set()).add(spec_cache.key("tile", frames=(same,)))
    assert all(len(k) == 1 for k in keys.values())
    assert keys[AVA] != keys[APAC]
