"""Read ``semantic/dashboards/*.yml`` into checked :class:`DashboardDef` pages.

Two kinds of problems, both located as ``file:line``:

* **shape** problems (pydantic: an unknown key, a wrong chart kind, a missing title) make a
  file unusable: the app shows the error instead of the page;
* **reference** problems (a metric or dimension the semantic layer does not define, with a
  did-you-mean) belong to one tile: the app draws the rest of the page and explains the tile
  in its place, so a page keeps working while a metric it wants is still being written.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp()); (d / "dashboards").mkdir()
>>> _ = (d / "dashboards" / "x.yml").write_text(
...     "title: X\\naudience: reps\\ntiles:\\n  - type: chart\\n    kind: pie\\n    metrics: [forecast]\\n    dimension: team\\n")
>>> try:
...     load_dashboards(d)
... except Exception as e:
...     print(str(e).split("/", 1)[1])
dashboards/x.yml:5: dashboard: tiles[0].kind: 'pie' is not accepted (accepted: 'bar', 'line', 'funnel', 'heatmap', 'box', 'waterfall' or 'pacing')
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from pydantic import ValidationError

from ..errors import DefinitionError, Problem, unknown_name_hint
from ..semantic.pydantic_errors import key_path as _key
from ..semantic.pydantic_errors import validation_problems
from ..semantic.yaml_source import YamlDocument, load_yaml_file
from .models import TILE_TYPES, ChartTile, DashboardDef, KpiTile, NoteTile, RowTile, TableTile

Loc = tuple[Any, ...]


@dataclass
class LoadedDashboard:
    """A page definition, where it was written, and the problems of its tiles."""

    definition: DashboardDef
    doc: YamlDocument
    slug: str
    #: tile location (("tiles", 2) or ("tiles", 1, "tiles", 0)) -> problems of that tile
    tile_problems: dict[Loc, list[Problem]] = field(default_factory=dict)

    @property
    def file(self) -> str:
        return self.doc.path

    @property
    def problems(self) -> list[Problem]:
        return [p for ps in self.tile_problems.values() for p in ps]

    def tiles(self) -> Iterator[tuple[Loc, Any]]:
        """Every tile with its location, rows flattened (the row itself comes first)."""
        for i, tile in enumerate(self.definition.tiles):
            yield ("tiles", i), tile
            if isinstance(tile, RowTile):
                for j, inner in enumerate(tile.tiles):
                    yield ("tiles", i, "tiles", j), inner


def dashboard_files(semantic_dir: Path) -> list[Path]:
    folder = Path(semantic_dir) / "dashboards"
    if not folder.is_dir():
        return []
    return sorted(list(folder.glob("*.yml")) + list(folder.glob("*.yaml")))


# ------------------------------------------------------------ shape problems
def shape_problems(doc: YamlDocument, error: ValidationError) -> list[Problem]:
    return validation_problems(doc, error, DashboardDef, union_noun="tile type", union_tags=TILE_TYPES,
                               locate=lambda path: ("dashboard", path))


# -------------------------------------------------------- reference problems
def _tile_names(tile: Any) -> tuple[list[tuple[str, Loc]], list[tuple[str, Loc]]]:
    """(metric names, dimension names) a tile uses, each with its location inside the tile."""
    metrics: list[tuple[str, Loc]] = []
    dims: list[tuple[str, Loc]] = []
    if isinstance(tile, KpiTile):
        for i, item in enumerate(tile.items):
            metrics.append((item.metric, ("items", i, "metric")))
            if item.compare == "target":
                metrics.append((item.target_metric, ("items", i, "target_metric" if item.target_metric != "target" else "compare")))
            if item.range is not None:
                metrics += [(getattr(item.range, k), ("items", i, "range", k)) for k in ("weighted", "amount", "closed", "gap")
                            if getattr(item.range, k) is not None]
                metrics += [(getattr(c, k), ("items", i, "range", "choices", name, k))
                            for name, c in item.range.choices.items() for k in ("metric", "weighted", "gap")
                            if getattr(c, k) is not None]
    elif isinstance(tile, ChartTile):
        metrics += [(m, ("metrics", i)) for i, m in enumerate(tile.metrics)]
        if tile.baseline:
            metrics.append((tile.baseline, ("baseline",)))
        if tile.dimension != "period":
            dims.append((tile.dimension, ("dimension",)))
        if tile.series:
            dims.append((tile.series, ("series",)))
        if tile.series_top:
            metrics.append((tile.series_top.by, ("series_top", "by")))
        dims += [(d, ("order_by", i)) for i, d in enumerate(tile.order_by)]
        if tile.drill:
            dims += [(d, ("drill", "path", i)) for i, d in enumerate(tile.drill.path[1:], start=1)]
            for name, level in tile.drill.levels.items():
                metrics += [(m, ("drill", "levels", name, "metrics", i)) for i, m in enumerate(level.metrics or [])]
            if tile.drill.grid:
                metrics += [(m, ("drill", "grid", "metrics", i)) for i, m in enumerate(tile.drill.grid.metrics)]
            if tile.drill.detail:
                det = tile.drill.detail
                metrics += [(m, ("drill", "detail", "metrics", i)) for i, m in enumerate(det.metrics)]
                dims += [(d, ("drill", "detail", "columns", i)) for i, d in enumerate(det.columns)]
    elif isinstance(tile, TableTile):
        metrics += [(m, ("metrics", i)) for i, m in enumerate(tile.metrics)]
        metrics += [(m, ("totals", i)) for i, m in enumerate(tile.totals)]
        dims += [(d, ("columns", i)) for i, d in enumerate(tile.columns)]
    return metrics, dims


def reference_problems(loaded: LoadedDashboard, layer: Any) -> dict[Loc, list[Problem]]:
    """Unknown metrics/dimensions per tile, and queries the layer refuses to compile."""
    from ..errors import PipelineBIError
    from .queries import PageState, tile_queries

    known_metrics = layer.metrics
    known_dims = set(layer.dimensions()) | {"period"}
    out: dict[Loc, list[Problem]] = {}
    doc = loaded.doc
    for loc, tile in loaded.tiles():
        if isinstance(tile, (RowTile, NoteTile)):
            continue
        found: list[Problem] = []
        metrics, dims = _tile_names(tile)
        for name, sub in metrics:
            if name not in known_metrics:
                found.append(Problem(f"metric '{name}' is not defined", file=doc.path, line=doc.line_of(loc + sub),
                                     obj=f"dashboard {loaded.slug}", key=_key(loc + sub),
                                     hint=unknown_name_hint(name, known_metrics)))
        for name, sub in dims:
            if name not in known_dims:
                found.append(Problem(f"dimension '{name}' is not defined", file=doc.path, line=doc.line_of(loc + sub),
                                     obj=f"dashboard {loaded.slug}", key=_key(loc + sub),
                                     hint=unknown_name_hint(name, known_dims)))
        if not found:  # names are fine: does the layer accept the queries themselves?
            try:
                for q in tile_queries(tile, PageState(), layer, all_levels=True):
                    layer.compile_expression(q)
            except PipelineBIError as e:
                for p in e.problems:
                    found.append(Problem(p.message, file=doc.path, line=doc.line_of(loc), obj=f"dashboard {loaded.slug}",
                                         key=_key(loc), hint=p.hint))
        if found:
            out[loc] = found
    return out


# ------------------------------------------------------------------ loading
def _slug(path: Path) -> str:
    return path.stem.lower().replace("_", "-")


def load_dashboard_file(path: Path, semantic_dir: Path, layer: Any = None) -> LoadedDashboard:
    """One file; raises DefinitionError with its shape problems."""
    doc = load_yaml_file(path, semantic_dir)
    if not isinstance(doc.data, dict):
        raise DefinitionError(doc.problem("a dashboard file is a mapping with title, audience and tiles"))
    try:
        definition = DashboardDef.model_validate(doc.data)
    except ValidationError as e:
        raise DefinitionError(shape_problems(doc, e)) from None
    loaded = LoadedDashboard(definition, doc, definition.slug or _slug(path))
    if layer is not None:
        loaded.tile_problems = reference_problems(loaded, layer)
    return loaded


@dataclass
class DashboardSet:
    pages: list[LoadedDashboard]
    #: file -> its shape problems (the file could not be read as a page)
    broken: dict[str, list[Problem]]

    @property
    def problems(self) -> list[Problem]:
        return [p for ps in self.broken.values() for p in ps] + [p for d in self.pages for p in d.problems]


def load_dashboard_set(semantic_dir: Path | str, layer: Any = None) -> DashboardSet:
    """Every dashboard file; broken files are reported, not raised (the app shows them)."""
    semantic_dir = Path(semantic_dir)
    pages: list[LoadedDashboard] = []
    broken: dict[str, list[Problem]] = {}
    seen: dict[str, str] = {}
    for path in dashboard_files(semantic_dir):
        try:
            page = load_dashboard_file(path, semantic_dir, layer)
        except DefinitionError as e:
            shown = e.problems[0].file if e.problems and e.problems[0].file else str(path)
            broken[shown] = e.problems
            continue
        if page.slug in seen:
            broken[page.file] = [page.doc.problem(f"page slug '{page.slug}' is already used by {seen[page.slug]}",
                                                  ("slug",), hint="set a different 'slug:'")]
            continue
        seen[page.slug] = page.file
        pages.append(page)
    pages.sort(key=lambda p: (p.definition.order, p.definition.title))
    return DashboardSet(pages, broken)


def load_dashboards(semantic_dir: Path | str, layer: Any = None) -> list[LoadedDashboard]:
    """Every dashboard; raises DefinitionError listing every problem (shape, and with a
    ``layer`` unknown metric/dimension names) — what ``pipelinebi validate`` wants."""
    found = load_dashboard_set(semantic_dir, layer)
    if found.problems:
        raise DefinitionError(found.problems)
    return found.pages


def dashboard_json_schema() -> dict:
    """JSON Schema of a dashboard file (for ``# yaml-language-server: $schema=...``)."""
    schema = DashboardDef.model_json_schema()
    schema["title"] = "PipelineBI dashboard page"
    return schema


def write_dashboard_schema(path: Path) -> Path:
    path.write_text(json.dumps(dashboard_json_schema(), indent=2) + "\n", encoding="utf-8")
    return path
