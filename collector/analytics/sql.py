"""SQL fragments that differ between the two engines: a JSON field of a text column, a time bucket."""

from __future__ import annotations

from collector.store.db import Database


def json_text(db: Database, column: str, key: str) -> str:
    """The text value of `key` in the JSON object stored in `column` (NULL when absent)."""
    if not key.isidentifier():  # interpolated into SQL: only fixed identifiers, never input
        raise ValueError(f"not a JSON key this helper takes: {key!r}")
    if db.dialect == "postgresql":
        return f"(CAST({column} AS jsonb) ->> '{key}')"
    return f"json_extract({column}, '$.{key}')"


def bucket(db: Database, column: str) -> str:
    """The 0-based index of `column`'s bucket for the arguments (start, width): floor((column - ?) / ?)."""
    if db.dialect == "postgresql":
        return f"CAST(FLOOR(({column} - ?) / ?) AS BIGINT)"
    # Rows before the start never reach here (the time window), so truncation is the floor.
    return f"CAST(({column} - ?) / ? AS INTEGER)"
