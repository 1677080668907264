"""``semantic/access.yml``: roles, row rules, users — strict models, errors with file:line.

.. code-block:: yaml

    roles:
      executive: {rows: all}
      manager:
        rows: "team IN ({{ user.teams }})"
      rep:
        rows: "rep_id = {{ user.rep_id }}"
        deny_dimensions: [account]
    benchmarks: [stage_conversion_resolved]   # company-wide numbers a scoped user may see
    users:
      - {email: ana@example.com, role: rep, rep_id: R0001}
      - {email: ben@example.com, role: manager, teams: [EMEA Mid-Market]}
    groups:                                    # an identity provider's group claim → role
      sales-leadership: executive

>>> p = Policy.model_validate({"roles": {"exec": {"rows": "all"}},
...                            "users": [{"email": "A@x.com", "role": "exec"}]})
>>> p.user("a@x.com").role
'exec'
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from ..errors import DefinitionError, Problem, did_you_mean, unknown_name_hint
from ..semantic.pydantic_errors import validation_problems
from ..semantic.yaml_source import YamlDocument, load_yaml_file
from .rules import ATTRIBUTE, LIST_ATTRIBUTES, SCALAR_ATTRIBUTES, rule_condition  # the same code builds scopes

POLICY_FILE = "access.yml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RoleDef(_Strict):
    """What a role sees: ``rows: all`` or a condition over dimensions with ``{{ user.x }}`` values."""

    rows: str = Field(min_length=1)
    deny_metrics: tuple[str, ...] = ()
    deny_dimensions: tuple[str, ...] = ()
    description: str | None = None

    @property
    def sees_everything(self) -> bool:
        return self.rows.strip().lower() == "all"


class UserDef(_Strict):
    """A person: their identity (e-mail, compared case-insensitively), role and attributes."""

    email: str = Field(min_length=3)
    role: str
    name: str | None = None
    rep_id: str | None = None
    rep: str | None = None
    team: str | None = None
    region: str | None = None
    teams: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    rep_ids: tuple[str, ...] = ()

    @field_validator("email")
    @classmethod
    def _lower(cls, v: str) -> str:
        return v.strip().lower()


class Policy(_Strict):
    """The whole access policy."""

    roles: dict[str, RoleDef]
    users: tuple[UserDef, ...] = ()
    groups: dict[str, str] = {}
    benchmarks: tuple[str, ...] = ()
    #: ``pipelinebi query --as USER`` lets an analyst check what a user sees; off refuses it.
    allow_cli_as: bool = True
    #: Role of a signed-in user the policy does not list (None: such a user sees nothing).
    default_role: str | None = None

    @model_validator(mode="after")
    def _references(self, info: ValidationInfo) -> "Policy":
        if info.context and info.context.get("located"):
            return self  # load_policy reports these itself, each at its own line (reference_problems)
        problems = self.reference_problems()
        if problems:
            raise ValueError(problems[0][1])
        return self

    def reference_problems(self) -> list[tuple[tuple, str]]:
        """Roles named by users, groups and ``default_role`` that do not exist, and users listed
        twice: ``(where in access.yml, message)`` each."""
        roles = set(self.roles)
        out: list[tuple[tuple, str]] = []
        for i, u in enumerate(self.users):
            if u.role not in roles:
                hint = did_you_mean(u.role, roles)
                out.append((("users", i, "role"), f"users[{i}] ({u.email}): unknown role '{u.role}'"
                            + (f" ({hint})" if hint else f" (roles: {', '.join(sorted(roles))})")))
        for group, role in self.groups.items():
            if role not in roles:
                hint = did_you_mean(role, roles)
                out.append((("groups", group), f"groups.{group}: unknown role '{role}'"
                            + (f" ({hint})" if hint else f" (roles: {', '.join(sorted(roles))})")))
        if self.default_role is not None and self.default_role not in roles:
            out.append((("default_role",), f"default_role: unknown role '{self.default_role}'"))
        seen: set[str] = set()
        for i, u in enumerate(self.users):
            if u.email in seen:
                out.append((("users", i, "email"), f"users[{i}]: {u.email} is listed twice (one entry per person)"))
            seen.add(u.email)
        return out

    def user(self, email: str) -> UserDef | None:
        email = (email or "").strip().lower()
        return next((u for u in self.users if u.email == email), None)


#: With no access.yml: one role that sees everything, for the embedded demo and single users.
OPEN_POLICY = Policy(roles={"everyone": RoleDef(rows="all", description="no access.yml: open access")},
                     default_role="everyone")


def load_policy(semantic_dir: Path | str, dimensions: dict[str, list[str]] | None = None,
                metrics: set[str] | None = None) -> tuple[Policy, bool]:
    """``(policy, from_file)``: ``semantic/access.yml`` checked, or :data:`OPEN_POLICY` without one.

    With ``dimensions`` (name → the models defining it) and ``metrics``, every row rule is
    parsed and allow-listed, and every name it uses is checked — with file, line and
    did-you-mean.  A rule may not name a dimension that several models define (``region`` is
    the rep's sales region and also a lead's own region): it must say which (``reps.region``),
    or a scope would mean different rows for different metrics.
    """
    path = Path(semantic_dir) / POLICY_FILE
    if not path.is_file():
        return OPEN_POLICY, False
    doc = load_yaml_file(path, Path(semantic_dir))
    if not isinstance(doc.data, dict):
        raise DefinitionError(doc.problem("access.yml is a mapping with 'roles:' (and 'users:', 'groups:')"))
    try:
        policy = Policy.model_validate(doc.data, context={"located": True})
    except ValidationError as e:
        raise DefinitionError(validation_problems(doc, e, Policy)) from None
    located = [doc.problem(message, where) for where, message in policy.reference_problems()]
    if located:
        raise DefinitionError(located)
    _check_rules(policy, doc, dimensions, metrics)
    return policy, True


def _check_rules(policy: Policy, doc: YamlDocument, dimensions: dict[str, list[str]] | None,
                 metrics: set[str] | None) -> None:
    problems: list[Problem] = []
    for name, role in policy.roles.items():
        where = ("roles", name)
        if not role.sees_everything:
            for attr in ATTRIBUTE.findall(role.rows):
                if attr not in SCALAR_ATTRIBUTES + LIST_ATTRIBUTES:
                    problems.append(doc.problem(f"unknown user attribute 'user.{attr}'", where + ("rows",),
                                                obj=f"role {name}", key="rows",
                                                hint=unknown_name_hint(f"user.{attr}", [f"user.{a}" for a in
                                                                                        SCALAR_ATTRIBUTES + LIST_ATTRIBUTES])))
            try:
                condition = rule_condition(role.rows, _sample_user(), name)
            except DefinitionError as e:
                problems += [doc.problem(p.message, where + ("rows",), obj=f"role {name}", key="rows", hint=p.hint)
                             for p in e.problems]
                continue
            if dimensions is not None:
                from ..compiler.filters import dimension_names

                for dim in dimension_names(condition):
                    if dim not in dimensions:
                        problems.append(doc.problem(f"unknown dimension '{dim}'", where + ("rows",), obj=f"role {name}",
                                                    key="rows", hint=unknown_name_hint(dim, dimensions)))
                    elif len(dimensions[dim]) > 1:
                        models = dimensions[dim]
                        problems.append(doc.problem(
                            f"dimension '{dim}' is defined on several models ({', '.join(models)})", where + ("rows",),
                            obj=f"role {name}", key="rows",
                            hint=f"say which one, e.g. {models[0]}.{dim}, so the scope means the same rows for every metric"))
        for key, known in (("deny_dimensions", dimensions), ("deny_metrics", metrics)):
            for value in getattr(role, key):
                if known is not None and value not in known:
                    problems.append(doc.problem(f"unknown {key.split('_')[1][:-1]} '{value}'", where + (key,),
                                                obj=f"role {name}", key=key, hint=unknown_name_hint(value, known)))
    for value in policy.benchmarks:
        if metrics is not None and value not in metrics:
            problems.append(doc.problem(f"unknown metric '{value}'", ("benchmarks",), key="benchmarks",
                                        hint=unknown_name_hint(value, metrics)))
    if problems:
        raise DefinitionError(problems)


def _sample_user() -> UserDef:
    """A user with every attribute set, to check that a rule compiles for anyone."""
    return UserDef(email="check@example.com", role="-", rep_id="R", rep="R", team="T", region="G",
                   teams=("T",), regions=("G",), rep_ids=("R",))
