"""Turning raw values into canonical types, as DuckDB SQL expressions.

Every cast is a ``TRY_CAST`` so a bad value becomes NULL instead of failing the whole
load; a check then reports each value that was present but did not survive the cast.
Text is trimmed and an empty string counts as missing.  Timestamps with a UTC offset
(``…+02:00``, ``…Z``) are converted to UTC (the connection runs with ``TimeZone='UTC'``);
without an offset they are taken as written.

>>> typed_expr("c1", "VARCHAR", "DECIMAL(18,2)")
"TRY_CAST(NULLIF(trim(c1), '') AS DECIMAL(18,2))"
>>> typed_expr("c1", "DATE", "DATE")
'c1'
>>> expected("BOOLEAN")
'true/false, 1/0 or yes/no'
"""

from __future__ import annotations

_TEXT = ("VARCHAR", "TEXT", "STRING")
# An explicit UTC offset at the end: +02:00, -0500, +01.  ('Z' DuckDB handles itself.)
_OFFSET = r"[+-]\d\d(:?\d\d)?$"


def _base(type_: str) -> str:
    t = type_.upper()
    return {"INT": "INTEGER", "TEXT": "VARCHAR", "STRING": "VARCHAR"}.get(t, t)


def is_text(type_: str) -> bool:
    return _base(type_) in _TEXT


def typed_expr(col: str, source_type: str, target: str) -> str:
    """SQL turning raw column ``col`` (of ``source_type``) into ``target``, NULL when impossible.

    ``col`` is one of our own column ids (``c0``…), never a user-supplied name.
    """
    tgt = _base(target).replace(" ", "")
    if not is_text(source_type):
        return col if _base(source_type).replace(" ", "") == tgt else f"TRY_CAST({col} AS {tgt})"
    v = f"NULLIF(trim({col}), '')"
    if tgt == "VARCHAR":
        return v
    if tgt == "TIMESTAMP":
        return (f"CASE WHEN regexp_matches({v}, '{_OFFSET}') "
                f"THEN TRY_CAST(TRY_CAST({v} AS TIMESTAMPTZ) AS TIMESTAMP) "
                f"ELSE TRY_CAST({v} AS TIMESTAMP) END")
    return f"TRY_CAST({v} AS {tgt})"


def present_expr(col: str, source_type: str) -> str:
    """SQL: the raw value is there (not NULL, not blank)."""
    if is_text(source_type):
        return f"NULLIF(trim({col}), '') IS NOT NULL"
    return f"{col} IS NOT NULL"


def expected(target: str) -> str:
    """What a value of ``target`` type looks like, for messages."""
    t = _base(target)
    if t.startswith("DECIMAL"):
        return "a number like 1234.50"
    return {
        "INTEGER": "a whole number",
        "BIGINT": "a whole number",
        "BOOLEAN": "true/false, 1/0 or yes/no",
        "DATE": "a date like 2024-01-31",
        "TIMESTAMP": "a timestamp like 2024-01-31 13:45:00 or 2024-01-31T13:45:00Z",
        "VARCHAR": "text",
    }.get(t, t)
