"""Carts, leads and orders as the snippet and the store's server report them: `events`, `visitors`, `carts`,
`leads` and `orders`.

Every ingest write first records its event by the client's id: a retry of a request that was
stored already finds the id taken and changes nothing else (the handlers return False then).
"""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import TypeAdapter

from collector.addresses import normalize_email
from collector.schemas import CartIn, CartItem, EventIn, IdentifyIn, LeadIn, PurchaseIn
from collector.store import emails, outbox, variants
from collector.store.db import Database, Reader, Row, Tx, dumps
from collector.store.sites import Site

_CART_ITEMS = TypeAdapter(list[CartItem])
# What a lead's discount code is stored as when the site never gave it out: the browser chose it.
NOT_ISSUED = "not issued"


def popup_codes(site: Site) -> set[str]:
    """The codes this site's popup can show: its own and those of its experiments' variants."""
    s = site.settings
    codes = {s.popup.discount_code} if s.popup.discount_code else set()
    for exp in s.experiments:
        for v in exp.variants:
            codes |= {c for c in (v.discount_code, v.popup.discount_code if v.popup else None) if c}
    return codes


class CartStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    async def _claim_event(
        tx: Tx, site: Site, client_id: str, vid: str | None, type_: str, data: Any, now: float
    ) -> bool:
        """Records the event; False when its client id was seen before (a retry)."""
        # The count of inserted rows (0 on a conflict) rather than RETURNING: cheaper on the hot path.
        inserted = await tx.execute(
            "INSERT INTO events (site_id, client_id, visitor_id, type, data, created_at) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (site_id, client_id) DO NOTHING",
            site.id,
            client_id,
            vid,
            type_,
            dumps(data) if data is not None else None,
            now,
        )
        return inserted > 0

    @staticmethod
    async def _lock_shopper(tx: Tx, site_id: int, vid: str | None, email: str | None = None) -> None:
        """Writes about one visitor (and one address) run one after another, even on several
        PostgreSQL connections: otherwise a cart and a lead sent at once would each miss the
        other's rows, and the cart would stay without its email. Visitor first, then email."""
        if vid:
            await tx.lock(f"visitor:{site_id}:{vid}")
        if email:
            await tx.lock(f"email:{site_id}:{email}")

    @staticmethod
    async def _open_cart(tx: Tx, site_id: int, vid: str) -> Row | None:
        return await tx.fetchone(
            "SELECT * FROM carts WHERE site_id = ? AND visitor_id = ? AND status IN ('open', 'abandoned')"
            " ORDER BY id DESC LIMIT 1",
            site_id,
            vid,
        )

    @staticmethod
    async def _visitor_email(tx: Tx, site_id: int, vid: str) -> str | None:
        row = await tx.fetchone("SELECT email FROM visitors WHERE site_id = ? AND visitor_id = ?", site_id, vid)
        return row["email"] if row else None

    async def _replace_older_carts(self, tx: Tx, site_id: int, email: str, keep_cart_id: int, now: float) -> None:
        # One sequence per shopper: the newest cart carries it, older ones stop.
        older = await tx.fetchall(
            "SELECT id FROM carts WHERE site_id = ? AND email = ? AND status IN ('open', 'abandoned') AND id <> ?",
            site_id,
            email,
            keep_cart_id,
        )
        for row in older:
            await tx.execute("UPDATE carts SET status = 'replaced', closed_at = ? WHERE id = ?", now, row["id"])
            await emails.cancel_pending(tx, row["id"])

    async def _bind_email(self, tx: Tx, site: Site, vid: str, email: str, now: float) -> None:
        """Remembers who the visitor is, and puts the email on their open cart."""
        await tx.execute(
            "INSERT INTO visitors (site_id, visitor_id, email, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (site_id, visitor_id) DO UPDATE SET email = excluded.email, updated_at = excluded.updated_at",
            site.id,
            vid,
            email,
            now,
        )
        cart = await self._open_cart(tx, site.id, vid)
        if cart is not None and cart["email"] != email:
            await tx.execute("UPDATE carts SET email = ? WHERE id = ?", email, cart["id"])
            if cart["email"] is not None:
                # A different shopper on the same browser: the old address's reminders stop.
                await emails.cancel_pending(tx, cart["id"])
            await self._replace_older_carts(tx, site.id, email, cart["id"], now)

    async def ingest_cart(self, site: Site, body: CartIn) -> bool:
        now = time.time()
        items = body.items
        # Serialised by pydantic straight from the models: no dict copies, no json.dumps.
        items_json = _CART_ITEMS.dump_json(items, exclude_none=True).decode()
        value = round(sum(i.price * i.quantity for i in items), 2)
        count = sum(i.quantity for i in items)

        async def op(tx: Tx) -> bool:
            await self._lock_shopper(tx, site.id, body.vid)
            if not await self._claim_event(tx, site, body.id, body.vid, "cart", {"items": len(items)}, now):
                return False
            if items:
                # The common case, a change to the visitor's cart, in one statement (a read and an
                # update were two round trips to PostgreSQL). carts_one_open_per_visitor keeps
                # it to one row. A change brings an abandoned cart back to life; its unsent
                # reminders wait for the next abandonment (steps already sent are not repeated).
                changed = await tx.fetchone(
                    "UPDATE carts SET items = ?, currency = ?, value = ?, item_count = ?, updated_at = ?,"
                    " status = 'open', locale = COALESCE(?, locale), platform_token = COALESCE(?, platform_token)"
                    " WHERE site_id = ? AND visitor_id = ? AND status IN ('open', 'abandoned')"
                    " RETURNING id, abandoned_at",
                    items_json,
                    body.currency,
                    value,
                    count,
                    now,
                    body.locale,
                    body.platform_token,
                    site.id,
                    body.vid,
                )
                if changed is not None:
                    if changed["abandoned_at"] is not None:
                        # Abandoned once (now, or before and revived since): nothing pending may wait.
                        await emails.drop_pending(tx, changed["id"])
                    return True
            else:
                cart = await self._open_cart(tx, site.id, body.vid)
                if cart is not None:
                    await tx.execute(
                        "UPDATE carts SET status = 'emptied', closed_at = ?, updated_at = ? WHERE id = ?",
                        now,
                        now,
                        cart["id"],
                    )
                    await emails.cancel_pending(tx, cart["id"])
                return True
            email = await self._visitor_email(tx, site.id, body.vid)
            row = await tx.fetchone(
                "INSERT INTO carts (site_id, visitor_id, email, items, currency, value, item_count, status, created_at,"
                " updated_at, locale, platform_token) VALUES (?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?) RETURNING id",
                site.id,
                body.vid,
                email,
                items_json,
                body.currency,
                value,
                count,
                now,
                now,
                body.locale,
                body.platform_token,
            )
            assert row is not None
            if email:
                await self._lock_shopper(tx, site.id, None, email)
                await self._replace_older_carts(tx, site.id, email, row["id"], now)
            return True

        return await self.db.write(op)

    async def ingest_event(self, site: Site, body: EventIn) -> bool:
        now = time.time()
        data = body.model_dump(include={"reason", "step", "variants"}, exclude_none=True)

        async def op(tx: Tx) -> bool:
            if not await self._claim_event(tx, site, body.id, body.vid, body.type, data, now):
                return False
            if body.type == "shown" and body.variants:
                await variants.record_shown(tx, site.id, body.vid, body.variants, now)
            return True

        return await self.db.write(op)

    async def _add_lead(
        self,
        tx: Tx,
        site: Site,
        vid: str,
        email: str,
        source: str,
        consent: bool,
        code: str | None,
        variants_: Any,
        now: float,
    ) -> bool:
        """Stores the lead once per address; True when it is new."""
        cart = await self._open_cart(tx, site.id, vid)
        row = await tx.fetchone(
            "INSERT INTO leads (site_id, email, visitor_id, source, consent, discount_code, variants, cart_value, currency, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (site_id, email) DO NOTHING RETURNING id",
            site.id,
            email,
            vid,
            source,
            1 if consent else 0,
            code,
            dumps(variants_) if variants_ else None,
            cart["value"] if cart else None,
            cart["currency"] if cart else None,
            now,
        )
        if row is None:
            # Known address: consent given later counts, a code given later is kept.
            if consent:
                await tx.execute("UPDATE leads SET consent = 1 WHERE site_id = ? AND email = ?", site.id, email)
            if code:
                await tx.execute(
                    "UPDATE leads SET discount_code = ? WHERE site_id = ? AND email = ? AND discount_code IS NULL",
                    code,
                    site.id,
                    email,
                )
            if variants_:
                await tx.execute(
                    "UPDATE leads SET variants = ? WHERE site_id = ? AND email = ? AND variants IS NULL",
                    dumps(variants_),
                    site.id,
                    email,
                )
        if variants_ and row is not None:
            await variants.record_lead(tx, site.id, vid, email, variants_, now)
        await self._bind_email(tx, site, vid, email, now)
        return row is not None

    async def ingest_lead(self, site: Site, body: LeadIn) -> bool:
        if body.hp:
            # The honeypot is filled by bots only: answer as if stored, store nothing.
            return False
        now = time.time()
        email = normalize_email(body.email)
        # The lead names the code it was shown; a code the site never gives out is the
        # browser's invention and is kept only as "not issued" (the CSV is not a coupon list).
        code = body.discount_code
        if code is not None and code not in popup_codes(site):
            code = NOT_ISSUED

        async def op(tx: Tx) -> bool:
            await self._lock_shopper(tx, site.id, body.vid, email)
            data = {"variants": body.variants} if body.variants else None
            if not await self._claim_event(tx, site, body.id, body.vid, "lead", data, now):
                return False
            new = await self._add_lead(tx, site, body.vid, email, "popup", body.consent, code, body.variants, now)
            if new:
                await outbox.enqueue(
                    tx,
                    site,
                    "lead",
                    email,
                    {
                        "email": email,
                        "consent": body.consent,
                        "discount_code": code,
                        "variants": body.variants or {},
                        "source": "popup",
                    },
                    now,
                )
            return True

        return await self.db.write(op)

    async def ingest_identify(self, site: Site, body: IdentifyIn) -> bool:
        now = time.time()
        email = normalize_email(body.email)

        async def op(tx: Tx) -> bool:
            await self._lock_shopper(tx, site.id, body.vid, email)
            if not await self._claim_event(tx, site, body.id, body.vid, "identify", None, now):
                return False
            new = await self._add_lead(tx, site, body.vid, email, "identify", bool(body.consent), None, None, now)
            if new:
                await outbox.enqueue(
                    tx,
                    site,
                    "lead",
                    email,
                    {
                        "email": email,
                        "consent": bool(body.consent),
                        "discount_code": None,
                        "variants": {},
                        "source": "identify",
                    },
                    now,
                )
            return True

        return await self.db.write(op)

    async def ingest_purchase(self, site: Site, body: PurchaseIn) -> bool:
        """A purchase reported by the browser: it stops this browser's cart at once and counts,
        unverified, until the store's server reports the same order id (record_order)."""
        now = time.time()

        async def op(tx: Tx) -> bool:
            await self._lock_shopper(tx, site.id, body.vid)
            if not await self._claim_event(tx, site, body.id, body.vid, "purchase", {"order_id": body.order_id}, now):
                return False
            cart = await self._open_cart(tx, site.id, body.vid)
            email = (cart["email"] if cart else None) or await self._visitor_email(tx, site.id, body.vid)
            existing = await tx.fetchone(
                "SELECT * FROM orders WHERE site_id = ? AND order_id = ?", site.id, body.order_id
            )
            if existing is None:
                await self._record_order(
                    tx,
                    site,
                    body.order_id,
                    body.value,
                    body.currency,
                    email,
                    cart,
                    now,
                    verified=False,
                    source="browser",
                )
            elif cart is not None:
                # The order is known already (the server's report, or a retry from another tab):
                # its row is not the browser's to change, but this browser's cart is done.
                await self._close_carts(tx, [cart["id"]], existing["order_id"], now)
            return True

        return await self.db.write(op)

    async def cart_for_platform_order(
        self, site: Site, visitor_id: str | None, platform_token: str | None
    ) -> int | None:
        """The cart a platform's order names: by the visitor id the snippet wrote into the
        platform's cart, else by the platform's cart token, else None (record_order then
        matches by email). The newest such cart, whatever its status: a browser's own
        purchase report may have closed it already."""
        if visitor_id:
            row = await self.db.fetchone(
                "SELECT id FROM carts WHERE site_id = ? AND visitor_id = ? ORDER BY id DESC LIMIT 1",
                site.id,
                visitor_id,
            )
            if row is not None:
                return int(row["id"])
        if platform_token:
            row = await self.db.fetchone(
                "SELECT id FROM carts WHERE site_id = ? AND platform_token = ? ORDER BY id DESC LIMIT 1",
                site.id,
                platform_token,
            )
            if row is not None:
                return int(row["id"])
        return None

    async def record_order(
        self,
        site: Site,
        order_id: str,
        value: float,
        currency: str,
        email: str | None,
        cart_id: int | None,
        source: str = "api",
    ) -> Row:
        """A purchase reported by the store's server (POST /api/v1/orders, a platform's order
        webhook); idempotent by (site, order_id). A browser's report of the same order id never
        blocks it: the server's value, currency and address replace the browser's, and the row
        becomes verified (what `verified_revenue` counts)."""
        now = time.time()

        async def op(tx: Tx) -> Row:
            cart = None
            if cart_id is not None:
                cart = await tx.fetchone("SELECT * FROM carts WHERE id = ? AND site_id = ?", cart_id, site.id)
            norm = normalize_email(email) if email else None
            existing = await tx.fetchone("SELECT * FROM orders WHERE site_id = ? AND order_id = ?", site.id, order_id)
            if existing is not None and existing["verified"]:
                return existing
            if cart is None and existing is not None and existing["cart_id"] is not None:
                cart = await tx.fetchone(
                    "SELECT * FROM carts WHERE id = ? AND site_id = ?", existing["cart_id"], site.id
                )
            if cart is None and norm:
                cart = await tx.fetchone(
                    "SELECT * FROM carts WHERE site_id = ? AND email = ? AND status IN ('open', 'abandoned')"
                    " ORDER BY id DESC LIMIT 1",
                    site.id,
                    norm,
                )
            addr = norm or (cart["email"] if cart else None) or (existing["email"] if existing else None)
            if existing is not None:
                # Only a server report reaches here for a row the browser wrote: the server wins.
                await tx.execute("DELETE FROM orders WHERE id = ?", existing["id"])
            return await self._record_order(
                tx, site, order_id, value, currency, addr, cart, now, verified=True, source=source
            )

        return await self.db.write(op)

    @staticmethod
    async def _close_carts(tx: Tx, cart_ids: list[int], order_id: str, now: float) -> None:
        for cid in cart_ids:
            await tx.execute(
                "UPDATE carts SET status = 'purchased', closed_at = ?, order_id = ?"
                " WHERE id = ? AND status IN ('open', 'abandoned')",
                now,
                order_id,
                cid,
            )
            await emails.cancel_pending(tx, cid)

    async def _record_order(
        self,
        tx: Tx,
        site: Site,
        order_id: str,
        value: float,
        currency: str,
        email: str | None,
        cart: Row | None,
        now: float,
        *,
        verified: bool,
        source: str,
    ) -> Row:
        existing = await tx.fetchone("SELECT * FROM orders WHERE site_id = ? AND order_id = ?", site.id, order_id)
        if existing is not None:
            return existing
        credited = None
        if email:
            # Attribution is by shopper, not by browser: a reminder clicked (or read) on the phone
            # counts for the order placed on the laptop, inside the window.
            window = site.settings.recovery.attribution_days * 86400
            credited = await emails.credited_within(tx, site.id, email, now - window)
        row = await tx.fetchone(
            "INSERT INTO orders (site_id, order_id, value, currency, email, cart_id, recovered, email_id, verified,"
            " source, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (site_id, order_id) DO NOTHING RETURNING *",
            site.id,
            order_id,
            round(value, 2),
            currency,
            email,
            cart["id"] if cart else None,
            1 if credited else 0,
            credited["id"] if credited else None,
            1 if verified else 0,
            source,
            now,
        )
        if row is None:  # a concurrent report of the same order won
            again = await tx.fetchone("SELECT * FROM orders WHERE site_id = ? AND order_id = ?", site.id, order_id)
            assert again is not None
            return again
        closing = [cart["id"]] if cart else []
        if email and verified:
            # The store's own report ends the shopper's sequence, whichever browser the cart was
            # on. A browser's report ends only its own cart: anyone who knows an address could
            # send one from a console, and it must not stop another browser's reminders.
            others = await tx.fetchall(
                "SELECT id FROM carts WHERE site_id = ? AND email = ? AND status IN ('open', 'abandoned')",
                site.id,
                email,
            )
            closing += [r["id"] for r in others if r["id"] not in closing]
        await self._close_carts(tx, closing, order_id, now)
        if credited:
            await outbox.enqueue(
                tx,
                site,
                "recovered",
                order_id,
                {"order_id": order_id, "value": round(value, 2), "currency": currency, "email": email},
                now,
            )
        return row

    async def cart_for_restore(self, site: Site, cart_id: int, token_id: str) -> dict[str, Any] | None:
        """The saved cart for a restore token, only on the site it belongs to, and only once per
        token (None: unknown cart, or the token was used already).

        The browser that opens the link is not bound to the cart's address: the link may have
        been passed on (or planted by someone who wants the opener's next carts mailed to
        them), and the address is the first shopper's, not the opener's. The opener's own cart
        gets an address when they give one (a lead, an identify)."""
        cart = await self.db.fetchone("SELECT * FROM carts WHERE id = ? AND site_id = ?", cart_id, site.id)
        if cart is None:
            return None
        used = await self.db.write(
            lambda tx: tx.execute(
                "INSERT INTO restore_uses (nonce, site_id, used_at) VALUES (?, ?, ?) ON CONFLICT (nonce) DO NOTHING",
                token_id,
                site.id,
                time.time(),
            )
        )
        if not used:
            return None
        out: dict[str, Any] = {"items": json.loads(cart["items"]), "currency": cart["currency"]}
        code = await emails.latest_sent_code(self.db, cart_id)
        if code:
            out["discount_code"] = code
        return out


