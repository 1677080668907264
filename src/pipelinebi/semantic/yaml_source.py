"""YAML loading that remembers where every value came from, and refuses hostile input.

pydantic reports errors as a location tuple (``("metrics", 3, "numerator")``); a
:class:`YamlDocument` turns that tuple back into a line of the file, so an analyst reads
``semantic/metrics/win.yml:14`` instead of a Python path.

>>> doc = load_yaml_text("metrics:\\n  - name: a\\n    type: simple\\n", "m.yml")
>>> doc.data["metrics"][0]["type"]
'simple'
>>> doc.line_of(("metrics", 0, "type"))
3
>>> doc.line_of(("metrics", 0, "nonexistent"))  # falls back to the closest parent
2

Semantic YAML is written by people and read by the app at start-up, so any file —
however broken or malicious — gives a :class:`~pipelinebi.errors.DefinitionError`
naming the file and line, never a traceback or a hang.  The rules:

* **size**: at most :data:`MAX_FILE_BYTES` (1 MiB) per file; a real semantic file is
  a few kB.  ``load_yaml_text`` applies the same number to characters.
* **nesting**: at most :data:`MAX_DEPTH` (50) levels, counting the value itself (the
  shipped files reach 8); deeper input would exhaust Python's recursion limit.
* **aliases** (``&name`` … ``*name``) are allowed, but the document may hold at most
  :data:`MAX_NODES` (100,000) keys, values and items *counting every alias as the copy
  it expands to* (the largest shipped file has under 1,000).  Sizes are counted without expanding, so a "billion laughs" bomb
  is refused after reading a few lines.  An alias inside its own anchor (a recursive
  structure) and merge keys (``<<:``) are refused.
* **keys** are plain text: ``? [a, b]: 1`` or ``{[1]: x}`` is refused; ``1:`` or ``on:``
  stay the text ``'1'`` / ``'on'`` (YAML 1.1 would read ``on`` as True).
* **tags**: only the standard scalar tags ``!!str !!int !!float !!bool !!null
  !!timestamp`` (and ``!!map`` / ``!!seq`` on collections).  Anything else —
  ``!!python/object``, ``!!binary``, ``!!set``, ``!custom`` — is refused before any
  value is built; values are built by PyYAML's ``SafeConstructor`` only, which never
  creates arbitrary Python objects.
* **encoding**: files are UTF-8 (a byte-order mark is fine).

>>> load_yaml_text("a: &x [1, 2]\\nb: *x\\n", "m.yml").data
{'a': [1, 2], 'b': [1, 2]}
>>> load_yaml_text("a: !!python/object:os.system ls\\n", "m.yml")
Traceback (most recent call last):
...
pipelinebi.errors.DefinitionError: m.yml:1: YAML tag '!!python/object:os.system' is not accepted (accepted: !!bool, !!float, !!int, !!null, !!str, !!timestamp; or remove the tag)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import DefinitionError, Problem

Loc = tuple[Any, ...]

#: Largest semantic YAML file read, in bytes (1 MiB).
MAX_FILE_BYTES = 1024 * 1024
#: Deepest nesting of lists and mappings.
MAX_DEPTH = 50
#: Most keys + values + list items in one document, aliases counted as what they expand to.
MAX_NODES = 100_000

_STD = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_STD + t for t in ("str", "int", "float", "bool", "null", "timestamp")}
_COLLECTION_TAGS = {_STD + "map", _STD + "seq"}
_NON_SPECIFIC = (None, "!")  # no tag, or a bare "!": the resolver decides (plain text here)


def _shown_tag(tag: str) -> str:
    return "!!" + tag[len(_STD):] if tag.startswith(_STD) else tag


def _line(node_or_event: Any) -> int:
    return node_or_event.start_mark.line + 1


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


class _GuardedComposer(yaml.SafeLoader):
    """PyYAML's safe composer, checking tags, depth and alias sizes node by node.

    Only ``compose`` is used (no construction here).  The checks run *before* a node is
    composed, so neither deep nesting nor an alias bomb is ever built: an anchor's size
    (nodes, depth) is measured once, and an alias adds that size to the running count.
    """

    def __init__(self, text: str, path: str):
        super().__init__(text)
        self.path = path
        self.depth = 0          # nesting of the node being composed
        self.deepest = 0        # deepest level reached so far (aliases included)
        self.nodes = 0          # nodes so far, aliases counted as their expansion
        self.used_alias = False
        self.sizes: dict[str, tuple[int, int]] = {}  # finished anchor -> (nodes, depth)
        self.open: set[str] = set()                  # anchors being composed

    def refuse(self, message: str, line: int, hint: str | None = None) -> DefinitionError:
        return DefinitionError(Problem(message, file=self.path, line=line, hint=hint))

    def compose_node(self, parent: Any, index: Any) -> yaml.Node:
        event = self.peek_event()
        line = _line(event)
        if isinstance(event, yaml.AliasEvent):
            self._count_alias(event.anchor, line)
            node = super().compose_node(parent, index)  # PyYAML reports undefined aliases
            self._check_key(node, parent, index, line)
            return node
        self._check_tag(event, line)
        anchor = event.anchor
        if anchor is not None and anchor in self.anchors:
            raise self.refuse(f"anchor '&{anchor}' is defined twice (first on line "
                              f"{_line(self.anchors[anchor])})", line, "give each anchor its own name")
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.refuse(f"nesting deeper than {MAX_DEPTH} levels", line,
                              "semantic YAML needs a few levels; look for unclosed brackets")
        self._add_nodes(1, line)
        nodes_before, deepest_before = self.nodes, self.deepest
        self.deepest = self.depth  # measure this node's own subtree
        if anchor is not None:
            self.open.add(anchor)
        node = super().compose_node(parent, index)
        if anchor is not None:
            self.open.discard(anchor)
            self.sizes[anchor] = (self.nodes - nodes_before + 1, self.deepest - self.depth + 1)
        self.deepest = max(self.deepest, deepest_before)
        self.depth -= 1
        self._check_key(node, parent, index, line)
        return node

    def _check_key(self, node: yaml.Node, parent: Any, index: Any, line: int) -> None:
        # PyYAML composes a mapping's key with index None, its value with the key as index.
        if isinstance(parent, yaml.MappingNode) and index is None and not isinstance(node, yaml.ScalarNode):
            kind = "a list" if isinstance(node, yaml.SequenceNode) else "a mapping"
            raise self.refuse(f"keys must be plain text, not {kind}", line,
                              "write the key as a word (e.g. `name:`); `? [a, b]` or `{[1]: x}` is not accepted")

    def _check_tag(self, event: yaml.Event, line: int) -> None:
        tag = getattr(event, "tag", None)
        if tag in _NON_SPECIFIC:
            return
        scalar = isinstance(event, yaml.ScalarEvent)
        if tag in (_SCALAR_TAGS if scalar else _COLLECTION_TAGS):
            return
        accepted = sorted(_shown_tag(t) for t in (_SCALAR_TAGS if scalar else _COLLECTION_TAGS))
        raise self.refuse(f"YAML tag '{_shown_tag(tag)}' is not accepted", line,
                          "accepted: " + ", ".join(accepted) + "; or remove the tag")

    def _count_alias(self, anchor: str, line: int) -> None:
        self.used_alias = True
        if anchor in self.open:
            raise self.refuse(f"alias '*{anchor}' is inside its own anchor '&{anchor}' (a recursive structure)",
                              line, "an alias may only repeat a value that is already complete")
        if anchor not in self.sizes:
            return
        nodes, depth = self.sizes[anchor]
        if self.depth + depth > MAX_DEPTH:
            raise self.refuse(f"alias '*{anchor}' nests values deeper than {MAX_DEPTH} levels", line)
        self.deepest = max(self.deepest, self.depth + depth)
        self._add_nodes(nodes, line)

    def _add_nodes(self, n: int, line: int) -> None:
        self.nodes += n
        if self.nodes > MAX_NODES:
            hint = ("each alias (*name) counts as a full copy of its anchor; write the values out"
                    if self.used_alias else "split the file into several files")
            raise self.refuse(f"more than {MAX_NODES:,} keys and values"
                              + (" once aliases are expanded" if self.used_alias else ""), line, hint)


def _syntax_error(e: yaml.YAMLError, text: str, path: str) -> DefinitionError:
    """PyYAML's error as a located Problem (its own text names '<unicode string>')."""
    if isinstance(e, yaml.reader.ReaderError):  # a character YAML does not allow
        line = text.count("\n", 0, e.position) + 1
        what = f"U+{e.character:04X}" if isinstance(e.character, int) else repr(e.character)
        return DefinitionError(Problem(f"YAML syntax error: character {what} is not allowed", file=path, line=line,
                                       hint="remove control characters from the file"))
    mark = getattr(e, "problem_mark", None)
    reason = getattr(e, "problem", None) or str(e)
    context = getattr(e, "context", None)
    return DefinitionError(Problem(f"YAML syntax error: {reason}", file=path,
                                   line=mark.line + 1 if mark else None, hint=context))


