"""Where things are: the database file, the semantic folder, the seed data.

Precedence, highest first: a CLI flag (passed as a keyword argument), an environment
variable with the ``PIPELINEBI_`` prefix, a ``.env`` file in the working directory,
then the defaults below.

>>> s = Settings(database="/tmp/x.duckdb")
>>> s.database.name
'x.duckdb'
>>> s.semantic_dir.name
'semantic'
"""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

#: The repository root when installed from a checkout (``pip install -e .``).
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _default_home() -> Path:
    # A checkout keeps its demo database next to the code; anywhere else, the cwd.
    root = PROJECT_ROOT if (PROJECT_ROOT / "pyproject.toml").exists() else Path.cwd()
    return root / ".pipelinebi"


class Settings(BaseSettings):
    """PipelineBI settings (env prefix ``PIPELINEBI_``)."""

    model_config = SettingsConfigDict(
        env_prefix="PIPELINEBI_", env_file=".env", extra="ignore", frozen=True
    )

    #: DuckDB file holding the canonical and derived tables.
    database: Path = _default_home() / "pipelinebi.duckdb"
    #: Folder with ``models/``, ``metrics/``, ``dashboards/``, ``derived/``.
    semantic_dir: Path = PROJECT_ROOT / "semantic"
    #: Canonical CSVs loaded when no database exists yet (the embedded demo).
    seeds_dir: Path = PROJECT_ROOT / "seeds"
    #: Default SQL dialect for ``compile``.
    dialect: str = "duckdb"
    #: Seconds a query may run before it is interrupted (0: no limit).
    query_timeout: float = 30.0
    #: Memory a query connection may use (DuckDB syntax: ``4GB``, or a share of RAM: ``50%``).
    query_memory: str = "50%"


def get_settings(**overrides: object) -> Settings:
    """Settings with CLI-flag overrides applied (``None`` means 'not given')."""
    given = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**given)
