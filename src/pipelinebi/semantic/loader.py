"""Read ``semantic/models/*.yml`` and ``semantic/metrics/*.yml`` into checked definitions.

Shape errors come from pydantic and are mapped back to file:line with the object
("model deals", "metric win_rate"), the key, what is accepted and a did-you-mean.
All files are read and every problem is reported together.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import DefinitionError, Problem
from .definitions import METRIC_TYPES, ModelDef, SemanticFile
from .pydantic_errors import validation_problems as pydantic_problems
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


def _locate(doc: YamlDocument):
    """'metric win_rate' and the key path inside it, for a path into a semantic file."""
    def locate(path: tuple[Any, ...]) -> tuple[str | None, tuple[Any, ...]]:
        if len(path) >= 2 and path[0] in ("models", "metrics") and isinstance(path[1], int):
            try:
                item = doc.data[path[0]][path[1]]
            except (KeyError, IndexError, TypeError):
                item = None
            name = item.get("name") if isinstance(item, dict) else None
            # A name that is not text (`name: [1, 2]`) is the error itself: number the item.
            shown = name if isinstance(name, str) and name else f"#{path[1] + 1}"
            return f"{path[0][:-1]} {shown}", path[2:]
        return None, path
    return locate


def validation_problems(doc: YamlDocument, error: ValidationError) -> list[Problem]:
    return pydantic_problems(doc, error, SemanticFile, union_noun="metric type", union_tags=METRIC_TYPES,
                             locate=_locate(doc))


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
