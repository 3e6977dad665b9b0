"""Dashboard sessions, CSRF tokens and the limit on failed logins.

- The session is a cookie signed with itsdangerous (the app's Signer, purpose "session"):
  {"u": user id, "p": a fingerprint of the password hash, "c": the session's CSRF secret}.
  HttpOnly, SameSite=Lax, Path=/admin, Secure when CARTBACK_PUBLIC_URL is https, and it
  expires after SESSION_SECONDS (the signature's timestamp is checked, not only Max-Age).
  Each request re-reads the user: a deleted login or a changed password ends its sessions.
  Logging out ends every session of that user made before (the time is kept in
  login_attempts under the key "revoked:<user id>", with failures = 0), so a copied cookie
  is of no use after the logout.
- CSRF: every form carries the session's CSRF secret in a hidden `csrf` field (or the
  X-CSRF-Token header); a POST without it, or with another one, is refused with 403. The
  login form, which comes before any session, uses a signed double submit: a random nonce
  in a short-lived cookie and the same nonce signed in the form.
- Failed logins (only failures: a good login costs nothing) are counted in login_attempts per
  address *from one client IP* and per client IP, in a window of LOGIN_WINDOW seconds; past
  either limit the login from that IP answers 429 with Retry-After, without even checking the
  password. An address's failures count per IP so that anyone who knows the owner's address
  cannot lock the owner out: five bad passwords slow that address down from that IP only.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from collector.security import Signer
from collector.services import services
from collector.store import Database, Row, Store, Tx

SESSION_COOKIE = "cartback_session"
LOGIN_COOKIE = "cartback_login"
COOKIE_PATH = "/admin"
SESSION_SECONDS = 12 * 3600
LOGIN_FORM_SECONDS = 3600
LOGIN_WINDOW = 15 * 60
MAX_FAILURES_PER_EMAIL = 5
# Higher than per address: several people may share one IP (an office, a proxy).
MAX_FAILURES_PER_IP = 20
LOGIN_PATH = "/admin/login"

Handler = Callable[[Request], Awaitable[Response]]


def password_fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


class Session:
    __slots__ = ("user_id", "email", "csrf")

    def __init__(self, user_id: int, email: str, csrf: str) -> None:
        self.user_id = user_id
        self.email = email
        self.csrf = csrf


def make_session_cookie(signer: Signer, user: Row) -> str:
    return signer.dumps(
        {
            "u": user["id"],
            "p": password_fingerprint(user["password_hash"]),
            "c": secrets.token_urlsafe(24),
            "t": time.time(),
        },
        "session",
    )


def _revoked_key(user_id: int) -> str:
    return f"revoked:{user_id}"


async def revoke_sessions(db: Database, user_id: int, now: float | None = None) -> None:
    """Ends every session of the user made until now (logout)."""
    now = time.time() if now is None else now
    await db.write(
        lambda tx: tx.execute(
            "INSERT INTO login_attempts (key, failures, window_start) VALUES (?, 0, ?)"
            " ON CONFLICT (key) DO UPDATE SET window_start = excluded.window_start",
            _revoked_key(user_id),
            now,
        )
    )


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=services(request).config.secure_cookies,
    )


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(
        name, path=COOKIE_PATH, httponly=True, samesite="lax", secure=services(request).config.secure_cookies
    )


async def load_session(request: Request) -> Session | None:
    """The logged-in user, or None for a missing, forged, expired or outdated cookie."""
    if "session" in request.scope.get("cartback", {}):
        cached: Session | None = request.scope["cartback"]["session"]
        return cached
    session = None
    raw = request.cookies.get(SESSION_COOKIE)
    if raw and len(raw) < 4096:
        value = services(request).signer.loads(raw, "session", SESSION_SECONDS)
        if isinstance(value, dict) and isinstance(value.get("u"), int) and isinstance(value.get("c"), str):
            store: Store = services(request).store
            user = await store.db.fetchone("SELECT id, email, password_hash FROM users WHERE id = ?", value["u"])
            if user is not None and hmac.compare_digest(
                str(value.get("p", "")), password_fingerprint(user["password_hash"])
            ):
                revoked = await store.db.fetchone(
                    "SELECT window_start FROM login_attempts WHERE key = ?", _revoked_key(user["id"])
                )
                issued = value.get("t")
                if isinstance(issued, (int, float)) and (revoked is None or issued > revoked["window_start"]):
                    session = Session(user["id"], user["email"], value["c"])
    request.scope.setdefault("cartback", {})["session"] = session
    return session


def same_origin(request: Request) -> bool:
    """False for a browser request that says it comes from another site."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        # No origin to compare (an old browser, or a privacy setting that sends "null"):
        # the CSRF token alone decides.
        return True
    netloc = urlsplit(origin).netloc.lower()
    # The Host the request came with, or the public URL's (behind a proxy that rewrites Host).
    allowed = {
        request.headers.get("host", "").lower(),
        request.headers.get("x-forwarded-host", "").split(",")[0].strip().lower(),
        urlsplit(services(request).config.public_url).netloc.lower(),
    }
    return netloc in allowed - {""}