class _Builder:
    """Composed nodes → plain data, recording the line of every location."""

    def __init__(self, path: str):
        self.path = path
        self.lines: dict[Loc, int] = {}
        # A fresh constructor per document: it caches every node it built.
        self.scalars = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        self.lines.setdefault(loc, _line(node))
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = self._key(key_node)
                if key in out:
                    raise self._refuse(f"duplicate key '{key}'", key_node, "each key may appear once in a mapping")
                # The key's own line is the most useful place to point at.
                self.lines[loc + (key,)] = _line(key_node)
                out[key] = self.build(value_node, loc + (key,))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, loc + (i,)) for i, item in enumerate(node.value)]
        return self._scalar(node)

    def _key(self, node: yaml.ScalarNode) -> str:  # the composer let only text keys through
        if node.tag == _STD + "merge":
            raise self._refuse("merge keys ('<<:') are not supported", node,
                               "write the keys out; an alias (*name) may repeat a whole value")
        # Keys are always text: YAML 1.1 would read `on:` (a join key) as True.
        return node.value

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        if node.tag == _STD + "value":  # a lone '=' (YAML 1.1 "value" key): plain text
            return node.value
        try:
            return self.scalars.construct_object(node, deep=True)
        except Exception:  # noqa: BLE001 — only a safe-tagged scalar is built here
            # An out-of-range date (2024-02-30), a 5000-digit number, `!!int abc`, an empty
            # `!!int` (IndexError): PyYAML's scalar builders fail with whatever is at hand.
            kind = {"timestamp": "date"}.get(node.tag[len(_STD):], node.tag[len(_STD):])
            shown = node.value if len(node.value) <= 40 else node.value[:40] + "…"
            raise self._refuse(f"'{shown}' is not a valid {kind}", node,
                               f"write a valid {kind}, or quote it (without a tag) to keep it as text") from None

    def _refuse(self, message: str, node: yaml.Node, hint: str | None = None) -> DefinitionError:
        return DefinitionError(Problem(message, file=self.path, line=_line(node), hint=hint))


