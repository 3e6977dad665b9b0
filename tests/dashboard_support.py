"""Helpers for the dashboard tests: logging in through the real form, posting what the snippet posts."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from tests.conftest import SHOP_ORIGIN

OWNER = "owner@example.com"
PASSWORD = "correct horse battery staple"
INGEST_HEADERS = {"Origin": SHOP_ORIGIN, "Content-Type": "text/plain"}


def form_csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF field in the page"
    return m.group(1)


async def login(client: httpx.AsyncClient, store: Any, email: str = OWNER, password: str = PASSWORD) -> str:
    """Logs the client in through the login form; returns the session's CSRF token."""
    if await store.users.get(email) is None:
        assert await store.users.create(email, password)
    page = await client.get("/admin/login")
    assert page.status_code == 200
    r = await client.post(
        "/admin/login", data={"email": email, "password": password, "csrf": form_csrf(page.text), "next": "/admin"}
    )
    assert r.status_code == 303 and r.headers["location"] == "/admin", r.text
    home = await client.get("/admin")
    assert home.status_code == 200
    return form_csrf(home.text)


async def ingest(client: httpx.AsyncClient, site: Any, kind: str, body: dict[str, Any]) -> None:
    r = await client.post(f"/c/{site.key}/{kind}", content=json.dumps(body), headers=INGEST_HEADERS)
    assert r.status_code == 200, r.text


def cart(cid: str, vid: str, items: list[dict[str, Any]] | None = None, currency: str = "EUR") -> dict[str, Any]:
    return {
        "id": cid,
        "vid": vid,
        "currency": currency,
        "items": items if items is not None else [{"id": "mug", "name": "Enamel mug", "price": 14.0, "quantity": 2}],
    }