async def csrf_ok(request: Request, expected: str) -> bool:
    if not same_origin(request):
        return False
    given = request.headers.get("x-csrf-token")
    if given is None:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get("csrf")
            given = value if isinstance(value, str) else None
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def login_redirect(request: Request) -> Response:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    return RedirectResponse(f"{LOGIN_PATH}?next={quote(target, safe='')}", status_code=303)


def admin(handler: Handler) -> Handler:
    """Only for a logged-in user; a POST (or any other change) must carry its CSRF token too."""

    async def wrapped(request: Request) -> Response:
        session = await load_session(request)
        if session is None:
            if request.method in ("GET", "HEAD"):
                return login_redirect(request)
            return PlainTextResponse("log in first", status_code=401)
        if request.method not in ("GET", "HEAD") and not await csrf_ok(request, session.csrf):
            return PlainTextResponse(
                "the form's CSRF token is missing or wrong: reload the page and try again", status_code=403
            )
        return await handler(request)

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


# -- the login form's CSRF (before any session) ------------------------------------
def new_login_nonce() -> str:
    return secrets.token_urlsafe(24)


def login_form_token(signer: Signer, nonce: str) -> str:
    return signer.dumps(nonce, "login-form")


def login_form_ok(request: Request, token: str | None) -> bool:
    nonce = request.cookies.get(LOGIN_COOKIE)
    if not nonce or not token or not same_origin(request):
        return False
    value = services(request).signer.loads(token, "login-form", LOGIN_FORM_SECONDS)
    return isinstance(value, str) and hmac.compare_digest(value.encode(), nonce.encode())


# -- the limit on failed logins ---------------------------------------------------------
def attempt_keys(email: str, ip: str) -> list[tuple[str, int]]:
    address = email.strip().lower()[:320]
    return [(f"email:{ip}:{address}", MAX_FAILURES_PER_EMAIL), ("ip:" + ip, MAX_FAILURES_PER_IP)]


async def locked_for(db: Database, email: str, ip: str, now: float | None = None) -> float:
    """Seconds until another try is allowed; 0 when it is allowed now."""
    now = time.time() if now is None else now
    wait = 0.0
    for key, limit in attempt_keys(email, ip):
        row = await db.fetchone("SELECT failures, window_start FROM login_attempts WHERE key = ?", key)
        if row and row["failures"] >= limit and row["window_start"] > now - LOGIN_WINDOW:
            wait = max(wait, row["window_start"] + LOGIN_WINDOW - now)
    return wait


async def record_failure(db: Database, email: str, ip: str, now: float | None = None) -> None:
    now = time.time() if now is None else now
    expired = now - LOGIN_WINDOW

    async def op(tx: Tx) -> None:
        for key, _ in attempt_keys(email, ip):
            await tx.execute(
                "INSERT INTO login_attempts (key, failures, window_start) VALUES (?, 1, ?)"
                " ON CONFLICT (key) DO UPDATE SET"
                " failures = CASE WHEN login_attempts.window_start < ? THEN 1 ELSE login_attempts.failures + 1 END,"
                " window_start = CASE WHEN login_attempts.window_start < ? THEN excluded.window_start"
                " ELSE login_attempts.window_start END",
                key,
                now,
                expired,
                expired,
            )
        # Old windows are of no use; keep the table small. A logout's mark is needed only
        # as long as the sessions it ended could still be alive.
        await tx.execute("DELETE FROM login_attempts WHERE window_start < ? AND key NOT LIKE 'revoked:%'", expired)
        await tx.execute(
            "DELETE FROM login_attempts WHERE window_start < ? AND key LIKE 'revoked:%'", now - SESSION_SECONDS
        )

    await db.write(op)


async def clear_failures(db: Database, email: str, ip: str) -> None:
    key = attempt_keys(email, ip)[0][0]
    await db.write(lambda tx: tx.execute("DELETE FROM login_attempts WHERE key = ?", key))


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def safe_next(value: Any) -> str:
    """Only a path inside the dashboard: never an open redirect."""
    if isinstance(value, str) and value.startswith("/admin") and not value.startswith("//") and "\\" not in value:
        parts = urlsplit(value)
        if not parts.scheme and not parts.netloc:
            return value
    return "/admin"
