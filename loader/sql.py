"""Quoting for the few SQL statements the loader builds itself."""

from __future__ import annotations

from datetime import datetime, timezone


def ident(name: str) -> str:
    """A backtick-quoted ClickHouse identifier."""
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def literal(value: str) -> str:
    """A single-quoted ClickHouse string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def value(v) -> str:
    """A ClickHouse literal for one field of a VALUES row: the ledger's few small rows are
    written as plain INSERT statements (bulk rows go in a binary format instead)."""
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, datetime):  # naive means UTC, as everywhere in the loader
        utc = v.astimezone(timezone.utc) if v.tzinfo is not None else v
        return literal(utc.strftime("%Y-%m-%d %H:%M:%S.%f"))
    if isinstance(v, str):
        return literal(v)
    raise TypeError(f"no SQL literal for {type(v).__name__}")


def values_insert(table: str, columns: list[str], rows: list[list]) -> str:
    """INSERT INTO table (columns) VALUES (...), ... for a few rows."""
    return (
        f"INSERT INTO {table} ({', '.join(ident(c) for c in columns)}) VALUES "
        + ", ".join("(" + ", ".join(value(v) for v in row) + ")" for row in rows)
    )
