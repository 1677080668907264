"""JSON Schemas of the YAML files, for editor completion and checking.

``pipelinebi schema`` writes ``semantic.schema.json`` (models and metrics files) and,
when the dashboards package is present, ``dashboard.schema.json``. YAML files point
at them with a first-line comment understood by the YAML language server::

    # yaml-language-server: $schema=../semantic.schema.json

>>> schema = semantic_json_schema()
>>> sorted(schema["properties"])
['metrics', 'models']
>>> schema["additionalProperties"]
False
"""

from __future__ import annotations

import json
from pathlib import Path

from .definitions import SemanticFile


def semantic_json_schema() -> dict:
    schema = SemanticFile.model_json_schema()
    schema["title"] = "PipelineBI semantic file (models and metrics)"
    return schema


def write_json_schemas(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    path = out_dir / "semantic.schema.json"
    path.write_text(json.dumps(semantic_json_schema(), indent=2) + "\n", encoding="utf-8")
    written.append(path)
    try:
        from ..dashboards import dashboard_json_schema  # written with the app
    except ImportError:
        return written
    path = out_dir / "dashboard.schema.json"
    path.write_text(json.dumps(dashboard_json_schema(), indent=2) + "\n", encoding="utf-8")
    written.append(path)
    return written
