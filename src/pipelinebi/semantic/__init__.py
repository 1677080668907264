"""The semantic layer: YAML definitions → checked registry → compiled queries."""

from .layer import Result, SemanticLayer, load_semantic_layer

__all__ = ["Result", "SemanticLayer", "load_semantic_layer"]
