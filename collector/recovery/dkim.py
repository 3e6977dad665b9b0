"""DKIM for the reminders: keys made and kept encrypted, the DNS record to publish, and signing (dkimpy).

`create_key` makes an RSA 2048 key for a sending domain and keeps it (store/dkim_keys.py) with its
private half encrypted by a key derived from CARTBACK_SECRET_KEY. `Signer.sign` signs a message
whose From address is exactly at a domain with a key: rsa-sha256, relaxed/relaxed, over the
headers that Gmail and RFC 8058 want signed (List-Unsubscribe and List-Unsubscribe-Post included,
so a forwarder cannot strip the one-click unsubscribe without breaking the signature).
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from dataclasses import dataclass

import dkim
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from collector.store import Database, dkim_keys

DEFAULT_SELECTOR = "cartback"
KEY_BITS = 2048
SIGNED_HEADERS: tuple[bytes, ...] = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"mime-version",
    b"content-type",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"feedback-id",
)
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"^{_LABEL}(?:\.{_LABEL})+$")
_SELECTOR = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")


class DkimError(ValueError):
    """A domain or selector that cannot carry a key, or a key that cannot be read."""


@dataclass(frozen=True)
class DkimKey:
    domain: str
    selector: str
    public_key: str  # base64 of the DER SubjectPublicKeyInfo: the record's p=
    created_at: float

    @property
    def record_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def record_value(self) -> str:
        return f"v=DKIM1; k=rsa; p={self.public_key}"

    def record(self) -> str:
        """`NAME TXT "…" "…"`: the value split into quoted strings of at most 255 bytes (RFC 1035 3.3.14)."""
        value = self.record_value
        chunks = [value[i : i + 255] for i in range(0, len(value), 255)]
        return f"{self.record_name} TXT " + " ".join(f'"{c}"' for c in chunks)


def check_domain(value: str) -> str:
    domain = value.strip().rstrip(".").lower()
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise DkimError(f"--domain {value!r}: not a domain name") from None
    if not _DOMAIN.match(domain) or len(domain) > 253:
        raise DkimError(f"--domain {value!r}: not a domain name (like shop.example)")
    return domain


def check_selector(value: str) -> str:
    selector = value.strip().lower()
    if not _SELECTOR.match(selector) or len(selector) > 63:
        raise DkimError(f"--selector {value!r}: use letters, digits and hyphens (like cartback)")
    return selector


def _fernet(secret_key: str) -> Fernet:
    # Its own key, derived for this one purpose: the link-signing secret itself never encrypts.
    raw = hashlib.sha256(b"cartback.dkim-private-key\0" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(raw))


def encrypt_private_key(pem: bytes, secret_key: str) -> str:
    return _fernet(secret_key).encrypt(pem).decode("ascii")


def decrypt_private_key(stored: str, secret_key: str) -> bytes:
    try:
        return _fernet(secret_key).decrypt(stored.encode("ascii"))
    except (InvalidToken, ValueError):
        raise DkimError("the DKIM key cannot be read with this CARTBACK_SECRET_KEY (was the secret changed?)") from None


async def create_key(db: Database, domain: str, selector: str, secret_key: str) -> DkimKey:
    """Makes, keeps and returns a new key for `domain` (replacing its old one)."""
    domain, selector = check_domain(domain), check_selector(selector)
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = base64.b64encode(
        private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ).decode("ascii")
    now = time.time()
    await dkim_keys.put(db, domain, selector, encrypt_private_key(pem, secret_key), public, now)
    return DkimKey(domain=domain, selector=selector, public_key=public, created_at=now)


async def list_keys(db: Database) -> list[DkimKey]:
    return [
        DkimKey(
            domain=str(r["domain"]),
            selector=str(r["selector"]),
            public_key=str(r["public_key"]),
            created_at=float(r["created_at"]),
        )
        for r in await dkim_keys.list_all(db)
    ]


class MessageSigner:
    """Signs the messages of one sweep; each domain's key is read and decrypted once."""

    def __init__(self, db: Database, secret_key: str) -> None:
        self.db = db
        self.secret_key = secret_key
        self._keys: dict[str, tuple[str, bytes] | None] = {}

    async def _key(self, domain: str) -> tuple[str, bytes] | None:
        if domain not in self._keys:
            row = await dkim_keys.get(self.db, domain)
            self._keys[domain] = (
                None
                if row is None
                else (str(row["selector"]), decrypt_private_key(str(row["private_key"]), self.secret_key))
            )
        return self._keys[domain]

    async def sign(self, message: bytes, from_domain: str) -> bytes:
        """The message with a DKIM-Signature header first, or unchanged when the domain has no key."""
        key = await self._key(from_domain.lower())
        if key is None:
            return message
        selector, pem = key
        header = dkim.sign(
            message,
            selector.encode("ascii"),
            from_domain.lower().encode("ascii"),
            pem,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=list(SIGNED_HEADERS),
            linesep=b"\r\n",
        )
        return bytes(header) + message
