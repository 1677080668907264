"""Read and allow-list ``semantic/derived/*.sql`` once, for validation and ingest alike.

Validation (:mod:`pipelinebi.semantic.tables`, which raises ``DefinitionError``) and ingest
(:mod:`pipelinebi.ingest.derived`, which raises ``IngestError``) used to read and check the
files each on their own; both now take :func:`read_derived`'s answer — the checked files
and every problem located at its file — and only choose the error type.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "a.sql").write_text("SELECT 41 AS n")
>>> _ = (d / "deals.sql").write_text("SELECT 1 AS n")
>>> files, problems = read_derived(d)
>>> [f.name for f in files], [p.message for p in problems]
(['a'], ["derived table name 'deals' is not allowed"])
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sqlglot import exp

from ..canonical import TABLES
from ..errors import DefinitionError, ExpressionError, Problem
from .derived_params import bind, load_parameters
from .expressions import MAX_SQL_CHARS, check_derived_sql, parse_sql

META_TABLE = "pipelinebi_meta"
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class DerivedFile:
    """One checked derived-table file: its allow-listed tree and the tables it reads."""

    name: str
    path: Path
    tree: exp.Expression
    depends_on: frozenset[str]

    @property
    def sql(self) -> str:
        """The checked tree as sqlglot prints it for DuckDB (what actually runs)."""
        return self.tree.sql("duckdb")


def derived_sql_files(folder: Path) -> list[Path]:
    """The ``*.sql`` files of a derived folder, in name order (none when it does not exist)."""
    return sorted(Path(folder).glob("*.sql")) if Path(folder).is_dir() else []


def read_derived(folder: Path | None) -> tuple[list[DerivedFile], list[Problem]]:
    """Every file that reads and passes the allow-list, and a located problem for each that does not."""
    problems: list[Problem] = []
    texts: list[tuple[str, Path, str]] = []
    for path in derived_sql_files(folder) if folder is not None else []:
        name = path.stem
        if not _NAME.match(name) or name in TABLES or name == META_TABLE:
            problems.append(Problem(f"derived table name '{name}' is not allowed", file=str(path),
                                    hint="lower-case letters, digits and _; not a canonical table name"))
            continue
        try:
            texts.append((name, path, path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as e:
            problems.append(Problem(f"cannot read the file: {e}", file=str(path),
                                    hint="derived table SQL must be UTF-8 text"))
    known = set(TABLES) | {META_TABLE} | {name for name, _, _ in texts}
    try:
        params = load_parameters(folder) if texts else {}
    except DefinitionError as e:
        return [], problems + e.problems
    files: list[DerivedFile] = []
    for name, path, text in texts:
        try:
            parsed = parse_sql(text.strip().rstrip(";"), "SQL", MAX_SQL_CHARS)
            tree = check_derived_sql(bind(parsed, params, str(path)), known)
        except (ExpressionError, DefinitionError) as e:
            problems += [Problem(p.message, file=str(path), obj=f"derived table {name}", hint=p.hint)
                         for p in e.problems]
            continue
        ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
        reads = frozenset(t.name for t in tree.find_all(exp.Table) if t.name and t.name not in ctes)
        files.append(DerivedFile(name, path, tree, reads))
    return files, problems
