"""Any flat CSV export, described entirely by the mapping file.

Usually only the current stage is known; history is then synthesised (see
:mod:`pipelinebi.importers.synthesize`). A mapping may also name a ``history:`` file of stage
changes (deal_id, changed_at, stage, …), which is then used like Salesforce's.
"""

from __future__ import annotations

from pathlib import Path

from .mapping_file import Mapping
from .report import Report
from .sources import Extract, extract_common


def extract(root: Path, deals_path: Path | None, mapping: Mapping, report: Report) -> Extract | None:
    return extract_common(root, deals_path, mapping, report)
