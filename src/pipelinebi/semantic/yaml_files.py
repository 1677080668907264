"""A folder of YAML files read into validated pydantic models, every problem at file:line.

Models and metrics, scorecards and rollups are each a list of named items under one key
(``metrics:``, ``scorecards:``, ``rollups:``) in any number of files. Reading them is the same
loop every time: parse safely (:mod:`.yaml_source`), skip an empty file, require a mapping,
validate against the file's pydantic model, and keep going after a problem so that
``pipelinebi validate`` lists all of them at once. It lives here once.

>>> import tempfile
>>> from pipelinebi.semantic.definitions import METRIC_TYPES, SemanticFile
>>> root = Path(tempfile.mkdtemp()); (root / "metrics").mkdir()
>>> _ = (root / "metrics" / "won.yml").write_text(
...     "metrics:\\n  - name: won\\n    label: Won\\n    type: simple\\n    measure: won\\n    lable: x\\n")
>>> problems = []
>>> list(read_validated(yaml_files(root, "metrics"), root, SemanticFile, problems, shape="a mapping",
...                     items={"metrics": "metric"}, union_noun="metric type", union_tags=METRIC_TYPES))
[]
>>> [(p.line, p.obj, p.message, p.hint) for p in problems]
[(6, 'metric won', "unknown key 'lable'", "did you mean 'label'?")]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ..errors import DefinitionError, Problem
from .pydantic_errors import validation_problems
from .yaml_source import YamlDocument, load_yaml_file

FileModel = TypeVar("FileModel", bound=BaseModel)


def yaml_files(semantic_dir: Path, *folders: str, recursive: bool = False) -> list[Path]:
    """``*.yml`` then ``*.yaml`` of each folder under ``semantic_dir``, sorted; a missing folder is none."""
    files: list[Path] = []
    for name in folders:
        folder = Path(semantic_dir) / name
        if folder.is_dir():
            find = folder.rglob if recursive else folder.glob
            files += sorted(find("*.yml")) + sorted(find("*.yaml"))
    return files


def item_locator(doc: YamlDocument, items: dict[str, str]) -> Callable[[tuple[Any, ...]], tuple[str | None, tuple]]:
    """For a pydantic error path, the item it is in ("metric win_rate") and the path inside it.

    ``items`` maps a list key of the file to the noun of its items: ``{"rollups": "rollup"}``.
    """
    def locate(path: tuple[Any, ...]) -> tuple[str | None, tuple[Any, ...]]:
        if len(path) >= 2 and path[0] in items and isinstance(path[1], int):
            try:
                item = doc.data[path[0]][path[1]]
            except (KeyError, IndexError, TypeError):
                item = None
            name = item.get("name") if isinstance(item, dict) else None
            # A name that is not text (`name: [1, 2]`) is the error itself: number the item.
            shown = name if isinstance(name, str) and name else f"#{path[1] + 1}"
            return f"{items[path[0]]} {shown}", path[2:]
        return None, path
    return locate


def read_validated(paths: list[Path], semantic_dir: Path, file_model: type[FileModel], problems: list[Problem], *,
                   shape: str, items: dict[str, str], **problem_kw: Any) -> Iterator[tuple[YamlDocument, FileModel]]:
    """Each readable, valid file as ``(document, parsed model)``; every other file adds its
    problems to ``problems`` (``shape`` says what a file must be when it is not a mapping;
    ``problem_kw`` goes to :func:`.pydantic_errors.validation_problems`)."""
    for path in paths:
        try:
            doc = load_yaml_file(path, Path(semantic_dir))
        except DefinitionError as e:
            problems += e.problems
            continue
        if doc.data is None:
            continue
        if not isinstance(doc.data, dict):
            problems.append(doc.problem(shape))
            continue
        try:
            parsed = file_model.model_validate(doc.data)
        except ValidationError as e:
            problems += validation_problems(doc, e, file_model, locate=item_locator(doc, items), **problem_kw)
            continue
        yield doc, parsed