# -- abandonment (decided by collector/recovery/abandon.py) ----------------------------------------------
async def has_consent(q: Reader, site_id: int, email: str) -> bool:
    """Whether the address gave consent on this site (the popup's box, or identify's consent)."""
    row = await q.fetchone("SELECT consent FROM leads WHERE site_id = ? AND email = ?", site_id, email)
    return bool(row and row["consent"])


async def quiet_carts(tx: Tx, site_id: int, cutoff: float, limit: int, skip_locked: str) -> list[Row]:
    """Open carts with an address and items, untouched since `cutoff`, oldest first."""
    # Ordered as the carts_site_open_due index is (site_id, updated_at), so no sort.
    return await tx.fetchall(
        "SELECT id, email, items, currency, value, item_count FROM carts"
        " WHERE site_id = ? AND status = 'open' AND email IS NOT NULL AND item_count > 0 AND updated_at <= ?"
        " ORDER BY updated_at, id LIMIT ?" + skip_locked,
        site_id,
        cutoff,
        limit,
    )


async def abandon(tx: Tx, cart_id: int, now: float, cutoff: float, holdout: int | None = None) -> bool:
    """Marks the cart abandoned (in its holdout group) unless it changed since the read; True if it did."""
    changed = await tx.execute(
        "UPDATE carts SET status = 'abandoned', abandoned_at = ?, holdout = ?"
        " WHERE id = ? AND status = 'open' AND updated_at <= ?",
        now,
        holdout,
        cart_id,
        cutoff,
    )
    return changed > 0


