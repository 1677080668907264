"""Ingest: source files → validated canonical tables → derived tables → atomic swap.

Modules, one job each: ``files`` (find table files), ``encoding`` / ``read`` (raw text
with row numbers), ``types`` (casts), ``checks`` (set-based rule runner), ``columns``
(per-column rules), ``relations`` (keys and references), ``derived`` (semantic/derived
SQL), ``swap`` (atomic file replacement), ``storage`` (a folder as target, read-only
folders, a full disk: explained, never a traceback), ``report`` (findings and
rendering), ``run`` (the ``ingest`` entry point).
"""

from .report import IngestReport
from .run import SCHEMA_VERSION, ingest

__all__ = ["IngestReport", "SCHEMA_VERSION", "ingest"]
