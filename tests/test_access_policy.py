"""``semantic/access.yml`` is validated like every YAML file: each problem says file, line, what
is wrong, what is accepted and the closest match — for roles, users, groups, hidden metrics and
dimensions, and company benchmarks (row rules: ``tests/security/test_scope_properties.py``).
"""

from __future__ import annotations

import textwrap

import pytest

from pipelinebi.access import load_access
from pipelinebi.access.policy import Policy
from pipelinebi.errors import DefinitionError



def problems(tmp_path, layer, text: str) -> list[str]:
    (tmp_path / "access.yml").write_text(textwrap.dedent(text))
    with pytest.raises(DefinitionError) as err:
        load_access(tmp_path, layer)
    # the path is shown relative to the semantic folder's parent: "<folder>/access.yml:LINE: …"
    return [str(p).removeprefix(f"{tmp_path.name}/") for p in err.value.problems]


def test_unknown_roles_of_users_and_groups_are_located(tmp_path, layer):
    msgs = problems(tmp_path, layer, """\
        roles:
          manager: {rows: "reps.team IN ({{ user.teams }})"}
          rep: {rows: "reps.rep_id = {{ user.rep_id }}"}
        users:
          - {email: a@x.com, role: rep, rep_id: R1}
          - {email: b@x.com, role: manger}
          - {email: A@x.com, role: rep, rep_id: R2}
        groups:
          sales: boss
        """)
    assert "access.yml:6: users[1] (b@x.com): unknown role 'manger' (did you mean 'manager'?)" in msgs
    assert "access.yml:9: groups.sales: unknown role 'boss' (roles: manager, rep)" in msgs
    # e-mails compare case-insensitively: A@x.com is a@x.com again
    assert "access.yml:7: users[2]: a@x.com is listed twice (one entry per person)" in msgs


def test_hidden_metrics_dimensions_and_benchmarks_must_exist(tmp_path, layer):
    msgs = problems(tmp_path, layer, """\
        roles:
          rep:
            rows: "reps.rep_id = {{ user.rep_id }}"
            deny_metrics: [win_rat]
            deny_dimensions: [acount]
        benchmarks: [dwell_days_medain]
        """)
    assert "access.yml:4: role rep: deny_metrics: unknown metric 'win_rat' (did you mean 'win_rate'?)" in msgs
    assert "access.yml:5: role rep: deny_dimensions: unknown dimension 'acount' (did you mean 'account'?)" in msgs
    assert "access.yml:6: benchmarks: unknown metric 'dwell_days_medain' (did you mean 'dwell_days_median'?)" in msgs


def test_a_misspelled_key_is_named_with_the_accepted_one(tmp_path, layer):
    msgs = problems(tmp_path, layer, """\
        roles:
          boss:
            rowz: all
        """)
    assert any(m.startswith("access.yml:3: roles.boss.rowz: unknown key 'rowz'") and "did you mean 'rows'" in m
               for m in msgs), msgs


def test_a_policy_built_in_code_is_checked_too():
    with pytest.raises(ValueError, match="unknown role 'manger'"):
        Policy.model_validate({"roles": {"manager": {"rows": "all"}}, "users": [{"email": "b@x.com", "role": "manger"}]})


@pytest.mark.parametrize("query, hidden", [
    (dict(metrics=("win_rate",)), "'win_rate'"),
    (dict(metrics=("pipeline_amount",), dimensions=("rep",)), "'rep'"),
    (dict(metrics=("pipeline_amount",), dimensions=("team",), top={"dimension": "team", "by": "win_rate", "count": 3}),
     "'win_rate'"),
])
def test_a_query_naming_a_hidden_metric_or_dimension_is_refused(layer, query, hidden):
    """Not offered in the pickers (test_access_pickers.py) and refused if asked anyway (CLI, URL)."""
    from pipelinebi.access.scope import scope_for
    from pipelinebi.compiler.query import Query, TopValues
    from pipelinebi.errors import QueryError

    policy = Policy.model_validate({"roles": {"rep": {"rows": "reps.rep_id = {{ user.rep_id }}",
                                                      "deny_metrics": ["win_rate"], "deny_dimensions": ["rep"]}},
                                    "users": [{"email": "r@x.com", "role": "rep", "rep_id": "R0001"}]})
    scope = scope_for(policy, policy.user("r@x.com"))
    if "top" in query:
        query = {**query, "top": TopValues(**query["top"])}
    with pytest.raises(QueryError) as err:
        layer.compile(Query(**query, scope=scope))
    assert f"may not see {hidden}" in str(err.value) and "semantic/access.yml" in str(err.value)
    layer.compile(Query(**query))  # the same query is fine for a role that does not hide them