async def get(q: Reader, cart_id: int) -> Row | None:
    return await q.fetchone("SELECT * FROM carts WHERE id = ?", cart_id)


# -- retention (decided by collector/retention.py) ------------------------------------------------------
async def delete_old_events(tx: Tx, site_id: int, cutoff: float, limit: int) -> int:
    """Deletes up to `limit` of the site's events older than `cutoff`; returns how many."""
    return await tx.execute(
        "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE site_id = ? AND created_at < ? ORDER BY id LIMIT ?)",
        site_id,
        cutoff,
        limit,
    )


async def old_closed_carts(tx: Tx, site_id: int, cutoff: float, limit: int) -> list[int]:
    """Up to `limit` of the site's carts closed (purchased, emptied, replaced) before `cutoff`."""
    found = await tx.fetchall(
        "SELECT id FROM carts WHERE site_id = ? AND closed_at IS NOT NULL AND closed_at < ? ORDER BY closed_at LIMIT ?",
        site_id,
        cutoff,
        limit,
    )
    return [int(r["id"]) for r in found]


async def delete_carts(tx: Tx, cart_ids: list[int]) -> int:
    """Deletes the carts (their emails first: collector/store/emails.forget_carts). Orders stay."""
    if not cart_ids:
        return 0
    marks = ", ".join("?" * len(cart_ids))
    return await tx.execute(f"DELETE FROM carts WHERE id IN ({marks})", *cart_ids)


