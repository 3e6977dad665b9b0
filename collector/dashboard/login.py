"""Logging in and out of the dashboard: the only /admin pages that answer without a session."""

from __future__ import annotations

import asyncio
import functools
import math

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from collector.dashboard import auth
from collector.dashboard.templating import render
from collector.security import hash_password, needs_rehash, verify_password
from collector.services import services

# Paths that answer without a session (the tests check every other /admin route refuses).
PUBLIC_PATHS = {"/admin/login"}


@functools.cache
def _dummy_hash() -> str:
    # Checked against when the address has no login, so that a wrong address takes as long as a
    # wrong password. Made at the first login, not at import: scrypt takes a while.
    return hash_password("not-a-real-password-0")


def _login_page(
    request: Request,
    status: int = 200,
    error: str | None = None,
    email: str = "",
    next_: str = "/admin",
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    nonce = request.cookies.get(auth.LOGIN_COOKIE)
    if not nonce or len(nonce) > 64:
        nonce = auth.new_login_nonce()
    response = render(
        request,
        "login.html",
        status=status,
        headers=headers,
        error=error,
        email=email,
        next=auth.safe_next(next_),
        login_csrf=auth.login_form_token(services(request).signer, nonce),
    )
    auth.set_cookie(response, request, auth.LOGIN_COOKIE, nonce, auth.LOGIN_FORM_SECONDS)
    return response


async def login(request: Request) -> Response:
    if request.method == "GET":
        if await auth.load_session(request) is not None:
            return RedirectResponse(auth.safe_next(request.query_params.get("next")), status_code=303)
        return _login_page(request, next_=request.query_params.get("next", "/admin"))
    form = await request.form()
    email = str(form.get("email", ""))[:320].strip().lower()
    password = str(form.get("password", ""))[:1024]
    next_ = str(form.get("next", "/admin"))
    csrf = form.get("csrf")
    if not auth.login_form_ok(request, csrf if isinstance(csrf, str) else None):
        return _login_page(request, 403, "The login form expired. Please try again.", email, next_)
    svc = services(request)
    ip = auth.client_ip(request)
    wait = await auth.locked_for(svc.store.db, email, ip)
    if wait > 0:
        minutes = max(1, math.ceil(wait / 60))
        return _login_page(
            request,
            429,
            f"Too many failed logins. Try again in {minutes} minute{'s' if minutes > 1 else ''}.",
            email,
            next_,
            headers={"Retry-After": str(math.ceil(wait))},
        )
    user = await svc.store.users.get(email) if email else None
    stored = user["password_hash"] if user else await asyncio.to_thread(_dummy_hash)
    # scrypt takes a while: off the event loop, and run for unknown addresses too.
    ok = await asyncio.to_thread(verify_password, password, stored)
    if user is None or not ok:
        await auth.record_failure(svc.store.db, email, ip)
        return _login_page(request, 401, "Wrong email or password.", email, next_)
    await auth.clear_failures(svc.store.db, email, ip)
    if needs_rehash(user["password_hash"]):
        # Made at an older, cheaper cost: stored again at today's while the password is at hand.
        new_hash = await asyncio.to_thread(hash_password, password)
        await svc.store.users.set_password_hash(email, new_hash)
        user = {**user, "password_hash": new_hash}
    response = RedirectResponse(auth.safe_next(next_), status_code=303)
    auth.set_cookie(
        response, request, auth.SESSION_COOKIE, auth.make_session_cookie(svc.signer, user), auth.SESSION_SECONDS
    )
    auth.clear_cookie(response, request, auth.LOGIN_COOKIE)
    return response


@auth.admin
async def logout(request: Request) -> Response:
    session = await auth.load_session(request)
    assert session is not None
    await auth.revoke_sessions(services(request).store.db, session.user_id)
    response = RedirectResponse(auth.LOGIN_PATH, status_code=303)
    auth.clear_cookie(response, request, auth.SESSION_COOKIE)
    return response


routes = [
    Route("/admin/login", login, methods=["GET", "POST"]),
    Route("/admin/logout", logout, methods=["POST"]),
]
