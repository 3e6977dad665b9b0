"""Versioned migrations: numbered .sql files, written once for both dialects."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from collector.store import rollups, variants

DIALECT_TYPES = {
    "sqlite": {"{ID}": "INTEGER PRIMARY KEY AUTOINCREMENT", "{REAL}": "REAL"},
    "postgresql": {"{ID}": "BIGSERIAL PRIMARY KEY", "{REAL}": "DOUBLE PRECISION"},
}


# A migration whose data cannot be moved in SQL written once for both dialects (JSON
# parsing, say, or statements each engine writes its own way, like triggers) runs a Python step
# right after its statements, in the same transaction; it is given the transaction and the dialect.
PYTHON_STEPS: dict[int, Callable[[Any, str], Awaitable[None]]] = {
    7: lambda tx, dialect: variants.backfill(tx),
    12: rollups.install,
}


def migrations(dialect: str) -> list[tuple[int, list[str]]]:
    """The migrations in order, each as its version and its statements."""
    out = []
    folder = resources.files("collector.store") / "migrations"
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        m = re.match(r"(\d+)_.*\.sql$", entry.name)
        if not m:
            continue
        sql = entry.read_text()
        for token, value in DIALECT_TYPES[dialect].items():
            sql = sql.replace(token, value)
        sql = "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
        statements = [s.strip() for s in sql.split(";") if s.strip()]
        out.append((int(m.group(1)), statements))
    return out


async def apply_pending(tx: Any, dialect: str) -> list[int]:
    """Applies, inside the caller's transaction, the migrations not yet recorded; returns their versions."""
    real = DIALECT_TYPES[dialect]["{REAL}"]
    await tx.execute(
        f"CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at {real} NOT NULL)"
    )
    done = {r["version"] for r in await tx.fetchall("SELECT version FROM schema_migrations")}
    applied = []
    for version, statements in migrations(dialect):
        if version in done:
            continue
        for stmt in statements:
            await tx.execute(stmt)
        step = PYTHON_STEPS.get(version)
        if step is not None:
            await step(tx, dialect)
        await tx.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", version, time.time())
        applied.append(version)
    return applied
