"""Webhook delivery: the outbox rows that Store.enqueue_webhooks wrote, POSTed with retries.

Each event (`lead`, `abandoned`, `recovered`) for each webhook URL in the site's settings is
one webhook_outbox row, unique by (site, url, event, ref), so one event is queued once.
`deliver_due(state)` (called by the sweep, and so by `cartback send-due`) claims the rows
that are due in one write transaction (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite's
single writer makes the claim exclusive), POSTs them and records the outcome:

- 2xx: `delivered`, never sent again;
- anything else (a status, a timeout, a refused connection): `pending` again, due after an
  exponential backoff (RETRY_BASE_SECONDS * 2**(attempts-1), at most RETRY_MAX_SECONDS),
  until MAX_ATTEMPTS attempts, then `failed`;
- a row claimed more than CLAIM_TIMEOUT seconds ago (its sweeper died mid-way) is claimed
  again; its outcome is recorded only by the latest claim.

The request, as a receiver sees it:

    POST <url>
    Content-Type: application/json
    User-Agent: Cartback-Webhooks/1
    X-Cartback-Event: lead | abandoned | recovered
    X-Cartback-Delivery: <outbox id, the same on every retry of one event>
    X-Cartback-Timestamp: <unix seconds of this attempt>
    X-Cartback-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed with the site's webhook secret>

    {"event": "lead", "site": "pk_...", "created_at": 1760000000.0, "data": {...}}

Verify the signature over the raw bytes of the body before parsing it, with a constant-time
comparison; deduplicate on X-Cartback-Delivery (a 2xx that gets lost in the network makes the
event arrive again). The secret is shown on the site's page in the dashboard.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from typing import Any

import httpx

from collector.store import Database, Row, Tx

log = logging.getLogger("cartback.webhooks")

MAX_ATTEMPTS = 10
RETRY_BASE_SECONDS = 60.0
RETRY_MAX_SECONDS = 6 * 3600.0
CLAIM_TIMEOUT = 300.0
TIMEOUT_SECONDS = 10.0
BATCH = 50
CONCURRENCY = 8
USER_AGENT = "Cartback-Webhooks/1"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """For receivers written in Python: does the X-Cartback-Signature header match the body?"""
    return hmac.compare_digest(sign(secret, body), header or "")


def backoff(attempts: int) -> float:
    return min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1))


async def claim_due(db: Database, now: float, limit: int = BATCH) -> list[Row]:
    """Marks up to `limit` due rows as claimed by this pass and returns them."""
    stale = now - CLAIM_TIMEOUT

    async def op(tx: Tx) -> list[Row]:
        rows = await tx.fetchall(
            "SELECT id FROM webhook_outbox WHERE (status = 'pending' AND next_attempt_at <= ?)"
            " OR (status = 'claimed' AND claimed_at < ?) ORDER BY next_attempt_at, id LIMIT ?" + db.skip_locked,
            now,
            stale,
            limit,
        )
        claimed = []
        for r in rows:
            row = await tx.fetchone(
                "UPDATE webhook_outbox SET status = 'claimed', claimed_at = ?, attempts = attempts + 1"
                " WHERE id = ? AND (status = 'pending' OR (status = 'claimed' AND claimed_at < ?)) RETURNING *",
                now,
                r["id"],
                stale,
            )
            if row is not None:
                claimed.append(row)
        return claimed

    return await db.write(op)


async def _finish(db: Database, row: Row, ok: bool, error: str | None, now: float) -> None:
    if ok:
        sql, args = "status = 'delivered', delivered_at = ?, last_error = NULL", [now]
    elif row["attempts"] >= MAX_ATTEMPTS:
        sql, args = "status = 'failed', last_error = ?", [error]
    else:
        sql, args = "status = 'pending', next_attempt_at = ?, last_error = ?", [now + backoff(row["attempts"]), error]
    # Only the latest claim records an outcome (claimed_at is this claim's token).
    await db.write(
        lambda tx: tx.execute(
            f"UPDATE webhook_outbox SET {sql} WHERE id = ? AND status = 'claimed' AND claimed_at = ?",
            *args,
            row["id"],
            row["claimed_at"],
        )
    )


async def _post(client: httpx.AsyncClient, row: Row, secret: str) -> tuple[bool, str | None]:
    body = row["body"].encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Cartback-Event": row["event"],
        "X-Cartback-Delivery": str(row["id"]),
        "X-Cartback-Timestamp": str(int(time.time())),
        "X-Cartback-Signature": sign(secret, body),
    }
    try:
        response = await client.post(row["url"], content=body, headers=headers)
    except httpx.HTTPError as exc:
        return False, f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__
    if 200 <= response.status_code < 300:
        return True, None
    return False, f"HTTP {response.status_code}"


async def _site_hooks(db: Database, site_ids: set[int]) -> dict[int, tuple[str, set[str]]]:
    """Each site's secret and the webhook URLs its settings still list."""
    import json

    out: dict[int, tuple[str, set[str]]] = {}
    for site_id in site_ids:
        site = await db.fetchone("SELECT webhook_secret, settings FROM sites WHERE id = ?", site_id)
        if site is None:
            continue
        try:
            urls = {h.get("url") for h in json.loads(site["settings"]).get("webhooks", [])}
        except (ValueError, AttributeError):
            urls = set()
        out[site_id] = (site["webhook_secret"], urls)
    return out


async def deliver_due(state: Any, now: float | None = None, *, client: httpx.AsyncClient | None = None) -> int:
    """One pass: delivers every due webhook; returns how many were acknowledged (2xx)."""
    db: Database = state.store.db
    delivered = 0
    own_client = client is None
    if client is None:
        client = httpx.AsyncClient(timeout=TIMEOUT_SECONDS, follow_redirects=False, trust_env=False)
    try:
        while True:
            at = time.time() if now is None else now
            rows = await claim_due(db, at)
            if not rows:
                break
            hooks = await _site_hooks(db, {r["site_id"] for r in rows})
            gate = asyncio.Semaphore(CONCURRENCY)

            async def one(row: Row) -> bool:
                secret, urls = hooks.get(row["site_id"], ("", set()))
                if row["url"] not in urls:
                    # The owner removed the webhook: nothing more goes to that URL.
                    await db.write(
                        lambda tx: tx.execute(
                            "UPDATE webhook_outbox SET status = 'failed', last_error = ? WHERE id = ? AND claimed_at = ?",
                            "the webhook is no longer in the site's settings",
                            row["id"],
                            row["claimed_at"],
                        )
                    )
                    return False
                async with gate:
                    ok, error = await _post(client, row, secret)
                if not ok:
                    log.warning("webhook %s to %s failed (attempt %s): %s", row["id"], row["url"], row["attempts"], error)
                await _finish(db, row, ok, error, time.time() if now is None else now)
                return ok

            results = await asyncio.gather(*(one(r) for r in rows))
            delivered += sum(results)
            if len(rows) < BATCH:
                break
    finally:
        if own_client:
            await client.aclose()
    return delivered


async def outbox_rows(db: Database, site_id: int, limit: int = 50) -> list[Row]:
    """The latest deliveries of a site, for the dashboard."""
    return await db.fetchall(
        "SELECT id, url, event, ref, status, attempts, next_attempt_at, delivered_at, last_error, created_at"
        " FROM webhook_outbox WHERE site_id = ? ORDER BY id DESC LIMIT ?",
        site_id,
        limit,
    )
