"""The semantic layer: YAML definitions → checked registry → compiled queries.

``SemanticLayer`` and friends are imported on first use: the compiler imports
``pipelinebi.semantic.definitions`` / ``.registry``, and ``layer`` imports the compiler, so an
eager import here would make ``import pipelinebi.compiler.aggregate`` (as the first import)
a circular one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["Result", "SemanticLayer", "load_semantic_layer"]

if TYPE_CHECKING:
    from .layer import Result, SemanticLayer, load_semantic_layer


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import layer

        return getattr(layer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
