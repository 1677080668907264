"""Design rules that hold by test, not by hope.

- the semantic core (src/pipelinebi) never imports Streamlit;
- app/ holds layout only: no SQL text in its string literals, no DuckDB calls;
- every module of the compiler and the semantic layer imports first, on its own (no import cycle).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from pipelinebi.settings import PROJECT_ROOT

SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP)\b\s+\S+.*\b(FROM|INTO|TABLE|SET|WHERE)\b", re.S)  # upper-case keywords: prose like "Select a metric from" is fine


def _modules(folder: Path):
    for path in sorted(folder.rglob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def test_core_never_imports_streamlit():
    offenders = []
    for path, tree in _modules(PROJECT_ROOT / "src" / "pipelinebi"):
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(n == "streamlit" or n.startswith("streamlit.") for n in names):
                offenders.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}")
    assert not offenders, offenders


def test_app_has_no_sql_and_no_database_calls():
    offenders = []
    for path, tree in _modules(PROJECT_ROOT / "app"):
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
                offenders.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}: SQL text")
            if isinstance(node, ast.Attribute) and node.attr in ("execute", "sql") and \
                    isinstance(node.value, ast.Name) and node.value.id in ("con", "cursor", "duckdb"):
                offenders.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}: database call")
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                if "duckdb" in names:
                    offenders.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}: imports duckdb")
    assert not offenders, offenders


def test_compiler_and_semantic_modules_import_first_on_their_own():
    # They import each other (layer -> compiler -> definitions); a cycle only shows when a
    # module is the first one imported, so each gets a fresh interpreter.
    src = PROJECT_ROOT / "src"
    names = [".".join(p.relative_to(src).with_suffix("").parts) for folder in ("compiler", "semantic", "dashboards")
             for p in sorted((src / "pipelinebi" / folder).glob("*.py")) if p.stem != "__init__"]
    procs = {n: subprocess.Popen([sys.executable, "-c", f"import {n}"], stderr=subprocess.PIPE, text=True) for n in names}
    failed = {n: p.communicate()[1].strip().splitlines()[-1] for n, p in procs.items() if p.wait() != 0}
    assert len(names) > 15 and not failed, failed
