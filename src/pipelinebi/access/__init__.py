"""Who may see what: identity → user → role → row scope (a :class:`~pipelinebi.compiler.query.RowScope`).

- :mod:`.policy` — ``semantic/access.yml``: roles, their row rules over dimensions, hidden
  metrics/dimensions, company benchmarks, users and group mappings (validated with file:line).
- :mod:`.identity` — who is asking: nobody (open access), a trusted proxy header, OpenID
  Connect claims, or the CLI's ``--as``; no Streamlit here, the app passes what it was given.
- :mod:`.scope` — a user's scope: the role's row rule with the user's attributes put in as
  literals (never text), checked against the filter allow-list.

The compiler applies the scope to every branch of every query (``compiler/scope.py``).
"""

from __future__ import annotations



from pathlib import Path

from ..compiler.query import RowScope
from .identity import Identity
from .policy import OPEN_POLICY, Policy, load_policy
from .scope import scope_for

#: The scope of open access (``auth: none``, or no ``access.yml``): every row.
OPEN_SCOPE = RowScope(who="everyone (open access)")


def load_access(semantic_dir: Path | str, layer=None) -> tuple[Policy, bool]:
    """The policy, with its rules checked against ``layer``'s dimensions and metrics if given."""
    dims = None
    if layer is not None:  # every dimension, with the models that define it
        dims = {}
        for model_name, model in layer.registry.models.items():
            for dim in model.dimensions:
                dims.setdefault(dim, []).append(model_name)
                dims.setdefault(f"{model_name}.{dim}", []).append(model_name)
    metrics = set(layer.metrics) if layer is not None else None
    return load_policy(semantic_dir, dims, metrics)


def scope_of(policy: Policy, identity: Identity | None) -> RowScope:
    """The rows ``identity`` may see under ``policy`` (:data:`OPEN_SCOPE` when nobody signed in
    and access is open)."""
    if identity is None or identity.source == "none":
        return OPEN_SCOPE
    return scope_for(policy, policy.user(identity.email), identity.groups, identity.email)


__all__ = ["OPEN_POLICY", "OPEN_SCOPE", "Identity", "Policy", "load_access", "scope_of"]
