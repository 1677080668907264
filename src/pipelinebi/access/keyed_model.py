"""Which model's key a row rule can be resolved to: the one model whose own columns it tests.

Both the ingest-time facts (:mod:`pipelinebi.access.facts`, which models' keys to count) and the
per-scope resolution (:mod:`pipelinebi.access.keys`) ask this question; it lives here so that
neither has to import the other for it.

>>> from pipelinebi.semantic import load_semantic_layer
>>> from pipelinebi.settings import PROJECT_ROOT
>>> from pipelinebi.compiler.filters import to_condition
>>> layer = load_semantic_layer(PROJECT_ROOT / "semantic")
>>> model_of(layer.registry, to_condition("reps.region IN ('EMEA')"))
'reps'
>>> model_of(layer.registry, to_condition("1 = 1")) is None   # no dimension: nothing to key
True
"""

from __future__ import annotations

from sqlglot import exp

from ..compiler.fields import resolve_dimension
from ..compiler.filters import dimension_names
from ..errors import QueryError


def model_of(registry, condition: exp.Expression) -> str | None:
    """The one model with a one-column key whose own columns are every dimension ``condition``
    names; None when there is none or more than one (then the condition stays joined)."""
    names = dimension_names(condition)
    if not names:
        return None
    found = None
    for model_name, model in registry.models.items():
        if len(model.definition.key_columns) != 1:
            continue
        try:
            if all(resolve_dimension(registry, model_name, n).models == {model_name} for n in names):
                if found is not None:
                    return None  # two candidates: leave it to the joins
                found = model_name
        except QueryError:
            continue
    return found
