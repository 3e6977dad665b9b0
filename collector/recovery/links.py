"""Signed links in reminder emails, and the restore token they carry to the store.

Every token is an itsdangerous timed signature with its own purpose salt, so a token made
for one purpose (say an open pixel) is refused for another (a recovery click). Recovery,
unsubscribe and open tokens carry only the email's id; what they lead to is looked up in
the database, so a token cannot name someone else's cart without breaking the signature.
"""

from __future__ import annotations

import hashlib
import secrets
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from collector.security import Signer

RESTORE_MAX_AGE = 30 * 86400
# A reminder is worth clicking for about as long as the store keeps the cart in mind.
RECOVERY_MAX_AGE = 30 * 86400
# An unsubscribe link must keep working long after the mail was sent (people find old mail).
UNSUBSCRIBE_MAX_AGE = 400 * 86400
OPEN_MAX_AGE = 400 * 86400

RESTORE_PARAM = "cartback_restore"


def make_restore_token(signer: Signer, cart_id: int) -> str:
    # A nonce of its own, so that two clicks in one second get two tokens, each good once.
    return signer.dumps({"c": cart_id, "n": secrets.token_urlsafe(9)}, "restore")


def load_restore_token(signer: Signer, token: str) -> int | None:
    value = signer.loads(token, "restore", RESTORE_MAX_AGE)
    if isinstance(value, dict) and type(value.get("c")) is int:
        return int(value["c"])
    return None


def restore_token_id(token: str) -> str:
    """What a used restore token is remembered by (restore_uses.nonce): the token's hash, so
    that a token signed before nonces existed is also good only once."""
    return hashlib.sha256(token.encode()).hexdigest()


def _email_token(signer: Signer, email_id: int, purpose: str) -> str:
    return signer.dumps({"e": email_id}, purpose)


def _load_email_token(signer: Signer, token: str, purpose: str, max_age: float) -> int | None:
    if not token or len(token) > 500:
        return None
    value = signer.loads(token, purpose, max_age)
    if isinstance(value, dict) and type(value.get("e")) is int:
        return int(value["e"])
    return None


def make_recovery_token(signer: Signer, email_id: int) -> str:
    return _email_token(signer, email_id, "recovery")


def load_recovery_token(signer: Signer, token: str) -> int | None:
    return _load_email_token(signer, token, "recovery", RECOVERY_MAX_AGE)


def make_unsubscribe_token(signer: Signer, email_id: int) -> str:
    return _email_token(signer, email_id, "unsubscribe")


def load_unsubscribe_token(signer: Signer, token: str) -> int | None:
    return _load_email_token(signer, token, "unsubscribe", UNSUBSCRIBE_MAX_AGE)


def make_open_token(signer: Signer, email_id: int) -> str:
    return _email_token(signer, email_id, "open")


def load_open_token(signer: Signer, token: str) -> int | None:
    return _load_email_token(signer, token, "open", OPEN_MAX_AGE)


class EmailLinks:
    """The three links of one email, under the collector's public URL."""

    def __init__(self, signer: Signer, public_url: str, email_id: int) -> None:
        base = public_url.rstrip("/")
        self.recovery = f"{base}/r/{make_recovery_token(signer, email_id)}"
        self.unsubscribe = f"{base}/u/{make_unsubscribe_token(signer, email_id)}"
        self.open_pixel = f"{base}/o/{make_open_token(signer, email_id)}.gif"


def with_restore_param(cart_url: str, restore_token: str) -> str:
    """cart_url with cartback_restore=TOKEN added to its query (an old one replaced), fragment kept."""
    parts = urlsplit(cart_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != RESTORE_PARAM]
    query.append((RESTORE_PARAM, restore_token))
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", urlencode(query), parts.fragment))
