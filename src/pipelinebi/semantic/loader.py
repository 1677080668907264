"""Read ``semantic/models/*.yml`` and ``semantic/metrics/*.yml`` into checked definitions.

Shape errors come from pydantic and are mapped back to file:line with the object
("model deals", "metric win_rate"), the key, what is accepted and a did-you-mean.
All files are read and every problem is reported together.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import DefinitionError, Problem, did_you_mean, accepted
from .definitions import METRIC_TYPES, MetricBase, ModelDef, SemanticFile
from .yaml_source import YamlDocument, load_yaml_file


@dataclass(frozen=True)
class Located:
    """A definition and where it was written."""

    definition: Any
    doc: YamlDocument
    loc: tuple[Any, ...]

    @property
    def line(self) -> int | None:
        return self.doc.line_of(self.loc)

    def problem(self, message: str, key: str | None = None, hint: str | None = None, subloc: tuple = ()) -> Problem:
        kind = "model" if isinstance(self.definition, ModelDef) else "metric"
        return Problem(message, file=self.doc.path, line=self.doc.line_of(self.loc + subloc),
                       obj=f"{kind} {self.definition.name}", key=key, hint=hint)


def semantic_files(semantic_dir: Path) -> list[Path]:
    files: list[Path] = []
    for sub in ("models", "metrics"):
        folder = semantic_dir / sub
        files += sorted(folder.rglob("*.yml")) + sorted(folder.rglob("*.yaml"))
    return files


def _unwrap(annotation: Any) -> Any:
    """list[X] -> X, Optional[X] -> X, Annotated[X, ...] -> X."""
    while True:
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if origin is typing.Annotated:
            annotation = args[0]
        elif origin in (list, tuple) and args:
            annotation = args[0]
        elif origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
            non_none = [a for a in args if a is not type(None)]
            if len(non_none) == 1:
                annotation = non_none[0]
            else:
                return non_none
        else:
            return annotation


def _class_at(loc: tuple[Any, ...], data: Any) -> tuple[type[BaseModel] | None, tuple[Any, ...]]:
    """The pydantic class holding ``loc`` and the loc as a path into the YAML data.

    Discriminated unions add the tag (e.g. 'ratio') to pydantic's loc; it is not a
    key of the YAML, so it is dropped from the data path.
    """
    cls: Any = SemanticFile
    path: list[Any] = []
    node = data
    for part in loc[:-1] if loc else ():
        if isinstance(part, int):
            path.append(part)
            node = node[part] if isinstance(node, list) and part < len(node) else None
            continue
        if isinstance(cls, list):  # a union: pick the member by its tag
            cls = next((c for c in cls if part == typing.get_args(c.model_fields["type"].annotation)[0]), None)
            continue
        if cls is None or not isinstance(cls, type) or part not in getattr(cls, "model_fields", {}):
            path.append(part)
            node = node.get(part) if isinstance(node, dict) else None
            cls = None
            continue
        cls = _unwrap(cls.model_fields[part].annotation)
        path.append(part)
        node = node.get(part) if isinstance(node, dict) else None
    if loc:
        last = loc[-1]
        if isinstance(cls, list) and isinstance(last, str) and last in METRIC_TYPES:
            return None, tuple(path)
        path.append(last)
    return (cls if isinstance(cls, type) else None), tuple(path)


def _object_name(doc: YamlDocument, path: tuple[Any, ...]) -> str | None:
    if len(path) >= 2 and path[0] in ("models", "metrics") and isinstance(path[1], int):
        try:
            item = doc.data[path[0]][path[1]]
        except (KeyError, IndexError, TypeError):
            return None
        name = item.get("name") if isinstance(item, dict) else None
        return f"{path[0][:-1]} {name or '#' + str(path[1] + 1)}"
    return None


def _key_path(path: tuple[Any, ...]) -> str | None:
    rest = path[2:] if len(path) >= 2 and path[0] in ("models", "metrics") else path
    out = ""
    for part in rest:
        out += f"[{part}]" if isinstance(part, int) else (("." if out else "") + str(part))
    return out or None


def validation_problems(doc: YamlDocument, error: ValidationError) -> list[Problem]:
    problems = []
    for err in error.errors():
        cls, path = _class_at(tuple(err["loc"]), doc.data)
        key = _key_path(path)
        hint = None
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            name = str(path[-1])
            fields = list(cls.model_fields) if cls else []
            message = f"unknown key '{name}'"
            hint = did_you_mean(name, fields) or (accepted(fields) if fields else None)
        elif err["type"] == "missing":
            message = f"required key '{path[-1]}' is missing"
            key = _key_path(path[:-1])
        elif err["type"] == "union_tag_invalid" or err["type"] == "union_tag_not_found":
            given = (err.get("input") or {}).get("type") if isinstance(err.get("input"), dict) else None
            message = f"unknown metric type '{given}'" if given else "metric needs 'type'"
            hint = (did_you_mean(str(given), METRIC_TYPES) if given else None) or accepted(METRIC_TYPES)
            path = path + ("type",)
            key = "type"
        elif err["type"] == "literal_error":
            expected = err.get("ctx", {}).get("expected", "")
            message = f"{err['input']!r} is not accepted"
            hint = f"accepted: {expected}"
            if isinstance(err["input"], str):
                options = [o.strip(" '") for o in expected.replace(" or ", ", ").split(",")]
                hint = did_you_mean(err["input"], options) or hint
        elif err["type"] == "string_pattern_mismatch":
            message = f"{err['input']!r} is not a valid name"
            hint = "use snake_case: lower-case letters, digits and _ (e.g. win_rate)"
        elif message.startswith("Value error, "):
            message = message[len("Value error, "):]
        problems.append(Problem(message, file=doc.path, line=doc.line_of(path),
                                obj=_object_name(doc, path), key=key, hint=hint))
    return problems


def load_definitions(semantic_dir: Path) -> tuple[list[Located], list[Located]]:
    """All models and metrics, located; raises DefinitionError with every shape problem."""
    if not semantic_dir.is_dir():
        raise DefinitionError(Problem(f"semantic folder not found: {semantic_dir}",
                                      hint="set PIPELINEBI_SEMANTIC_DIR or pass --semantic"))
    problems: list[Problem] = []
    models: list[Located] = []
    metrics: list[Located] = []
    for path in semantic_files(semantic_dir):
        try:
            doc = load_yaml_file(path, semantic_dir)
        except DefinitionError as e:
            problems += e.problems
            continue
        if doc.data is None:
            continue
        if not isinstance(doc.data, dict):
            problems.append(doc.problem("a semantic file is a mapping with 'models:' and/or 'metrics:'"))
            continue
        try:
            parsed = SemanticFile.model_validate(doc.data)
        except ValidationError as e:
            problems += validation_problems(doc, e)
            continue
        models += [Located(m, doc, ("models", i)) for i, m in enumerate(parsed.models)]
        metrics += [Located(m, doc, ("metrics", i)) for i, m in enumerate(parsed.metrics)]
    if problems:
        raise DefinitionError(problems)
    return models, metrics
