"""A user's row scope: the role's rule with the user's attributes as literals in the tree.

The rule text is parsed once with each ``{{ user.x }}`` standing in as a placeholder name,
checked against the filter allow-list, and then the placeholders are *replaced in the tree*
by literal nodes — a team called ``x') OR ('1'='1`` stays one string value.  A missing
attribute becomes NULL and an empty list matches nothing: a half-configured user sees no
rows, never all of them.

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

from dataclasses import replace

from sqlglot import exp

from ..compiler.query import RowScope
from ..errors import AccessError, DefinitionError, ExpressionError, Problem
from ..semantic import allowlist
from ..semantic.expressions import parse_sql
from .policy import ATTRIBUTE, LIST_ATTRIBUTES, Policy, UserDef

_PLACEHOLDER = "__user_{}__"
#: A row rule is a filter: the same allow-list, named as what it is in messages.
ROW_RULE = replace(allowlist.FILTER, where="a row rule")


def rule_condition(rows: str, user: UserDef, role: str = "") -> exp.Expression:
    """The row rule ``rows`` for ``user`` as a checked condition tree."""
    text = ATTRIBUTE.sub(lambda m: _PLACEHOLDER.format(m.group(1)), rows)
    try:
        node = parse_sql(text, "row rule")
        allowlist.check(node, ROW_RULE)
    except ExpressionError as e:
        raise DefinitionError([Problem(p.message, hint=p.hint) for p in e.problems]) from None

    def fill(n: exp.Expression) -> exp.Expression:
        if isinstance(n, exp.In) and len(n.expressions) == 1 and _attribute(n.expressions[0]) in LIST_ATTRIBUTES:
            values = getattr(user, _attribute(n.expressions[0])) or ()
            if not values:  # an empty list matches nothing (NOT IN an empty list: everything)
                return exp.false() if not n.args.get("is_not") else exp.true()
            return exp.In(this=n.this, expressions=[exp.Literal.string(str(v)) for v in values])
        name = _attribute(n)
        if name is None:
            if isinstance(n, exp.Column) and n.name.startswith("__user_"):
                raise DefinitionError(Problem(f"'{n.name}' is not a dimension", hint="write {{ user.<name> }}"))
            return n
        if name in LIST_ATTRIBUTES:
            raise DefinitionError(Problem(f"user.{name} is a list: use it as IN ({{{{ user.{name} }}}})"))
        value = getattr(user, name, None)
        return exp.Null() if value is None else exp.Literal.string(str(value))

    return node.transform(fill)


def _attribute(n: exp.Expression) -> str | None:
    if isinstance(n, exp.Column) and not n.table and n.name.startswith("__user_") and n.name.endswith("__"):
        return n.name[len("__user_"):-2]
    return None


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
