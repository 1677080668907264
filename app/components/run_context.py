"""What the data of this script run is, as one string for cache keys: the database version, the
viewer's scope and the YAML stamp — provided by :mod:`components.data`, read by the caches.

Why a module of its own: :mod:`spec_cache` and :mod:`memo` key everything on it, and
:mod:`data` keeps its results in :mod:`memo`. Had the caches imported :mod:`data` for it,
``data → memo → spec_cache → data`` would be a circle. Here the arrows go one way: ``data``
installs the provider when imported (as :mod:`components.auth` installs the viewer resolver),
and the caches only read it.

    run_context.provide(lambda: f"{db_key()}|{snapshot().semantic_stamp}")  # components.data
    h.update(run_context.current().encode())                                # a cache's key
"""

from __future__ import annotations

from typing import Callable

_provider: Callable[[], str] | None = None


def provide(context: Callable[[], str]) -> None:
    """Install the function naming this run's data (``components.data`` does, at import)."""
    global _provider
    _provider = context


def current() -> str:
    """This run's data, for a cache key. Nothing installed — no key that could be shared by
    two viewers is ever made up, so it raises."""
    if _provider is None:
        raise RuntimeError("components.data is not imported: no run context to key caches on")
    return _provider()
