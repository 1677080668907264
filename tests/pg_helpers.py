"""PostgreSQL helpers shared by the tests (no fixtures here; see ``tests/conftest.py``).

* :func:`find_pg_bin` / :class:`PostgresCluster` - a throwaway PostgreSQL cluster in a temp dir.
* :func:`load_duckdb_tables_into_postgres` - copy DuckDB tables into Postgres with matching
  column types, through ``COPY ... FROM STDIN``.

``tests/`` is put on ``sys.path`` by ``tests/conftest.py``, so tests import this module as
``from pg_helpers import load_duckdb_tables_into_postgres``.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

#: Unprivileged system user that owns the cluster when the tests run as root
#: (``initdb`` refuses to run as root).
PG_OS_USER = "pipelinebi_pg"
PREFERRED_MAJOR = "15"


def find_pg_bin() -> Path | None:
    """The folder holding ``initdb``/``pg_ctl``: ``$PIPELINEBI_PG_BIN`` if set, else
    ``/usr/lib/postgresql/15/bin``, else the newest ``/usr/lib/postgresql/*/bin``,
    else whatever ``initdb`` is on ``PATH``. ``None`` when there is none."""
    env = os.environ.get("PIPELINEBI_PG_BIN")
    if env:  # authoritative when set
        return Path(env) if (Path(env) / "initdb").is_file() else None
    candidates = [Path(f"/usr/lib/postgresql/{PREFERRED_MAJOR}/bin")]
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    found.sort(key=lambda p: int(re.sub(r"\D", "", Path(p).parts[-3]) or 0), reverse=True)
    candidates += [Path(p).parent for p in found]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for c in candidates:
        if (c / "initdb").is_file() and (c / "pg_ctl").is_file():
            return c
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ensure_os_user(name: str) -> None:
    if subprocess.run(["id", "-u", name], capture_output=True).returncode == 0:
        return
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
    )


class PostgresCluster:
    """A throwaway cluster: ``start()`` returns a DSN, ``stop()`` removes everything.

    Superuser ``postgres``, trust auth, TCP on 127.0.0.1 only, durability off for speed.
    """

    def __init__(self, bin_dir: Path):
        self.bin_dir = Path(bin_dir)
        self.root = Path(tempfile.mkdtemp(prefix="pipelinebi-pg-"))
        self.data = self.root / "data"
        self.sock = self.root / "sock"
        self.log = self.root / "postgres.log"
        self.port: int | None = None
        self._as_root = os.geteuid() == 0

    # -- running commands as the cluster owner -------------------------------------------
    def _run(self, args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [str(a) for a in args]
        if self._as_root:
            cmd = ["runuser", "-u", PG_OS_USER, "--", *cmd]
        proc = subprocess.run(
            cmd, cwd=self.root, capture_output=True, text=True, timeout=timeout,
            env={**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"},
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
                f"\n--- server log ---\n{self.server_log()}"
            )
        return proc

    def server_log(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-5000:]
        except OSError:
            return "(no log)"

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> str:
        self.sock.mkdir()
        if self._as_root:
            _ensure_os_user(PG_OS_USER)
            for p in (self.root, self.sock):
                shutil.chown(p, PG_OS_USER, PG_OS_USER)
        self._run([
            self.bin_dir / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust",
            "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions",
        ])
        last_error: Exception | None = None
        for _ in range(3):  # the free port can be taken between probe and bind: retry
            self.port = free_port()
            opts = (
                f"-c listen_addresses=127.0.0.1 -p {self.port}"
                f" -c unix_socket_directories='{self.sock}'"
                " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            try:
                self._run([self.bin_dir / "pg_ctl", "-D", self.data, "-l", self.log,
                           "-o", opts, "-w", "-t", "60", "start"])
            except RuntimeError as exc:
                last_error = exc
                continue
            self._wait_ready()
            return self.dsn
        raise RuntimeError(f"PostgreSQL did not start: {last_error}")

    def _wait_ready(self, timeout: float = 30) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.dsn, connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL not ready:\n{self.server_log()}")
                time.sleep(0.1)

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run([self.bin_dir / "pg_ctl", "-D", self.data, "-m", "immediate",
                           "-w", "stop"], timeout=60)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


# -- DuckDB -> PostgreSQL ------------------------------------------------------------------

_SIMPLE_TYPES = {
    "VARCHAR": "text",
    "BOOLEAN": "boolean",
    "TINYINT": "smallint",
    "SMALLINT": "smallint",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "UTINYINT": "smallint",
    "USMALLINT": "integer",
    "UINTEGER": "bigint",
    "UBIGINT": "numeric(20,0)",
    "HUGEINT": "numeric(39,0)",
    "FLOAT": "real",
    "DOUBLE": "double precision",
    "DATE": "date",
    "TIME": "time",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "INTERVAL": "interval",
    "UUID": "uuid",
    "BLOB": "bytea",
    "JSON": "jsonb",
}


def postgres_type(duckdb_type: str) -> str:
    """The PostgreSQL column type for a DuckDB column type.

    >>> postgres_type("DECIMAL(18,2)"), postgres_type("VARCHAR"), postgres_type("DOUBLE")
    ('numeric(18,2)', 'text', 'double precision')
    """
    t = duckdb_type.strip().upper()
    m = re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", t)
    if m:
        return f"numeric({m.group(1)},{m.group(2)})"
    if t.startswith("ENUM("):
        return "text"
    if t in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[t]
    raise ValueError(f"no PostgreSQL mapping for DuckDB type {duckdb_type!r}")


def _duck_ident(name: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


def load_duckdb_tables_into_postgres(duck_con, pg_conn, tables: list[str],
                                     schema: str = "public", batch_rows: int = 50_000) -> None:
    """Copy DuckDB ``tables`` (names, optionally ``schema.table``) into PostgreSQL
    ``schema`` under the same (unqualified) names, dropping and recreating each target.

    Column types follow :func:`postgres_type`; rows go through ``COPY ... FROM STDIN``
    so values (decimals, dates, timestamps, NULLs, any text) round-trip exactly.
    Works with an autocommit connection or inside the caller's transaction.
    """
    from psycopg import sql

    with pg_conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        for table in tables:
            cols = duck_con.execute(f"DESCRIBE SELECT * FROM {_duck_ident(table)}").fetchall()
            names = [c[0] for c in cols]
            target = sql.Identifier(schema, table.split(".")[-1])
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
            cur.execute(sql.SQL("CREATE TABLE {} ({})").format(
                target,
                sql.SQL(", ").join(
                    sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(postgres_type(t)))
                    for n, t, *_ in cols
                ),
            ))
            col_list = sql.SQL(", ").join(sql.Identifier(n) for n in names)
            # Same connection (not .cursor()): TEMP tables are visible per connection.
            src = duck_con.execute(f"SELECT * FROM {_duck_ident(table)}")
            copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(target, col_list)
            with cur.copy(copy_sql) as copy:
                while rows := src.fetchmany(batch_rows):
                    for row in rows:
                        copy.write_row(row)
