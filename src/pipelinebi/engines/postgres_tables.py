"""What a build and a store both do to a table of a PostgreSQL schema: its column types from
DuckDB's, ``COPY`` of Arrow batches into it, and the privileges others held on it, read before it
is dropped and given again after (:mod:`.postgres_build` swaps a whole schema in,
:mod:`.postgres_write` one table; neither imports the other for these).

Names go in as ``psycopg.sql`` identifiers; values only travel as CSV through ``COPY``.
"""

from __future__ import annotations

import io

from ..errors import IngestError, Problem

#: DuckDB column types and the PostgreSQL type each is stored as
_SIMPLE_TYPES = {
    "VARCHAR": "text", "BOOLEAN": "boolean", "TINYINT": "smallint", "SMALLINT": "smallint",
    "INTEGER": "integer", "BIGINT": "bigint", "FLOAT": "real", "DOUBLE": "double precision",
    "DATE": "date", "TIMESTAMP": "timestamp", "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "HUGEINT": "numeric(39,0)", "UBIGINT": "numeric(20,0)", "UINTEGER": "bigint",
}


def postgres_type(duckdb_type: str) -> str:
    """The PostgreSQL column type for a canonical column's DuckDB type.

    >>> postgres_type("DECIMAL(18,2)"), postgres_type("VARCHAR"), postgres_type("TIMESTAMP")
    ('numeric(18,2)', 'text', 'timestamp')
    """
    t = duckdb_type.strip().upper()
    if t.startswith("DECIMAL("):
        return "numeric" + t[len("DECIMAL"):].replace(" ", "")
    if t.startswith("ENUM("):
        return "text"
    if t not in _SIMPLE_TYPES:
        raise IngestError(Problem(f"no PostgreSQL type for the DuckDB type {duckdb_type}"))
    return _SIMPLE_TYPES[t]


def copy_into(conn, target, types: dict[str, str], batches) -> int:
    """Create table ``target`` (a ``psycopg.sql`` identifier) with ``types`` (column -> DuckDB type)
    and ``COPY`` every Arrow batch of ``batches`` into it as CSV written by Arrow (NULL and the
    empty string stay apart); the row count. Ingest's tables and the forecast's stored results
    (:mod:`.postgres_write`) both load this way."""
    import pyarrow.csv as pacsv
    from psycopg import sql

    conn.execute(sql.SQL("CREATE TABLE {} ({})").format(target, sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(postgres_type(t))) for c, t in types.items())))
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in types)
    options = pacsv.WriteOptions(include_header=False)
    n = 0
    with conn.cursor() as cur, cur.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(target, columns)) as copy:
        for batch in batches:
            buf = io.BytesIO()
            pacsv.write_csv(batch, buf, write_options=options)
            copy.write(buf.getvalue())
            n += batch.num_rows
    return n


_PRIVILEGES = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "USAGE",
                         "CREATE", "MAINTAIN"})


def grants_of(conn, schema: str) -> list[tuple[str, str | None, int, str, bool, str | None]]:
    """What others were granted in ``schema``, as ``(kind, table, grantee oid, privilege, grantable, role)``:

    - ``schema``: on the schema itself (``GRANT USAGE ON SCHEMA crm TO bi_reader``);
    - ``table``: on one table, by name (the owner's own left out);
    - ``default``: the schema's default privileges for tables (``ALTER DEFAULT PRIVILEGES FOR ROLE
      role IN SCHEMA crm GRANT SELECT ON TABLES TO bi_reader``; ``role`` is None when this session
      may not set that role's defaults, and then only the tables get the grant)."""
    out: list = [("schema", None, g, p, o, None) for g, p, o in conn.execute(
        "SELECT a.grantee, a.privilege_type, a.is_grantable FROM pg_namespace n, aclexplode(n.nspacl) a "
        "WHERE n.nspname = %s AND a.grantee <> n.nspowner", [schema]).fetchall()]
    out += [("table", t, g, p, o, None) for t, g, p, o in conn.execute(
        "SELECT c.relname, a.grantee, a.privilege_type, a.is_grantable "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'v', 'm', 'p') AND a.grantee <> c.relowner", [schema]).fetchall()]
    out += [("default", None, g, p, o, r if mine else None) for r, mine, g, p, o in conn.execute(
        "SELECT r.rolname, pg_has_role(current_user, d.defaclrole, 'MEMBER'), a.grantee, a.privilege_type, "
        "a.is_grantable FROM pg_default_acl d JOIN pg_namespace n ON n.oid = d.defaclnamespace "
        "JOIN pg_roles r ON r.oid = d.defaclrole, aclexplode(d.defaclacl) a "
        "WHERE n.nspname = %s AND d.defaclobjtype = 'r'", [schema]).fetchall()]
    return out


def grant(conn, grants: list, schema: str) -> None:
    """The grants :func:`grants_of` read, given again in ``schema`` (a table it lacks is
    skipped). A default privilege is also granted on every table already there: they were
    created before it existed. Names go in as identifiers; privileges are checked against
    :data:`_PRIVILEGES`."""
    from psycopg import sql

    target = sql.Identifier(schema)
    tables = {r[0] for r in conn.execute("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                                         "WHERE n.nspname = %s", [schema]).fetchall()}
    for kind, table, grantee_oid, privilege, grantable, role in grants:
        if privilege not in _PRIVILEGES or (kind == "table" and table not in tables):
            continue
        grantee = sql.SQL("PUBLIC") if grantee_oid == 0 else sql.Identifier(
            conn.execute("SELECT rolname FROM pg_roles WHERE oid = %s", [grantee_oid]).fetchone()[0])
        option = sql.SQL(" WITH GRANT OPTION" if grantable else "")
        if kind == "schema":
            on = sql.SQL("SCHEMA {}").format(target)
        elif kind == "table":
            on = sql.SQL("TABLE {}.{}").format(target, sql.Identifier(table))
        else:
            if role is not None:
                conn.execute(sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT {} ON TABLES TO {}{}").format(
                    sql.Identifier(role), target, sql.SQL(privilege), grantee, option))
            on = sql.SQL("ALL TABLES IN SCHEMA {}").format(target)
        conn.execute(sql.SQL("GRANT {} ON {} TO {}{}").format(sql.SQL(privilege), on, grantee, option))
