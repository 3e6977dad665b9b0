"""The dashboard's doors: every admin route behind the login, every API route behind a token,
forged and stale sessions refused, CSRF on every form, the limit on failed logins, the headers."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from starlette.routing import Mount, Route

from collector.app import create_app
from collector.dashboard import auth
from collector.dashboard.login import PUBLIC_PATHS
from collector.security import Signer
from tests.conftest import TEST_SECRET
from tests.dashboard_support import OWNER, PASSWORD, form_csrf, login


def all_routes(routes: list[Any], prefix: str = "") -> list[tuple[str, Route]]:
    out = []
    for r in routes:
        if isinstance(r, Mount):
            out += all_routes(r.routes or [], prefix + r.path)
        elif isinstance(r, Route):
            out.append((prefix + r.path, r))
    return out


def concrete(path: str) -> str:
    # {key}, {id:int}, ... -> a value of the right shape
    return re.sub(r"\{(\w+)(?::(\w+))?\}", lambda m: "1" if m.group(2) in ("int", "float") else "pk_0000000000", path)


def admin_routes(app: Any) -> list[tuple[str, str]]:
    out = []
    for path, route in all_routes(app.routes):
        if (path == "/admin" or path.startswith("/admin/")) and path not in PUBLIC_PATHS:
            for method in sorted(route.methods or {"GET"}):
                if method != "HEAD":
                    out.append((method, concrete(path)))
    return out


# The contract's one public API route: the OpenAPI document describes the API, nothing about a site.
PUBLIC_API = {"/api/v1/openapi.json"}


def api_routes(app: Any) -> list[tuple[str, str]]:
    out = []
    for path, route in all_routes(app.routes):
        if path.startswith("/api/") and path not in PUBLIC_API:
            for method in sorted(route.methods or {"GET"}):
                if method != "HEAD":
                    out.append((method, concrete(path)))
    return out


def refused(r: httpx.Response) -> bool:
    if r.status_code == 401:
        return True
    return r.status_code in (302, 303, 307) and r.headers["location"].startswith("/admin/login")


async def test_every_admin_route_refuses_without_a_session(app, client, site):
    routes = admin_routes(app)
    # The enumeration must see the dashboard (so a new route is covered the day it is added).
    assert len(routes) >= 12 and ("GET", "/admin") in routes and ("POST", "/admin/logout") in routes
    for method, path in routes:
        for real_key in (False, True):
            target = path.replace("pk_0000000000", site.key) if real_key else path
            r = await client.request(method, target, data={"csrf": "x"} if method != "GET" else None)
            assert refused(r), f"{method} {target} answered {r.status_code} without a session"
            assert site.webhook_secret not in r.text


async def test_every_api_route_refuses_without_a_token(app, client, site, token):
    routes = api_routes(app)
    assert len(routes) >= 3
    for method, path in routes:
        target = path.replace("pk_0000000000", site.key)
        for headers in (
            {},
            {"Authorization": "Bearer cbt_wrong"},
            {"Authorization": token},
            {"Authorization": "Basic " + token},
        ):
            r = await client.request(method, target, headers=headers, content=b"{}" if method == "POST" else None)
            assert r.status_code == 401, f"{method} {target} with {headers} answered {r.status_code}"
            assert site.key not in r.text and "site" not in r.json()["error"]
    doc = await client.get("/api/v1/openapi.json")
    assert doc.status_code == 200 and site.key not in doc.text
    # And with the token they answer (so the 401 above is the token's doing).
    ok = await client.get(f"/api/v1/sites/{site.key}/stats", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200


async def test_login_gives_a_hardened_session_cookie(client, store):
    await login(client, store)
    cookie = next(c for c in client.cookies.jar if c.name == auth.SESSION_COOKIE)
    assert cookie.path == "/admin" and cookie.expires and cookie.expires - time.time() <= auth.SESSION_SECONDS + 5
    assert cookie.has_nonstandard_attr("HttpOnly") and cookie.get_nonstandard_attr("SameSite").lower() == "lax"
    assert not cookie.secure  # the public URL of the test config is http


async def test_cookie_is_secure_when_the_public_url_is_https(config, tmp_path):
    https_config = type(config)(
        database_url=config.database_url,
        secret_key=config.secret_key,
        public_url="https://collector.test",
        smtp_url=None,
        sweep_seconds=0,
        data_dir=config.data_dir,
    )
    application = create_app(https_config)
    async with LifespanManager(application):
        store = application.state.services.store
        await store.users.create(OWNER, PASSWORD)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="https://collector.test"
        ) as c:
            page = await c.get("/admin/login")
            assert "secure" in page.headers["set-cookie"].lower()
            r = await c.post("/admin/login", data={"email": OWNER, "password": PASSWORD, "csrf": form_csrf(page.text)})
            assert r.status_code == 303
            session = [h for h in r.headers.get_list("set-cookie") if h.startswith(auth.SESSION_COOKIE + "=")]
            assert session and "; secure" in session[0].lower() and "httponly" in session[0].lower()


async def test_forged_altered_expired_and_stale_sessions_are_refused(client, store, site, monkeypatch):
    await login(client, store)
    good = client.cookies.get(auth.SESSION_COOKIE, path="/admin")
    assert good
    user = await store.users.get(OWNER)
    page = f"/admin/sites/{site.key}"

    async def with_cookie(value: str) -> httpx.Response:
        client.cookies.clear()
        client.cookies.set(auth.SESSION_COOKIE, value, domain="collector.test", path="/admin")
        return await client.get(page)

    assert (await with_cookie(good)).status_code == 200
    payload = {"u": user["id"], "p": auth.password_fingerprint(user["password_hash"]), "c": "x" * 32, "t": time.time()}
    forged = [
        "garbage",
        good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),  # the signature altered
        Signer("another-secret-key-of-another-install-000000").dumps(payload, "session"),  # another key
        Signer(TEST_SECRET).dumps(payload, "restore"),  # right key, another purpose
        Signer(TEST_SECRET).dumps({**payload, "u": user["id"] + 1}, "session") + "x",
    ]
    for value in forged:
        r = await with_cookie(value)
        assert refused(r), f"forged cookie {value[:30]}... answered {r.status_code}"
    # A forged cookie with the right key would need the secret; check the payload check too:
    wrong_password = Signer(TEST_SECRET).dumps({**payload, "p": "0" * 16}, "session")
    assert refused(await with_cookie(wrong_password))
    # Expired: the signature's own timestamp counts, not the browser's Max-Age.
    monkeypatch.setattr(auth, "SESSION_SECONDS", -1)
    assert refused(await with_cookie(good))
    monkeypatch.setattr(auth, "SESSION_SECONDS", 12 * 3600)
    assert (await with_cookie(good)).status_code == 200
    # A changed password ends the sessions made with the old one.
    from collector.security import hash_password

    await store.db.write(
        lambda tx: tx.execute(
            "UPDATE users SET password_hash = ? WHERE id = ?", hash_password("a new password"), user["id"]
        )
    )
    assert refused(await with_cookie(good))


async def test_logout_ends_the_session_even_for_a_copied_cookie(client, store, site):
    csrf = await login(client, store)
    copied = client.cookies.get(auth.SESSION_COOKIE, path="/admin")
    r = await client.post("/admin/logout", data={"csrf": csrf})
    assert r.status_code == 303 and r.headers["location"] == "/admin/login"
    assert refused(await client.get("/admin"))
    client.cookies.set(auth.SESSION_COOKIE, copied, domain="collector.test", path="/admin")
    assert refused(await client.get(f"/admin/sites/{site.key}"))
    # Logging in again works at once.
    client.cookies.clear()
    await login(client, store)


async def test_forms_without_their_csrf_token_are_refused(client, store, site):
    csrf = await login(client, store)
    before = (await store.db.fetchone("SELECT settings FROM sites WHERE id = ?", site.id))["settings"]
    target = f"/admin/sites/{site.key}/settings"
    doc = {"mode": "form", "popup.headline": "Changed by a forged form", "popup.delay_ms": "100"}
    for data in (doc, {**doc, "csrf": ""}, {**doc, "csrf": csrf + "x"}, {**doc, "csrf": "a" * len(csrf)}):
        r = await client.post(target, data=data)
        assert r.status_code == 403, r.status_code
    # The right token from another site's page (a cross-site form) is refused too.
    r = await client.post(target, data={**doc, "csrf": csrf}, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    assert (await client.post("/admin/logout", data={})).status_code == 403
    after = (await store.db.fetchone("SELECT settings FROM sites WHERE id = ?", site.id))["settings"]
    assert after == before
    # With the token the same form goes through (so the 403s above were the token's doing).
    page = await client.get(target)
    form = {"csrf": csrf, "mode": "json", "document": before.replace('"delay_ms":1000', '"delay_ms":1500')}
    r = await client.post(target, data=form)
    assert r.status_code == 303, r.text[:500]
    assert page.status_code == 200


async def test_the_login_form_itself_needs_its_token(client, store):
    await store.users.create(OWNER, PASSWORD)
    r = await client.post("/admin/login", data={"email": OWNER, "password": PASSWORD})
    assert r.status_code == 403 and auth.SESSION_COOKIE not in r.headers.get("set-cookie", "")
    page = await client.get("/admin/login")
    token = form_csrf(page.text)
    client.cookies.delete(auth.LOGIN_COOKIE, domain="collector.test", path="/admin")
    r = await client.post("/admin/login", data={"email": OWNER, "password": PASSWORD, "csrf": token})
    assert r.status_code == 403  # the token without its cookie (a login CSRF) is refused


async def _try(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    client.cookies.clear()
    page = await client.get("/admin/login")
    return await client.post("/admin/login", data={"email": email, "password": password, "csrf": form_csrf(page.text)})


async def test_failed_logins_are_limited_per_address_and_per_ip(client, store):
    await store.users.create(OWNER, PASSWORD)
    for _ in range(auth.MAX_FAILURES_PER_EMAIL):
        assert (await _try(client, OWNER, "wrong password!")).status_code == 401
    r = await _try(client, OWNER, PASSWORD)  # even the right password waits now
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert "Too many failed logins" in r.text
    assert auth.SESSION_COOKIE not in str(r.headers.get_list("set-cookie"))
    # Another login from the same IP is not locked out by that address's failures...
    await store.users.create("second@example.com", PASSWORD)
    assert (await _try(client, "second@example.com", PASSWORD)).status_code == 303
    # ...until the IP itself has too many failures.
    for i in range(auth.MAX_FAILURES_PER_IP - auth.MAX_FAILURES_PER_EMAIL):
        assert (await _try(client, f"nobody{i}@example.com", "x")).status_code in (401, 429)
    assert (await _try(client, "second@example.com", PASSWORD)).status_code == 429
    # Once the window has passed, the right password works again.
    past = time.time() - auth.LOGIN_WINDOW - 1
    await store.db.write(lambda tx: tx.execute("UPDATE login_attempts SET window_start = ?", past))
    assert (await _try(client, OWNER, PASSWORD)).status_code == 303


async def test_login_redirects_only_inside_the_dashboard(client, store):
    await store.users.create(OWNER, PASSWORD)
    for target, expected in (
        ("https://evil.example/", "/admin"),
        ("//evil.example", "/admin"),
        ("/admin/mailbox", "/admin/mailbox"),
        ("/\\evil.example", "/admin"),
    ):
        client.cookies.clear()
        page = await client.get("/admin/login")
        r = await client.post(
            "/admin/login", data={"email": OWNER, "password": PASSWORD, "csrf": form_csrf(page.text), "next": target}
        )
        assert r.status_code == 303 and r.headers["location"] == expected


def _csp(r: httpx.Response) -> dict[str, str]:
    out = {}
    for part in r.headers.get("content-security-policy", "").split(";"):
        if part.strip():
            name, _, value = part.strip().partition(" ")
            out[name] = value
    return out


async def test_security_headers_on_html_pages(client, store, site):
    login_page = await client.get("/admin/login")
    await login(client, store)
    for path in ("/admin", f"/admin/sites/{site.key}", f"/admin/sites/{site.key}/settings", "/admin/mailbox"):
        r = await client.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        csp = _csp(r)
        assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"]
        assert csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "same-origin"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "<script>" not in r.text  # no inline script anywhere in the dashboard
    assert _csp(login_page)["frame-ancestors"] == "'none'" and "<script>" not in login_page.text
    # The demo storefront keeps working: its inline script and the snippet are not blocked.
    demo = await client.get("/demo")
    csp = _csp(demo)
    assert "script-src" not in csp or "'unsafe-inline'" in csp["script-src"] or "'nonce-" in csp["script-src"]
    assert demo.headers["x-frame-options"] == "DENY" and demo.headers["x-content-type-options"] == "nosniff"
    # JSON and scripts get nosniff too.
    assert (await client.get("/healthz")).headers["x-content-type-options"] == "nosniff"
