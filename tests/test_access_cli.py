"""``pipelinebi query --as EMAIL``: an analyst sees what that person would see, or is refused
where ``semantic/access.yml`` says so — a message, never a traceback, never every row.

Expected numbers come from the seed CSVs with pandas, apart from the compiler.
"""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from pipelinebi.cli import main
from pipelinebi.settings import PROJECT_ROOT

SEM = PROJECT_ROOT / "semantic"
# keep_default_na=False: the region "NA" is North America, not a missing value.
REPS = pd.read_csv(PROJECT_ROOT / "seeds" / "reps.csv", keep_default_na=False)
DEALS = pd.read_csv(PROJECT_ROOT / "seeds" / "deals.csv", keep_default_na=False)


def query_as(capsys, db, semantic, email, *extra) -> tuple[int, str, str]:
    code = main(["query", "--database", str(db), "--semantic", str(semantic), "-m", "pipeline_amount,open_deals",
                 "-b", "rep", "--format", "json", "--as", email, *extra])
    out = capsys.readouterr()
    return code, out.out, out.err


def open_by_rep(reps: set[str]) -> dict[str, tuple[float, int]]:
    d = DEALS[(DEALS.status == "open") & DEALS.owner_id.isin(reps)].copy()
    d["amount"] = pd.to_numeric(d.amount, errors="coerce")
    names = dict(zip(REPS.rep_id, REPS.name))
    return {names[r]: (g.amount.sum(), len(g)) for r, g in d.groupby("owner_id")}


@pytest.mark.parametrize("email, reps", [
    ("ava.chen@pipelinebi.example", {"R0001"}),
    ("apac.manager@pipelinebi.example", set(REPS[REPS.team == "APAC"].rep_id)),
    ("ceo@pipelinebi.example", set(REPS.rep_id)),
])
def test_as_shows_that_persons_rows_only(capsys, demo_db, email, reps):
    code, out, err = query_as(capsys, demo_db, SEM, email)
    assert code == 0, err
    rows = json.loads(out)
    got = {r["rep"]: (r["pipeline_amount"], r["open_deals"]) for r in rows if r["open_deals"]}
    want = open_by_rep(reps)
    assert set(got) == set(want)
    for name, (amount, n) in want.items():
        assert got[name][1] == n and got[name][0] == pytest.approx(amount), name


def test_as_someone_without_a_role_is_refused(capsys, demo_db):
    code, out, err = query_as(capsys, demo_db, SEM, "stranger@example.com")
    assert code == 2 and out == ""
    assert "this user has no role in semantic/access.yml" in err and "Traceback" not in err


def test_as_is_refused_where_the_policy_turns_it_off(capsys, demo_db, tmp_path):
    sem = tmp_path / "semantic"
    shutil.copytree(SEM, sem)
    text = (sem / "access.yml").read_text()
    assert "allow_cli_as: true" in text
    (sem / "access.yml").write_text(text.replace("allow_cli_as: true", "allow_cli_as: false"))
    code, out, err = query_as(capsys, demo_db, sem, "ava.chen@pipelinebi.example")
    assert code == 2 and out == ""
    assert "--as is turned off by semantic/access.yml (allow_cli_as: false)" in err


def test_as_without_a_policy_is_refused_not_answered_for_everyone(capsys, demo_db, tmp_path):
    sem = tmp_path / "semantic"
    shutil.copytree(SEM, sem)
    (sem / "access.yml").unlink()
    code, out, err = query_as(capsys, demo_db, sem, "ava.chen@pipelinebi.example")
    assert code == 2 and out == ""
    assert "--as needs semantic/access.yml" in err


def test_compile_as_shows_the_scope_in_the_sql(capsys):
    assert main(["compile", "--semantic", str(SEM), "-m", "leads", "--as", "apac.manager@pipelinebi.example"]) == 0
    sql = capsys.readouterr().out
    assert "reps.team IN ('APAC')" in sql
