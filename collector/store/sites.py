"""Sites, their settings and their cache: the only place that loads a site."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from collector.schemas import Popup, Recovery, SiteSettings, format_validation_error
from collector.security import new_site_key, new_webhook_secret
from collector.store.db import Database, Reader, Row, dumps

# Site settings are read on every ingest request; several collector processes may
# share one database, so a change made by another process shows within this time.
SITE_CACHE_SECONDS = 5.0
# Unknown keys are cached too (a miss costs a read); past this many entries the cache starts over.
SITE_CACHE_MAX = 10_000


_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(origin: str) -> str:
    """An origin as browsers send it: scheme://host[:port], lowercase, no default port, no path.

    So `https://Shop.example:443/` is `https://shop.example`. Raises ValueError for anything that
    is not an http(s) origin (a path, a query, a user name, a port out of range)."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        raise ValueError(f"not an origin: {origin!r}") from None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if (
        scheme not in _DEFAULT_PORTS
        or not host
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
        or any(c.isspace() or not c.isprintable() for c in origin.strip())
    ):
        raise ValueError(f"not an origin (give scheme, host and port only, like https://shop.example): {origin!r}")
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" if port in (None, _DEFAULT_PORTS[scheme]) else f"{scheme}://{host}:{port}"


def _switched_off() -> SiteSettings:
    """What a site whose stored settings no longer validate runs with: no popup, no reminders, no
    webhooks, until `cartback sites update` (or the dashboard) writes settings that do."""
    return SiteSettings(popup=Popup(enabled=False), recovery=Recovery(enabled=False))


def _normalized_or_kept(origin: str) -> str:
    try:
        return normalize_origin(origin)
    except ValueError:
        return origin


class Site:
    """A site row with its settings parsed once.

    A settings row that no longer validates (edited by hand, written by a newer release before a
    downgrade) does not stop anything else: the site gets `problem` (the validation message, for
    the dashboard and `sites list`), runs switched off, and every other site goes on as before.
    """

    __slots__ = ("created_at", "id", "key", "name", "origins", "problem", "raw_settings", "settings", "webhook_secret")

    def __init__(self, row: Row) -> None:
        self.id: int = int(row["id"])
        self.key: str = row["key"]
        self.name: str = row["name"]
        # Stored before origins were normalised (say with :443): compared as browsers send them.
        self.origins: list[str] = [_normalized_or_kept(o) for o in json.loads(row["origins"])]
        self.problem: str | None = None
        try:
            raw = json.loads(row["settings"])
            if not isinstance(raw, dict):
                raise ValueError("the settings are not a JSON object")
            self.raw_settings: dict[str, Any] = raw
            self.settings = SiteSettings.model_validate(raw)
        except ValidationError as exc:
            self.problem = format_validation_error(exc)
            self.settings = _switched_off()
        except ValueError as exc:  # not JSON at all
            self.raw_settings = {}
            self.problem = f"the stored settings are not valid JSON ({exc})"
            self.settings = _switched_off()
        self.webhook_secret: str = row["webhook_secret"]
        self.created_at: float = row["created_at"]

    def allows_origin(self, origin: str | None) -> bool:
        if origin is None:
            return False
        try:
            return normalize_origin(origin) in self.origins
        except ValueError:  # "null" (a sandboxed frame) and other non-origins
            return False


class SiteStore:
    """Reads and writes the `sites` table; by key or by id, each cached for SITE_CACHE_SECONDS."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._by_key: dict[str, tuple[float, Site | None]] = {}
        self._by_id: dict[int, tuple[float, Site | None]] = {}

    def _remember(self, site: Site) -> Site:
        now = time.monotonic()
        if len(self._by_key) > SITE_CACHE_MAX:
            self._by_key.clear()
        if len(self._by_id) > SITE_CACHE_MAX:
            self._by_id.clear()
        self._by_key[site.key] = (now, site)
        self._by_id[site.id] = (now, site)
        return site

    def _forget(self, key: str) -> None:
        hit = self._by_key.pop(key, None)
        if hit is not None and hit[1] is not None:
            self._by_id.pop(hit[1].id, None)

    async def create(self, name: str, origins: list[str], settings: SiteSettings | None = None) -> Site:
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
        return self._remember(Site(row))

    async def update(
        self, key: str, settings: SiteSettings | None = None, origins: list[str] | None = None, name: str | None = None
    ) -> Site | None:
        sets, args = ["updated_at = ?"], list[object]([time.time()])
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
        self._forget(key)
        return self._remember(Site(row)) if row else None

    async def get(self, key: str, fresh: bool = False) -> Site | None:
        """The site of a public key; `fresh` reads past the cache (the dashboard, after an edit)."""
        hit = self._by_key.get(key)
        if hit is not None and not fresh and time.monotonic() - hit[0] < SITE_CACHE_SECONDS:
            return hit[1]
        row = await self.db.fetchone("SELECT * FROM sites WHERE key = ?", key)
        if row is None:
            if len(self._by_key) > SITE_CACHE_MAX:  # unknown keys must not grow it without bound
                self._by_key.clear()
            self._by_key[key] = (time.monotonic(), None)
            return None
        return self._remember(Site(row))

    async def by_id(self, site_id: int, q: Reader | None = None) -> Site | None:
        """The site of an id (the sweep, webhooks, the open pixel); `q` reads inside a transaction."""
        hit = self._by_id.get(site_id)
        if hit is not None and time.monotonic() - hit[0] < SITE_CACHE_SECONDS:
            return hit[1]
        row = await (q or self.db).fetchone("SELECT * FROM sites WHERE id = ?", site_id)
        if row is None:
            self._by_id[site_id] = (time.monotonic(), None)
            return None
        return self._remember(Site(row))

    async def list(self) -> list[Site]:
        return [self._remember(Site(r)) for r in await self.db.fetchall("SELECT * FROM sites ORDER BY id")]