async def delete_old_restore_uses(tx: Tx, cutoff: float, limit: int) -> int:
    """Forgets used restore tokens that have expired anyway (older than their lifetime)."""
    return await tx.execute(
        "DELETE FROM restore_uses WHERE nonce IN (SELECT nonce FROM restore_uses WHERE used_at < ? LIMIT ?)",
        cutoff,
        limit,
    )


# -- the install page's "last seen" (collector/dashboard/install.py) ---------------------------------
async def last_seen(q: Reader, site_id: int) -> dict[str, float | None]:
    """When each part of an installation last reached the collector: any event of the tag, a cart
    read from the storefront platform (it carries the platform's cart token), an address typed into
    the store's own fields (identify) or given in the popup (lead), and an order by each source.
    Each is one index look-up (events_site_time, events_site_type_time, carts_site_platform_seen,
    orders_site_source), whatever the site holds."""

    async def latest(sql: str, *args: object) -> float | None:
        row = await q.fetchone(sql, site_id, *args)
        return float(row["t"]) if row and row["t"] is not None else None

    out: dict[str, float | None] = {
        "tag": await latest("SELECT MAX(created_at) AS t FROM events WHERE site_id = ?"),
        "platform_cart": await latest(
            "SELECT MAX(updated_at) AS t FROM carts WHERE site_id = ? AND platform_token IS NOT NULL"
        ),
    }
    for kind in ("identify", "lead"):
        out[kind] = await latest("SELECT MAX(created_at) AS t FROM events WHERE site_id = ? AND type = ?", kind)
    for source in ("shopify", "woocommerce", "api", "browser"):
        out[f"order_{source}"] = await latest(
            "SELECT MAX(created_at) AS t FROM orders WHERE site_id = ? AND source = ?", source
        )
    return out
