"""YAML loading that remembers where every value came from.

pydantic reports errors as a location tuple (``("metrics", 3, "numerator")``); a
:class:`SourceMap` turns that tuple back into a line of the file, so an analyst reads
``semantic/metrics/win.yml:14`` instead of a Python path.

>>> doc = load_yaml_text("metrics:\\n  - name: a\\n    type: simple\\n", "m.yml")
>>> doc.data["metrics"][0]["type"]
'simple'
>>> doc.line_of(("metrics", 0, "type"))
3
>>> doc.line_of(("metrics", 0, "nonexistent"))  # falls back to the closest parent
2
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import DefinitionError, Problem

Loc = tuple[Any, ...]
_SCALARS = yaml.constructor.SafeConstructor()


@dataclass
class YamlDocument:
    """Plain data (dicts/lists/scalars) plus the line of each location."""

    path: str
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Loc) -> int | None:
        """Line of the deepest known prefix of ``loc`` (1-based)."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get((), None)

    def problem(self, message: str, loc: Loc = (), **kw: Any) -> Problem:
        return Problem(message, file=self.path, line=self.line_of(loc), **kw)


def _walk(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> Any:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            # Keys are always text: YAML 1.1 would read `on:` (a join key) as True.
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else _walk(key_node, loc + ("<key>",), {})
            if key in out:
                raise DefinitionError(
                    Problem(f"duplicate key '{key}'", line=key_node.start_mark.line + 1,
                            hint="each key may appear once in a mapping")
                )
            # The key's own line is the most useful place to point at.
            lines[loc + (key,)] = key_node.start_mark.line + 1
            out[key] = _walk(value_node, loc + (key,), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_walk(item, loc + (i,), lines) for i, item in enumerate(node.value)]
    return _SCALARS.construct_object(node, deep=True)


def load_yaml_text(text: str, path: str) -> YamlDocument:
    """Parse YAML text; syntax errors become a DefinitionError with the line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark else None
        reason = getattr(e, "problem", None) or str(e)
        raise DefinitionError(Problem(f"YAML syntax error: {reason}", file=path, line=line)) from None
    lines: dict[Loc, int] = {}
    if node is None:
        return YamlDocument(path, None, {(): 1})
    try:
        data = _walk(node, (), lines)
    except DefinitionError as e:
        raise DefinitionError([Problem(p.message, file=path, line=p.line, hint=p.hint) for p in e.problems]) from None
    return YamlDocument(path, data, lines)


def load_yaml_file(path: Path, display_root: Path | None = None) -> YamlDocument:
    """Read and parse one YAML file; the path shown in errors is relative to ``display_root``."""
    shown = str(path)
    if display_root is not None:
        try:
            shown = str(path.resolve().relative_to(display_root.resolve().parent))
        except ValueError:
            pass
    return load_yaml_text(path.read_text(encoding="utf-8"), shown)
