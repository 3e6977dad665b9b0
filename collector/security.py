"""Passwords, API tokens, site keys and signed values."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

# scrypt at OWASP's Password Storage Cheat Sheet cost: its N=2^14, r=8, p=5 row (the same work as
# N=2^17, p=1, with 16 MiB of memory per hash instead of 128 MiB), about 0.25 s on these machines.
_N, _R, _P = 2**14, 8, 5
_MAXMEM = 64 * 1024 * 1024


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, maxmem=_MAXMEM, dklen=32)
    return f"scrypt${_N}${_R}${_P}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt_b64),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=_MAXMEM,
            dklen=32,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))


def needs_rehash(stored: str) -> bool:
    """Whether a stored hash was made at another cost than today's (rehashed at the next login)."""
    parts = stored.split("$")
    return len(parts) != 6 or parts[:4] != ["scrypt", str(_N), str(_R), str(_P)]


def new_api_token() -> str:
    return "cbt_" + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    # API tokens are long random strings, so a plain SHA-256 is enough to keep them unusable if the table leaks.
    return hashlib.sha256(token.encode()).hexdigest()


def new_site_key() -> str:
    return "pk_" + secrets.token_hex(10)


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(24)


class Signer:
    """Signed, expiring values (links, cookies, restore tokens), one salt per purpose."""

    def __init__(self, secret_key: str) -> None:
        self._secret = secret_key

    def dumps(self, value: Any, purpose: str) -> str:
        return URLSafeTimedSerializer(self._secret, salt=f"cartback.{purpose}").dumps(value)

    def loads(self, token: str, purpose: str, max_age: float) -> Any | None:
        """The value, or None when the token is forged, altered or expired."""
        try:
            return URLSafeTimedSerializer(self._secret, salt=f"cartback.{purpose}").loads(token, max_age=int(max_age))
        except (BadSignature, SignatureExpired, ValueError, TypeError):
            return None
