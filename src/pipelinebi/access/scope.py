"""A user's row scope: their role, and its row rule filled in with their attributes
(:mod:`.rules`) — a missing role means nothing to show, never everything.

>>> from pipelinebi.access.policy import Policy
>>> policy = Policy.model_validate({"roles": {"manager": {"rows": "team IN ({{ user.teams }})"}},
...     "users": [{"email": "b@x.com", "role": "manager", "teams": ["EMEA", "O'Neil"]}]})
>>> scope_for(policy, policy.user("b@x.com")).conditions
("team IN ('EMEA', 'O''Neil')",)
>>> scope_for(policy, None)
Traceback (most recent call last):
...
pipelinebi.errors.AccessError: this user has no role in semantic/access.yml, so there is nothing to show (ask an administrator to add the user, or a group of theirs, to semantic/access.yml)
"""

from __future__ import annotations

from ..compiler.query import RowScope
from ..errors import AccessError, Problem
from .policy import Policy, UserDef
from .rules import rule_condition



def role_of(policy: Policy, user: UserDef | None, groups: tuple[str, ...] = ()) -> str | None:
    """The user's role: as listed, else the first group the policy maps, else the default."""
    if user is not None:
        return user.role
    for g in groups:
        if g in policy.groups:
            return policy.groups[g]
    return policy.default_role


def scope_for(policy: Policy, user: UserDef | None, groups: tuple[str, ...] = (), email: str = "") -> RowScope:
    """The :class:`RowScope` of a signed-in person (``user`` as the policy lists them, if it does)."""
    role_name = role_of(policy, user, groups)
    if role_name is None:
        raise AccessError(Problem("this user has no role in semantic/access.yml, so there is nothing to show",
                                  hint="ask an administrator to add the user, or a group of theirs, to "
                                       "semantic/access.yml"))
    role = policy.roles[role_name]
    person = user or UserDef(email=email or "unknown@example.invalid", role=role_name)
    who = f"{person.name or person.email} ({role_name})"
    conditions: tuple[str, ...] = ()
    if not role.sees_everything:
        conditions = (rule_condition(role.rows, person, role_name).sql("duckdb"),)
    return RowScope(who=who, conditions=conditions, benchmarks=policy.benchmarks,
                    deny_metrics=role.deny_metrics, deny_dimensions=role.deny_dimensions)
