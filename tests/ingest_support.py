"""What the ingest tests share: the small good export and its fixtures (see ``conftest.py``)."""

from __future__ import annotations

import shutil
from pathlib import Path

from pipelinebi.ingest import ingest
from pipelinebi.settings import PROJECT_ROOT

GOOD = PROJECT_ROOT / "tests" / "fixtures" / "ingest" / "good"   # 4 deals, 12 stage intervals


def intervals_only_semantic(folder: Path) -> Path:
    """A semantic folder whose only derived table is ``stage_intervals`` (fast to build)."""
    (folder / "derived").mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "semantic" / "derived" / "stage_intervals.sql", folder / "derived")
    return folder


def built_database(db: Path, semantic: Path) -> Path:
    """``db`` built from the good export: the 'previous database' an ingest must leave intact."""
    assert ingest(GOOD, db, semantic_dir=semantic).ok
    return db