def load_yaml_text(text: str, path: str) -> YamlDocument:
    """Parse one YAML document; any problem is a DefinitionError naming ``path`` and the line."""
    if len(text) > MAX_FILE_BYTES:
        raise DefinitionError(Problem(f"the file is larger than {MAX_FILE_BYTES // 1024 // 1024} MiB", file=path,
                                      hint="semantic YAML files are a few kB; split it into several files"))
    composer = None
    try:
        composer = _GuardedComposer(text, path)  # checks characters already
        node = composer.get_single_node()
    except yaml.YAMLError as e:
        raise _syntax_error(e, text, path) from None
    finally:
        if composer is not None:
            composer.dispose()
    if node is None:
        return YamlDocument(path, None, {(): 1})
    builder = _Builder(path)
    data = builder.build(node, ())
    return YamlDocument(path, data, builder.lines)


def read_yaml_text(path: Path, shown: str) -> str:
    """The text of a YAML file: a regular file, at most 1 MiB, UTF-8 — else DefinitionError."""
    try:
        if not path.is_file():  # a folder, pipe or device named *.yml: reading it could block
            raise DefinitionError(Problem("not a regular file", file=shown,
                                          hint="only YAML files belong here; rename or move it"))
        with path.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)  # never more, whatever the file claims
    except OSError as e:
        raise DefinitionError(Problem(f"cannot read the file: {e.strerror or e}", file=shown)) from None
    if len(raw) > MAX_FILE_BYTES:
        raise DefinitionError(Problem(f"the file is larger than {MAX_FILE_BYTES // 1024 // 1024} MiB", file=shown,
                                      hint="semantic YAML files are a few kB; split it into several files"))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise DefinitionError(Problem(f"the file is not UTF-8 text (byte 0x{raw[e.start]:02x})", file=shown, line=line,
                                      hint="save it as UTF-8 (in most editors: Save with Encoding → UTF-8)")) from None


def load_yaml_file(path: Path, display_root: Path | None = None) -> YamlDocument:
    """Read and parse one YAML file; the path shown in errors is relative to ``display_root``."""
    shown = str(path)
    if display_root is not None:
        try:
            shown = str(path.resolve().relative_to(display_root.resolve().parent))
        except (ValueError, OSError, RuntimeError):  # elsewhere, or a symlink loop
            pass
    return load_yaml_text(read_yaml_text(path, shown), shown)
