"""Row rules: ``reps.team IN ({{ user.teams }})`` with the user's values as literals in the tree.

The rule text is parsed once with each ``{{ user.x }}`` standing in as a placeholder name,
checked against the filter allow-list, and then the placeholders are *replaced in the tree*
by literal nodes — a team called ``x') OR ('1'='1`` stays one string value.  A missing
attribute becomes NULL and an empty list matches nothing: a half-configured user sees no
rows, never all of them.

>>> from types import SimpleNamespace as User
>>> rule_condition("reps.team IN ({{ user.teams }})", User(teams=("EMEA", "O'Neil"))).sql()
"reps.team IN ('EMEA', 'O''Neil')"
>>> rule_condition("reps.rep_id = {{ user.rep_id }}", User(rep_id=None)).sql()
'reps.rep_id = NULL'
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from sqlglot import exp

from ..errors import DefinitionError, ExpressionError, Problem
from ..semantic import allowlist
from ..semantic.expressions import parse_sql

#: The user attributes a row rule may name as ``{{ user.<name> }}``; lists go inside ``IN (…)``.
SCALAR_ATTRIBUTES = ("email", "rep_id", "rep", "team", "region")
LIST_ATTRIBUTES = ("teams", "regions", "rep_ids")
ATTRIBUTE = re.compile(r"\{\{\s*user\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_PLACEHOLDER = "__user_{}__"
#: A row rule is a filter: the same allow-list, named as what it is in messages.
ROW_RULE = replace(allowlist.FILTER, where="a row rule")


def rule_condition(rows: str, user: Any, role: str = "") -> exp.Expression:
    """The row rule ``rows`` for ``user`` (anything with the attributes) as a checked condition tree."""
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
