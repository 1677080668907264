"""Engine URLs: what ``PIPELINEBI_ENGINE`` / ``--engine`` name, with the password hidden, and
which SQL dialect a connection speaks.

Kept apart from the engines themselves so that settings, the semantic layer, the forecast and
the access rules can read an URL or a dialect without importing an engine (and the engines'
build code, which imports ingest, which reads settings: an import circle otherwise).

>>> u = parse_engine("postgresql://ann:s3cret@db.example:5433/sales?schema=crm")
>>> u.kind, u.schema, u.redacted
('postgres', 'crm', 'postgresql://ann:***@db.example:5433/sales?schema=crm')
>>> parse_engine("duckdb:///srv/bi/pipelinebi.duckdb").path
PosixPath('/srv/bi/pipelinebi.duckdb')
>>> s = parse_engine("spark://bi:s3cret@spark.example:15002?database=crm&token=t0k")
>>> s.kind, s.schema, s.conninfo, s.redacted
('spark', 'crm', 'sc://spark.example:15002/;token=t0k;user_id=bi', 'spark://bi:***@spark.example:15002?database=crm&token=***')
>>> parse_engine("spark-local").schema, parse_engine("spark-local?warehouse=/srv/lake&database=crm").path
('pipelinebi', PosixPath('/srv/lake'))
>>> parse_engine("mysql://x")
Traceback (most recent call last):
...
pipelinebi.errors.ConfigError: PIPELINEBI_ENGINE: 'mysql://x' is not an engine URL (accepted: duckdb:///path/to/file.duckdb, postgresql://user@host/db?schema=crm, spark-local, spark://host:15002?database=crm)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import ConfigError, Problem

#: what an engine URL may look like, for messages
ACCEPTED = ("accepted: duckdb:///path/to/file.duckdb, postgresql://user@host/db?schema=crm, spark-local, "
            "spark://host:15002?database=crm")
#: a schema name we put into a connection option: a plain identifier, nothing else
_SCHEMA = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True)
class EngineURL:
    """A parsed engine URL. ``url`` holds any password: never print it, print ``redacted``."""

    kind: str  # duckdb | postgres | spark
    url: str
    redacted: str
    path: Path | None = None  # duckdb: the file; spark-local: the warehouse folder (None: the default)
    schema: str = "public"  # postgres: where the tables live; spark: the database
    conninfo: str = ""  # postgres: the URL without our own parameters, for libpq; spark: the sc:// URL ("" local)

    def __repr__(self) -> str:  # a stray repr() in a log must not carry the password
        return f"EngineURL({self.redacted!r})"


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***``.

    >>> redact("postgresql://ann:p%40ss@h/db"), redact("postgresql://h/db?password=x&schema=crm")
    ('postgresql://ann:***@h/db', 'postgresql://h/db?password=***&schema=crm')
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}:***@{host}"
    query = urlencode([(k, "***" if k.lower() in ("password", "token") else v) for k, v in parse_qsl(parts.query)],
                      safe="*/")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def parse_engine(url: str) -> EngineURL:
    """Parse and check an engine URL (a :class:`ConfigError` naming the setting if it is wrong)."""
    text = url.strip()
    scheme = text.split(":", 1)[0].lower()
    if scheme == "duckdb" and text.lower().startswith("duckdb://"):
        path = text[len("duckdb://"):]
        if not path:
            raise ConfigError(Problem(f"PIPELINEBI_ENGINE: '{text}' names no file",
                                      hint="write duckdb:///absolute/path.duckdb or duckdb://relative/path.duckdb"))
        return EngineURL("duckdb", text, text, path=Path(path))
    if scheme in ("postgresql", "postgres"):
        parts = urlsplit(text)
        params = parse_qsl(parts.query, keep_blank_values=True)
        schema = next((v for k, v in params if k == "schema"), "public")
        if not _SCHEMA.match(schema):
            raise ConfigError(Problem(f"PIPELINEBI_ENGINE: schema '{schema}' is not a plain name",
                                      hint="letters, digits and _, e.g. ?schema=crm"))
        rest = urlencode([(k, v) for k, v in params if k != "schema"])
        conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, rest, ""))
        return EngineURL("postgres", text, redact(text), schema=schema, conninfo=conninfo)
    if scheme == "spark" or re.match(r"(?i)^spark-local(\?|$)", text):
        return _spark_url(text)
    raise ConfigError(Problem(f"PIPELINEBI_ENGINE: '{redact(text)}' is not an engine URL", hint=ACCEPTED))


def _spark_url(text: str) -> EngineURL:
    local = text.lower().startswith("spark-local")
    parts = urlsplit("spark-local://" + text[len("spark-local"):].lstrip(":/") if local else text)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    database = params.get("database", "pipelinebi")
    if not _SCHEMA.match(database):
        raise ConfigError(Problem(f"PIPELINEBI_ENGINE: database '{database}' is not a plain name",
                                  hint="letters, digits and _, e.g. ?database=crm"))
    unknown = sorted(set(params) - {"database", "warehouse", "token"})
    if unknown:
        raise ConfigError(Problem(f"PIPELINEBI_ENGINE: unknown parameter {unknown[0]} in {redact(text)}",
                                  hint="spark URLs take database=, and warehouse= (spark-local) or token= (spark://)"))
    if local:
        if parts.netloc or parts.path.strip("/"):
            raise ConfigError(Problem(f"PIPELINEBI_ENGINE: '{redact(text)}' is not a local Spark URL",
                                      hint="spark-local, or spark-local?warehouse=/path/to/folder&database=crm"))
        warehouse = Path(params["warehouse"]) if params.get("warehouse") else None
        return EngineURL("spark", text, redact(text), path=warehouse, schema=database)
    if not parts.hostname:
        raise ConfigError(Problem(f"PIPELINEBI_ENGINE: '{redact(text)}' names no Spark Connect host",
                                  hint="spark://host:15002?database=crm"))
    remote = f"sc://{parts.hostname}:{parts.port or 15002}"
    options = [f"token={params['token']}"] if params.get("token") else []
    if parts.username:
        options.append(f"user_id={parts.username}")
    if options:
        remote += "/;" + ";".join(options)
    return EngineURL("spark", text, redact(text), schema=database, conninfo=remote)


def data_key(url: EngineURL) -> str:
    """A file-name-safe name for the data an engine URL points at — its kind, host, port, database
    and schema; never the user, the password or a token (a model trained on it is stored under it).
    A local Spark's warehouse folder is a short hash (a path does not fit a file name).

    >>> data_key(parse_engine("postgresql://ann:s3cret@db.example:5433/sales?schema=crm"))
    'postgres-db.example-5433-sales-crm'
    >>> data_key(parse_engine("postgresql:///sales")), data_key(parse_engine("spark://h:15002?database=crm&token=t"))
    ('postgres-local-5432-sales-public', 'spark-h-15002-crm')
    >>> data_key(parse_engine("spark-local?warehouse=/srv/lake&database=crm"))
    'spark-local-crm-5b3e4953'
    """
    import hashlib

    if url.kind == "spark" and not url.conninfo:
        folder = str(url.path.resolve()) if url.path else ""
        parts = ["spark-local", url.schema, hashlib.sha256(folder.encode()).hexdigest()[:8]]
    else:
        where = urlsplit(url.conninfo if url.kind == "spark" else url.url)
        port = where.port or (15002 if url.kind == "spark" else 5432)
        database = where.path.strip("/") if url.kind == "postgres" else ""
        parts = [url.kind, where.hostname or "local", str(port), *([database] if database else []), url.schema]
    return "-".join(re.sub(r"[^A-Za-z0-9._-]+", "_", p) for p in parts if p)


def engine_url(settings: Any) -> EngineURL:
    """The engine the settings name: ``settings.engine``, else the DuckDB file ``settings.database``.
    A local Spark without ``warehouse=`` keeps its tables in ``spark-warehouse/`` beside that file."""
    if getattr(settings, "engine", None):
        url = parse_engine(settings.engine)
        if url.kind == "spark" and not url.conninfo and url.path is None:
            from dataclasses import replace

            url = replace(url, path=Path(settings.database).parent / "spark-warehouse")
        return url
    path = Path(settings.database)
    return EngineURL("duckdb", f"duckdb://{path}", f"duckdb://{path}", path=path)


def dialect_of(con: Any) -> str:
    """The SQL dialect a connection speaks (a plain DuckDB connection: ``duckdb``)."""
    return getattr(con, "dialect", "duckdb")
