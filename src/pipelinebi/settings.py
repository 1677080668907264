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

import re
from pathlib import Path
from typing import Literal

from pydantic import SecretStr, ValidationError, field_validator, model_validator
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
    #: Where queries run (``PIPELINEBI_ENGINE`` / ``--engine``): ``duckdb:///path.duckdb`` or
    #: ``postgresql://user@host/db?schema=crm`` (:mod:`pipelinebi.engines`). Unset: the DuckDB
    #: file ``database``. A ``duckdb://`` URL sets ``database`` too.
    engine: str | None = None
    #: Spark: the canonical tables' Parquet files (a folder of ``deals.parquet`` or ``deals/``, …)
    #: or a JSON object ``{"deals": "/lake/crm/deals", "reps": "crm.reps"}`` (paths or catalog
    #: tables) that ``pipelinebi derive --engine spark…`` reads (:mod:`pipelinebi.engines.spark_build`).
    spark_sources: str | None = None
    #: Rows a query on a shared engine (PostgreSQL) may return before it is refused (0: no cap).
    query_max_rows: int = 2_000_000
    #: Default SQL dialect for ``compile``.
    dialect: str = "duckdb"
    #: Seconds a query may run before it is interrupted (0: no limit).
    query_timeout: float = 30.0
    #: Who is asking: none (open access), header (a trusted proxy's header) or oidc (st.login).
    auth: Literal["none", "header", "oidc"] = "none"
    #: ``auth: header``: the header holding the e-mail, one holding comma-separated groups,
    #: and the proxies (addresses or networks) whose requests are believed.
    auth_header: str = "X-Forwarded-Email"
    auth_groups_header: str | None = "X-Forwarded-Groups"
    trusted_proxies: tuple[str, ...] = ("127.0.0.1",)
    #: ``auth: oidc``: the token claim listing the user's groups.
    oidc_groups_claim: str = "groups"
    #: ``auth: oidc``: a Streamlit secrets file whose ``[auth]`` section names the OpenID Connect
    #: provider (``server_metadata_url``, ``client_id``, ``client_secret``, ``redirect_uri``,
    #: ``cookie_secret``); ``pipelinebi serve`` hands it to Streamlit. Unset: Streamlit's own
    #: ``.streamlit/secrets.toml``.
    auth_secrets: Path | None = None
    #: Memory a query connection may use (DuckDB syntax: ``4GB``, or a share of RAM: ``50%``).
    query_memory: str = "50%"
    #: Memory ``pipelinebi ingest`` may use (``PIPELINEBI_INGEST_MEMORY``): a share of this machine's
    #: RAM by default, like DuckDB's own default (80%) but smaller, because the build's buffer pool
    #: fills up to the limit while it writes; bigger intermediate results spill to a temp folder
    #: private to the run. 10M deals ingest within the default on 24 GB (README, Benchmarks).
    ingest_memory: str = "20%"
    #: A deal's record in the CRM (``PIPELINEBI_CRM_DEAL_URL``): an http(s) address with exactly one
    #: ``{deal_id}`` placeholder, e.g. ``https://crm.example/deals/{deal_id}``; deal lists then have a
    #: link column (the id percent-encoded). Unset: no link column.
    crm_deal_url: str | None = None
    #: The forecast method the Forecast vs target page's headline shows (``PIPELINEBI_FORECAST_METHOD``):
    #: ``auto`` — the method with the lowest backtest error over the last four completed quarters
    #: (``pipelinebi backtest``), or the CRM stage probability while no backtest is stored — or one
    #: method by name (:mod:`pipelinebi.forecast.choice`). The page's *Forecast method* picker
    #: overrides it for one view.
    forecast_method: Literal["auto", "stage_probability", "historical_win_rate", "timed_win_rate", "model",
                             "commit", "best_case"] = "auto"
    #: Folder of the win-probability models trained on a warehouse engine (``pipelinebi model train
    #: --engine postgresql://…``): one file per engine URL's data, named by its kind, host, port,
    #: database and schema (:func:`pipelinebi.engines.data_key`; never its user, password or token).
    #: Unset: ``models/`` beside the DuckDB file (``.pipelinebi/models/``). A model of the DuckDB
    #: file stays beside that file (``<name>.winmodel.json``).
    forecast_model_dir: Path | None = None

    #: ``pipelinebi notify`` (README: Rules, playbooks and actions). A webhook receiving each open
    #: action as a JSON POST (the address and token are secrets: never printed or logged) …
    notify_webhook_url: SecretStr | None = None
    notify_webhook_token: SecretStr | None = None
    #: … and/or an e-mail digest over SMTP.
    notify_smtp_host: str | None = None
    notify_smtp_port: int = 25
    notify_smtp_user: str | None = None
    notify_smtp_password: SecretStr | None = None
    notify_smtp_starttls: bool = False
    notify_email_from: str = "pipelinebi@localhost"
    notify_email_to: tuple[str, ...] = ()
    #: What was delivered (SQLite; default: beside the database, ``<database>.notify.sqlite``), so a
    #: rerun sends nothing twice; the dead-letter file sits beside it.
    notify_state: Path | None = None
    #: Attempts per delivery, seconds per attempt, first pause between attempts (doubling).
    notify_retries: int = 3
    notify_timeout: float = 10.0
    notify_backoff: float = 1.0

    @field_validator("notify_webhook_url")
    @classmethod
    def _webhook_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        if not value.get_secret_value().startswith(("http://", "https://")):
            raise ValueError("the webhook address must start with http:// or https://")
        return value

    @field_validator("notify_retries")
    @classmethod
    def _retries(cls, value: int) -> int:
        if value < 1:
            raise ValueError("at least 1 attempt")
        return value

    @field_validator("engine")
    @classmethod
    def _engine(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        from .engines.url import parse_engine
        from .errors import ConfigError

        try:
            parse_engine(value)
        except ConfigError as e:  # the message without the setting's name: pydantic adds it
            raise ValueError(e.problems[0].message.split(": ", 1)[-1] + f" ({e.problems[0].hint})") from None
        return value.strip()

    @model_validator(mode="after")
    def _duckdb_engine_names_the_file(self) -> "Settings":
        if self.engine and self.engine.lower().startswith("duckdb://"):
            from .engines.url import parse_engine

            object.__setattr__(self, "database", parse_engine(self.engine).path)  # frozen: set once here
        return self

    @field_validator("crm_deal_url")
    @classmethod
    def _crm_deal_url(cls, value: str | None) -> str | None:
        from .crm_links import check_template

        return None if value is None or not value.strip() else check_template(value)

    @field_validator("query_memory", "ingest_memory")
    @classmethod
    def _memory_size(cls, value: str) -> str:
        if not re.fullmatch(r"(?i)\s*\d+(\.\d+)?\s*(b|kb|mb|gb|tb|kib|mib|gib|tib|%)\s*", value):
            raise ValueError("write a size such as 4GB or a share of memory such as 50%")
        return value.strip()


#: settings whose values are secrets: an error about them never repeats the value
SECRET_SETTINGS = frozenset({"notify_webhook_url", "notify_webhook_token", "notify_smtp_password"})


def _shown_input(err: dict) -> str:
    if set(map(str, err["loc"])) & SECRET_SETTINGS:
        return "(the value, hidden)"
    value = err.get("input")
    if err.get("loc") == ("engine",) and isinstance(value, str):  # an engine URL without its password
        from .engines.url import redact

        return repr(redact(value))
    return repr(value)


def get_settings(**overrides: object) -> Settings:
    """Settings with CLI-flag overrides applied (``None`` means 'not given').

    A bad value in the environment or ``.env`` is a :class:`ConfigError` naming the variable:

    >>> import os; os.environ["PIPELINEBI_QUERY_TIMEOUT"] = "soon"
    >>> get_settings()
    Traceback (most recent call last):
    ...
    pipelinebi.errors.ConfigError: PIPELINEBI_QUERY_TIMEOUT: 'soon' is not valid: Input should be a valid number, unable to parse string as a number (set it in the environment or .env, or unset it for the default)
    >>> del os.environ["PIPELINEBI_QUERY_TIMEOUT"]
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as e:
        from .errors import ConfigError, Problem

        raise ConfigError([
            Problem(f"{'PIPELINEBI_' + '.'.join(map(str, err['loc'])).upper()}: {_shown_input(err)} is not valid: "
                    f"{err['msg']}", hint="set it in the environment or .env, or unset it for the default")
            for err in e.errors()]) from None

