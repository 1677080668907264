"""pydantic validation errors, explained for people and located in the YAML file.

pydantic reports ``('metrics', 3, 'ratio', 'numerator')`` and "Field required"; analysts
need ``semantic/metrics/x.yml:14: metric win_rate: numerator: required key 'numerator' is
missing``. Both YAML loaders (semantic files and dashboards) use this one translation.

>>> from pydantic import BaseModel, ConfigDict, ValidationError
>>> class Item(BaseModel):
...     model_config = ConfigDict(extra="forbid")
...     name: str
...     format: Literal["currency", "percent"] = "currency"
>>> class File(BaseModel):
...     model_config = ConfigDict(extra="forbid")
...     items: list[Item] = []
>>> from .yaml_source import load_yaml_text
>>> doc = load_yaml_text("items:\\n  - name: a\\n    fromat: percent\\n", "f.yml")
>>> try:
...     File.model_validate(doc.data)
... except ValidationError as e:
...     print(validation_problems(doc, e, File)[0])
f.yml:3: items[0].fromat: unknown key 'fromat' (did you mean 'format'?)
"""

from __future__ import annotations

import types
import typing
from typing import Any, Callable, Literal  # noqa: F401 (Literal: used by the doctest)

from pydantic import BaseModel, ValidationError

from ..errors import Problem, accepted, did_you_mean
from .yaml_source import Loc, YamlDocument


def _strip_optional(ann: Any) -> Any:
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(ann) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return ann


def _unwrap(ann: Any) -> Any:
    """list[X] → X, Optional[X] → X, Annotated[X, …] → X; a real union → its members."""
    while True:
        origin, args = typing.get_origin(ann), typing.get_args(ann)
        if origin is typing.Annotated:
            ann = args[0]
        elif origin in (list, tuple) and args:
            ann = args[0]
        elif origin in (typing.Union, types.UnionType):
            rest = [a for a in args if a is not type(None)]
            if len(rest) == 1:
                ann = rest[0]
            else:
                return rest
        else:
            return ann


def _tag_of(cls: Any) -> Any:
    field = getattr(cls, "model_fields", {}).get("type")
    args = typing.get_args(field.annotation) if field is not None else ()
    return args[0] if len(args) == 1 else None


def class_at(root: type[BaseModel], loc: Loc) -> tuple[type[BaseModel] | None, Loc]:
    """The model class that holds ``loc[-1]``, and ``loc`` as a path into the YAML data.

    Discriminated unions put the tag (e.g. 'ratio') into pydantic's loc; it is not a key of
    the YAML, so it is dropped from the path and used to pick the union member.
    """
    cls: Any = root
    path: list[Any] = []
    parts = list(loc)
    i = 0
    while i < len(parts):
        part, last = parts[i], i == len(parts) - 1
        if isinstance(part, int):
            path.append(part)
        elif isinstance(cls, list):  # a union: the tag picks the member
            member = next((c for c in cls if _tag_of(c) == part), None)
            if member is not None:
                cls = member
            else:
                path.append(part)
                cls = None
        elif isinstance(cls, type) and issubclass(cls, BaseModel) and part in cls.model_fields:
            path.append(part)
            if not last:
                ann = _strip_optional(cls.model_fields[part].annotation)
                if typing.get_origin(ann) is dict:
                    # dict[str, X]: the next part is a key of the YAML mapping
                    if i + 1 < len(parts):
                        path.append(parts[i + 1])
                        i += 1
                    cls = _unwrap(typing.get_args(ann)[1])
                else:
                    cls = _unwrap(ann)
        else:
            path.append(part)
            if not last:
                cls = None
        i += 1
    return (cls if isinstance(cls, type) else None), tuple(path)


def key_path(path: Loc) -> str | None:
    """``('tiles', 0, 'metrics')`` → ``'tiles[0].metrics'``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (("." if out else "") + str(part))
    return out or None


def validation_problems(doc: YamlDocument, error: ValidationError, root: type[BaseModel], *,
                        union_noun: str = "type", union_tags: tuple[str, ...] = (),
                        locate: Callable[[Loc], tuple[str | None, Loc]] | None = None) -> list[Problem]:
    """Every pydantic error of ``doc`` as a Problem with file, line, object, key and hint.

    ``locate(path) -> (object name, path within the object)`` names the object a path is
    in (e.g. "metric win_rate") so keys are shown relative to it.
    """
    problems = []
    for err in error.errors():
        loc = tuple(err["loc"])
        holder, path = class_at(root, loc)  # the class whose field loc[-1] is (or is not)
        message, hint, kind = err["msg"], None, err["type"]
        if kind == "extra_forbidden":
            name = str(path[-1])
            fields = list(holder.model_fields) if holder else []
            message = f"unknown key '{name}'"
            hint = did_you_mean(name, fields) or (accepted(fields) if fields else None)
        elif kind == "missing":
            message = f"required key '{path[-1]}' is missing"
            path = path[:-1]  # point at the object that lacks it
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            given = err["input"].get("type") if isinstance(err.get("input"), dict) else None
            # The tags accepted *here* (a row's tiles cannot be rows), as pydantic lists them.
            expected = str(err.get("ctx", {}).get("expected_tags", ""))
            tags = tuple(t.strip(" '") for t in expected.split(",") if t.strip(" '")) or union_tags
            if given is not None and str(given) in union_tags and str(given) not in tags:
                message = f"{union_noun} '{given}' is not allowed here"
                hint = accepted(tags)
            elif given is not None:
                message = f"unknown {union_noun} '{given}'"
                hint = did_you_mean(str(given), tags) or accepted(tags)
            else:
                message = f"'type' is missing (the {union_noun})"
                hint = accepted(tags)
            path = path + ("type",) if given is not None else path
        elif kind == "literal_error":
            expected = err.get("ctx", {}).get("expected", "")
            message = f"{err['input']!r} is not accepted"
            hint = f"accepted: {expected}"
            if isinstance(err["input"], str):
                options = [o.strip(" '") for o in expected.replace(" or ", ", ").split(",")]
                hint = did_you_mean(err["input"], options) or hint
        elif kind == "string_pattern_mismatch":
            message = f"{err['input']!r} is not a valid name"
            hint = "use snake_case: lower-case letters, digits and _ (e.g. win_rate)"
        elif message.startswith("Value error, "):
            message = message[len("Value error, "):]
        obj, rel = locate(path) if locate else (None, path)
        problems.append(Problem(message, file=doc.path, line=doc.line_of(path), obj=obj,
                                key=key_path(rel), hint=hint))
    return problems
