"""The Store: every domain operation on carts, leads, orders, sites and users, in portable SQL."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from pydantic import TypeAdapter

from collector.schemas import CLIENT_ID_RE, CartIn, CartItem, EventIn, IdentifyIn, LeadIn, PurchaseIn, SiteSettings
from collector.security import hash_password, hash_token, new_api_token, new_site_key, new_webhook_secret
from collector.store.db import Database, Row, Tx

# Site settings are read on every ingest request; several collector processes may
# share one database, so a change made by another process shows within this time.
SITE_CACHE_SECONDS = 5.0

OPEN_STATES = ("open", "abandoned")
_CART_ITEMS = TypeAdapter(list[CartItem])


def normalize_origin(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


def normalize_email(email: str) -> str:
    return email.strip().lower()


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Site:
    """A site row with its settings parsed once."""

    __slots__ = ("id", "key", "name", "origins", "settings", "webhook_secret", "raw_settings", "created_at")

    def __init__(self, row: Row) -> None:
        self.id: int = row["id"]
        self.key: str = row["key"]
        self.name: str = row["name"]
        self.origins: list[str] = json.loads(row["origins"])
        self.raw_settings: dict[str, Any] = json.loads(row["settings"])
        self.settings = SiteSettings.model_validate(self.raw_settings)
        self.webhook_secret: str = row["webhook_secret"]
        self.created_at: float = row["created_at"]

    def allows_origin(self, origin: str | None) -> bool:
        return origin is not None and normalize_origin(origin) in self.origins


class Store:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._site_cache: dict[str, tuple[float, Site | None]] = {}

    async def connect(self) -> None:
        await self.db.connect()

    async def close(self) -> None:
        await self.db.close()

    # -- sites -------------------------------------------------------------------
    async def create_site(self, name: str, origins: list[str], settings: SiteSettings | None = None) -> Site:
        settings = settings or SiteSettings()
        now = time.time()
        key = new_site_key()
        row = await self.db.write(
            lambda tx: tx.fetchone(
                "INSERT INTO sites (key, name, origins, settings, webhook_secret, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *",
                key,
                name,
                dumps(sorted({normalize_origin(o) for o in origins})),
                dumps(settings.dump()),
                new_webhook_secret(),
                now,
                now,
            )
        )
        assert row is not None
        return Site(row)

    async def update_site(
        self, key: str, settings: SiteSettings | None = None, origins: list[str] | None = None, name: str | None = None
    ) -> Site | None:
        sets, args = ["updated_at = ?"], [time.time()]
        if settings is not None:
            sets.append("settings = ?")
            args.append(dumps(settings.dump()))
        if origins is not None:
            sets.append("origins = ?")
            args.append(dumps(sorted({normalize_origin(o) for o in origins})))
        if name is not None:
            sets.append("name = ?")
            args.append(name)
        row = await self.db.write(
            lambda tx: tx.fetchone(f"UPDATE sites SET {', '.join(sets)} WHERE key = ? RETURNING *", *args, key)
        )
        self._site_cache.pop(key, None)
        return Site(row) if row else None

    async def get_site(self, key: str, fresh: bool = False) -> Site | None:
        now = time.monotonic()
        hit = self._site_cache.get(key)
        if hit is not None and not fresh and now - hit[0] < SITE_CACHE_SECONDS:
            return hit[1]
        row = await self.db.fetchone("SELECT * FROM sites WHERE key = ?", key)
        site = Site(row) if row else None
        if len(self._site_cache) > 10_000:  # unknown keys must not grow it without bound
            self._site_cache.clear()
        self._site_cache[key] = (now, site)
        return site

    async def get_site_by_id(self, site_id: int) -> Site | None:
        row = await self.db.fetchone("SELECT * FROM sites WHERE id = ?", site_id)
        return Site(row) if row else None

    async def list_sites(self) -> list[Site]:
        return [Site(r) for r in await self.db.fetchall("SELECT * FROM sites ORDER BY id")]

    # -- users and tokens ----------------------------------------------------------
    async def create_user(self, email: str, password: str) -> bool:
        """False when the email already has a login."""
        pw = hash_password(password)
        row = await self.db.write(
            lambda tx: tx.fetchone(
                "INSERT INTO users (email, password_hash, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT (email) DO NOTHING RETURNING id",
                normalize_email(email),
                pw,
                time.time(),
            )
        )
        return row is not None

    async def get_user(self, email: str) -> Row | None:
        return await self.db.fetchone("SELECT * FROM users WHERE email = ?", normalize_email(email))

    async def count_users(self) -> int:
        row = await self.db.fetchone("SELECT COUNT(*) AS n FROM users")
        return int(row["n"]) if row else 0

    async def create_token(self, name: str) -> str:
        token = new_api_token()
        await self.db.write(
            lambda tx: tx.execute(
                "INSERT INTO tokens (name, token_hash, created_at) VALUES (?, ?, ?)", name, hash_token(token), time.time()
            )
        )
        return token

    async def check_token(self, token: str) -> bool:
        row = await self.db.fetchone("SELECT id FROM tokens WHERE token_hash = ?", hash_token(token))
        return row is not None

    # -- ingest ----------------------------------------------------------------------
    @staticmethod
    async def _claim_event(tx: Tx, site: Site, client_id: str, vid: str | None, type_: str, data: Any, now: float) -> bool:
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

    @staticmethod
    async def cancel_pending_emails(tx: Tx, cart_id: int) -> None:
        await tx.execute("UPDATE emails SET status = 'cancelled' WHERE cart_id = ? AND status = 'pending'", cart_id)

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
            await self.cancel_pending_emails(tx, row["id"])

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
                await self.cancel_pending_emails(tx, cart["id"])
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
            cart = await self._open_cart(tx, site.id, body.vid)
            if not items:
                if cart is not None:
                    await tx.execute("UPDATE carts SET status = 'emptied', closed_at = ?, updated_at = ? WHERE id = ?", now, now, cart["id"])
                    await self.cancel_pending_emails(tx, cart["id"])
                return True
            if cart is not None:
                # A change brings an abandoned cart back to life; its unsent reminders
                # wait for the next abandonment (steps already sent are not repeated).
                await tx.execute(
                    "UPDATE carts SET items = ?, currency = ?, value = ?, item_count = ?, updated_at = ?,"
                    " status = 'open' WHERE id = ?",
                    items_json,
                    body.currency,
                    value,
                    count,
                    now,
                    cart["id"],
                )
                if cart["status"] == "abandoned":
                    await tx.execute("DELETE FROM emails WHERE cart_id = ? AND status = 'pending'", cart["id"])
                return True
            email = await self._visitor_email(tx, site.id, body.vid)
            row = await tx.fetchone(
                "INSERT INTO carts (site_id, visitor_id, email, items, currency, value, item_count, status, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 'open', ?, ?) RETURNING id",
                site.id,
                body.vid,
                email,
                items_json,
                body.currency,
                value,
                count,
                now,
                now,
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
        return await self.db.write(lambda tx: self._claim_event(tx, site, body.id, body.vid, body.type, data, now))

    async def _add_lead(
        self, tx: Tx, site: Site, vid: str, email: str, source: str, consent: bool, code: str | None, variants: Any, now: float
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
            dumps(variants) if variants else None,
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
            if variants:
                await tx.execute(
                    "UPDATE leads SET variants = ? WHERE site_id = ? AND email = ? AND variants IS NULL",
                    dumps(variants),
                    site.id,
                    email,
                )
        await self._bind_email(tx, site, vid, email, now)
        return row is not None

    async def ingest_lead(self, site: Site, body: LeadIn) -> bool:
        if body.hp:
            # The honeypot is filled by bots only: answer as if stored, store nothing.
            return False
        now = time.time()
        email = normalize_email(body.email)

        async def op(tx: Tx) -> bool:
            await self._lock_shopper(tx, site.id, body.vid, email)
            data = {"variants": body.variants} if body.variants else None
            if not await self._claim_event(tx, site, body.id, body.vid, "lead", data, now):
                return False
            new = await self._add_lead(tx, site, body.vid, email, "popup", body.consent, body.discount_code, body.variants, now)
            if new:
                await self.enqueue_webhooks(
                    tx, site, "lead", email, {"email": email, "consent": body.consent, "discount_code": body.discount_code,
                                              "variants": body.variants or {}, "source": "popup"}, now
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
                await self.enqueue_webhooks(
                    tx, site, "lead", email, {"email": email, "consent": bool(body.consent), "discount_code": None,
                                              "variants": {}, "source": "identify"}, now
                )
            return True

        return await self.db.write(op)

    async def ingest_purchase(self, site: Site, body: PurchaseIn) -> bool:
        now = time.time()

        async def op(tx: Tx) -> bool:
            await self._lock_shopper(tx, site.id, body.vid)
            if not await self._claim_event(tx, site, body.id, body.vid, "purchase", {"order_id": body.order_id}, now):
                return False
            cart = await self._open_cart(tx, site.id, body.vid)
            email = (cart["email"] if cart else None) or await self._visitor_email(tx, site.id, body.vid)
            await self._record_order(tx, site, body.order_id, body.value, body.currency, email, cart, now)
            return True

        return await self.db.write(op)

    async def record_order(
        self, site: Site, order_id: str, value: float, currency: str, email: str | None, cart_id: int | None
    ) -> Row:
        """A purchase reported by the store's server; idempotent by (site, order_id)."""
        now = time.time()

        async def op(tx: Tx) -> Row:
            cart = None
            if cart_id is not None:
                cart = await tx.fetchone("SELECT * FROM carts WHERE id = ? AND site_id = ?", cart_id, site.id)
            norm = normalize_email(email) if email else None
            if cart is None and norm:
                cart = await tx.fetchone(
                    "SELECT * FROM carts WHERE site_id = ? AND email = ? AND status IN ('open', 'abandoned')"
                    " ORDER BY id DESC LIMIT 1",
                    site.id,
                    norm,
                )
            return await self._record_order(tx, site, order_id, value, currency, norm or (cart["email"] if cart else None), cart, now)

        return await self.db.write(op)

    async def _record_order(
        self, tx: Tx, site: Site, order_id: str, value: float, currency: str, email: str | None, cart: Row | None, now: float
    ) -> Row:
        existing = await tx.fetchone("SELECT * FROM orders WHERE site_id = ? AND order_id = ?", site.id, order_id)
        if existing is not None:
            return existing
        clicked = None
        if email:
            # Attribution is by shopper, not by browser: a reminder clicked on the phone
            # counts for the order placed on the laptop, inside the window.
            window = site.settings.recovery.attribution_days * 86400
            clicked = await tx.fetchone(
                "SELECT id FROM emails WHERE site_id = ? AND to_addr = ? AND clicked_at IS NOT NULL AND clicked_at >= ?"
                " ORDER BY clicked_at DESC LIMIT 1",
                site.id,
                email,
                now - window,
            )
        row = await tx.fetchone(
            "INSERT INTO orders (site_id, order_id, value, currency, email, cart_id, recovered, email_id, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (site_id, order_id) DO NOTHING RETURNING *",
            site.id,
            order_id,
            round(value, 2),
            currency,
            email,
            cart["id"] if cart else None,
            1 if clicked else 0,
            clicked["id"] if clicked else None,
            now,
        )
        if row is None:  # a concurrent report of the same order won
            again = await tx.fetchone("SELECT * FROM orders WHERE site_id = ? AND order_id = ?", site.id, order_id)
            assert again is not None
            return again
        closing = [cart["id"]] if cart else []
        if email:
            # The order ends the shopper's sequence, whichever browser the cart was on.
            others = await tx.fetchall(
                "SELECT id FROM carts WHERE site_id = ? AND email = ? AND status IN ('open', 'abandoned')", site.id, email
            )
            closing += [r["id"] for r in others if r["id"] not in closing]
        for cid in closing:
            await tx.execute(
                "UPDATE carts SET status = 'purchased', closed_at = ?, order_id = ? WHERE id = ?", now, order_id, cid
            )
            await self.cancel_pending_emails(tx, cid)
        if clicked:
            await self.enqueue_webhooks(
                tx, site, "recovered", order_id,
                {"order_id": order_id, "value": round(value, 2), "currency": currency, "email": email}, now,
            )
        return row

    async def cart_for_restore(self, site: Site, cart_id: int, vid: str | None) -> dict[str, Any] | None:
        """The saved cart for a restore token, only on the site it belongs to."""
        cart = await self.db.fetchone("SELECT * FROM carts WHERE id = ? AND site_id = ?", cart_id, site.id)
        if cart is None:
            return None
        out: dict[str, Any] = {"items": json.loads(cart["items"]), "currency": cart["currency"]}
        sent = await self.db.fetchone(
            "SELECT discount_code FROM emails WHERE cart_id = ? AND status = 'sent' AND discount_code IS NOT NULL"
            " ORDER BY step DESC LIMIT 1",
            cart_id,
        )
        if sent:
            out["discount_code"] = sent["discount_code"]
        if vid and cart["email"] and re.match(CLIENT_ID_RE, vid):
            # The new browser now belongs to the same shopper: its cart continues the sequence.
            email = cart["email"]
            await self.db.write(
                lambda tx: tx.execute(
                    "INSERT INTO visitors (site_id, visitor_id, email, updated_at) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (site_id, visitor_id) DO UPDATE SET email = excluded.email, updated_at = excluded.updated_at",
                    site.id,
                    vid,
                    email,
                    time.time(),
                )
            )
        return out

    # -- webhooks outbox ------------------------------------------------------------------
    async def enqueue_webhooks(self, tx: Tx, site: Site, event: str, ref: str, data: dict[str, Any], now: float) -> None:
        """Queues the event for every webhook that wants it, once per (url, event, ref)."""
        for hook in site.settings.webhooks:
            if event not in hook.events:
                continue
            body = dumps({"event": event, "site": site.key, "created_at": now, "data": data})
            await tx.execute(
                "INSERT INTO webhook_outbox (site_id, url, event, ref, body, status, attempts, next_attempt_at, created_at)"
                " VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?) ON CONFLICT (site_id, url, event, ref) DO NOTHING",
                site.id,
                hook.url,
                event,
                ref,
                body,
                now,
                now,
            )
