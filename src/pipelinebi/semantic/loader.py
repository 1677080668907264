"""Read ``semantic/models/*.yml`` and ``semantic/metrics/*.yml`` into checked definitions.

Shape errors come from pydantic and are mapped back to file:line with the object
("model deals", "metric win_rate"), the key, what is accepted and a did-you-mean.
All files are read and every problem is reported together.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DefinitionError, Problem
from .definitions import METRIC_TYPES, ModelDef, SemanticFile
from .yaml_files import read_validated, yaml_files
from .yaml_source import YamlDocument


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
    return yaml_files(semantic_dir, "models", "metrics", recursive=True)


ITEMS = {"models": "model", "metrics": "metric"}


def load_definitions(semantic_dir: Path) -> tuple[list[Located], list[Located]]:
    """All models and metrics, located; raises DefinitionError with every shape problem."""
    if not semantic_dir.is_dir():
        raise DefinitionError(Problem(f"semantic folder not found: {semantic_dir}",
                                      hint="set PIPELINEBI_SEMANTIC_DIR or pass --semantic"))
    problems: list[Problem] = []
    models: list[Located] = []
    metrics: list[Located] = []
    for doc, parsed in read_validated(semantic_files(semantic_dir), semantic_dir, SemanticFile, problems,
                                      shape="a semantic file is a mapping with 'models:' and/or 'metrics:'",
                                      items=ITEMS, union_noun="metric type", union_tags=METRIC_TYPES):
        models += [Located(m, doc, ("models", i)) for i, m in enumerate(parsed.models)]
        metrics += [Located(m, doc, ("metrics", i)) for i, m in enumerate(parsed.metrics)]
    if problems:
        raise DefinitionError(problems)
    return models, metrics
