"""Settings of the derived tables (``semantic/derived/parameters.yml``), put into their SQL as literals.

A derived SQL file names a setting as a placeholder, ``$attribution_window_days`` (DuckDB's
named-parameter syntax; ``:name`` is not accepted first in a SELECT list there); the YAML file
declares it with its value and the range it may take.  :func:`bind` replaces each placeholder
in the *parsed* tree by a number literal (``exp.Literal``) before the allow-list check, so a
value never reaches the SQL as text: what runs is the tree sqlglot prints.  A file naming an
undeclared setting, or a value out of its range, is an error at its file and line.

>>> import sqlglot
>>> params = {"window": Parameter(value=180, min=1, max=3650, description="days")}
>>> tree = sqlglot.parse_one("SELECT * FROM t WHERE d <= $window + 1", read="duckdb")
>>> bind(tree, params, "t.sql").sql("duckdb")
'SELECT * FROM t WHERE d <= 180 + 1'
>>> bind(tree, params | {}, "t.sql") is not tree  # the parsed tree is left as it was
True
>>> load_parameters_text("parameters:\\n  window: {value: 0, min: 1, max: 9, description: d}\\n", "p.yml")
Traceback (most recent call last):
...
pipelinebi.errors.DefinitionError: p.yml:2: parameter window: value 0 is outside 1 … 9 (set a value between 1 and 9)
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlglot import exp

from ..errors import DefinitionError, Problem, unknown_name_hint
from .definitions import Name
from .pydantic_errors import validation_problems
from .yaml_source import YamlDocument, load_yaml_file, load_yaml_text

#: the file, in the derived folder, that declares the settings
PARAMETERS_FILE = "parameters.yml"


class Parameter(BaseModel):
    """One setting: its value, the range it may take, and what it means."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float = Field(description="the value the SQL uses")
    type: Literal["integer", "number"] = Field("integer", description="integer: a whole number")
    min: float = Field(description="smallest accepted value")
    max: float = Field(description="largest accepted value")
    description: str = Field(min_length=1, description="what the setting means, for people")

    def literal(self) -> exp.Literal:
        """The value as a number literal (an integer prints without a decimal point)."""
        v = int(self.value) if self.type == "integer" else self.value
        return exp.Literal.number(v)


class ParametersFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    parameters: dict[Name, Parameter] = {}


def _range_problems(doc: YamlDocument, params: dict[str, Parameter]) -> list[Problem]:
    problems = []
    for name, p in params.items():
        line = doc.line_of(("parameters", name, "value"))
        where = dict(file=doc.path, line=line, obj=f"parameter {name}")
        if p.min > p.max:
            problems.append(Problem(f"min {p.min:g} is above max {p.max:g}", **where, hint="swap them"))
        elif not math.isfinite(p.value) or not p.min <= p.value <= p.max:
            problems.append(Problem(f"value {p.value:g} is outside {p.min:g} … {p.max:g}", **where,
                                    hint=f"set a value between {p.min:g} and {p.max:g}"))
        elif p.type == "integer" and p.value != int(p.value):
            problems.append(Problem(f"value {p.value:g} is not a whole number", **where,
                                    hint=f"use {round(p.value)}, or type: number"))
    return problems


def parameters_from(doc: YamlDocument) -> dict[str, Parameter]:
    """Validate a parsed parameters file; DefinitionError with every problem, located."""
    try:
        parsed = ParametersFile.model_validate(doc.data if doc.data is not None else {})
    except ValidationError as e:
        raise DefinitionError(validation_problems(doc, e, ParametersFile)) from None
    problems = _range_problems(doc, parsed.parameters)
    if problems:
        raise DefinitionError(problems)
    return dict(parsed.parameters)


def load_parameters_text(text: str, path: str) -> dict[str, Parameter]:
    return parameters_from(load_yaml_text(text, path))


def load_parameters(folder: Path | None) -> dict[str, Parameter]:
    """The settings declared in ``folder/parameters.yml`` (none when the file is absent)."""
    path = Path(folder) / PARAMETERS_FILE if folder is not None else None
    if path is None or not path.is_file():
        return {}
    return parameters_from(load_yaml_file(path, Path(folder).parent))


def placeholders(tree: exp.Expression) -> list[str]:
    """The settings a parsed file names (``$name``), in order of appearance."""
    return [p.name for p in tree.find_all(exp.Placeholder)]


def bind(tree: exp.Expression, params: dict[str, Parameter], file: str) -> exp.Expression:
    """A copy of ``tree`` with every ``$name`` replaced by its value as a literal; an unknown or
    unnamed placeholder is a DefinitionError naming the declared settings."""
    problems = []
    for name in dict.fromkeys(placeholders(tree)):
        if name not in params:
            problems.append(Problem(f"unknown setting '${name}'" if name else "a placeholder without a name",
                                    file=file, hint=(unknown_name_hint(name, params) if params else
                                                     f"declare it in {PARAMETERS_FILE} beside the SQL files")))
    if problems:
        raise DefinitionError(problems)

    def put(node: exp.Expression) -> exp.Expression:
        if not isinstance(node, exp.Placeholder):
            return node
        lit = params[node.name].literal()
        # a negative value in parentheses, so `x - $w` keeps its meaning
        return exp.paren(lit) if params[node.name].value < 0 else lit

    # transform copies the tree: the parsed file stays as written
    return tree.transform(put)
