"""Amazon SNS messages: their signature checked against a signing certificate, as SNS documents it.

SNS signs the canonical string of a message (named fields, each `Name\\nvalue\\n`, in a fixed order)
with RSA: SHA1 for SignatureVersion 1, SHA256 for 2. The certificate is either one the operator
gave (CARTBACK_SNS_CERT_FILE: never fetched, also how the tests' fake SNS is trusted), or the one at
the message's SigningCertURL, fetched over HTTPS only from an SNS host and kept in memory.

A valid signature proves the message came through SNS, not from whose topic: the caller must also
check TopicArn against the topics it subscribed to.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_FIELDS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
TYPES = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")
_SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")


class SnsError(ValueError):
    """Not a message SNS signed (the reason says why)."""


def canonical_string(message: dict[str, Any]) -> bytes:
    """The bytes SNS signs for this message (its Type picks the fields; a missing Subject is left out)."""
    kind = message.get("Type")
    if kind not in TYPES:
        raise SnsError(f"unknown SNS message type {kind!r}")
    fields = NOTIFICATION_FIELDS if kind == "Notification" else CONFIRMATION_FIELDS
    out = []
    for name in fields:
        value = message.get(name)
        if value is None:
            if name == "Subject":
                continue
            raise SnsError(f"the SNS message has no {name}")
        if not isinstance(value, str):
            raise SnsError(f"the SNS message's {name} is not a string")
        out.append(f"{name}\n{value}\n")
    return "".join(out).encode("utf-8")


def is_sns_url(url: str) -> bool:
    """An https URL on an SNS host (sns.REGION.amazonaws.com, or .com.cn)."""
    parts = urlsplit(url)
    return parts.scheme == "https" and bool(_SNS_HOST.match(parts.hostname or ""))


def is_sns_cert_url(url: str) -> bool:
    return is_sns_url(url) and urlsplit(url).path.endswith(".pem")


def load_certificates(pem: bytes) -> list[x509.Certificate]:
    certs = x509.load_pem_x509_certificates(pem)
    for cert in certs:
        if not isinstance(cert.public_key(), rsa.RSAPublicKey):
            raise ValueError("an SNS signing certificate holds an RSA key")
    return certs


def _verify_with(cert: x509.Certificate, signature: bytes, data: bytes, version: str) -> bool:
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    algorithm: hashes.HashAlgorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    try:
        key.verify(signature, data, padding.PKCS1v15(), algorithm)
    except InvalidSignature:
        return False
    return True


class SnsVerifier:
    """Checks SNS signatures; `trusted` certificates, when given, are the only ones (nothing is fetched)."""

    def __init__(self, trusted: Sequence[x509.Certificate] | None = None, timeout: float = 10.0) -> None:
        self.trusted = list(trusted) if trusted else None
        self.timeout = timeout
        self._fetched: dict[str, x509.Certificate] = {}

    async def _certificates(self, url: str) -> list[x509.Certificate]:
        if self.trusted is not None:
            return self.trusted
        if not is_sns_cert_url(url):
            raise SnsError("SigningCertURL is not an https URL of an SNS host")
        if url not in self._fetched:
            try:
                async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
                    r = await client.get(url)
                r.raise_for_status()
                self._fetched[url] = load_certificates(r.content)[0]
            except (httpx.HTTPError, ValueError, IndexError) as exc:
                raise SnsError(f"cannot load the SNS signing certificate: {exc}") from None
        return [self._fetched[url]]

    async def verify(self, message: dict[str, Any]) -> None:
        """Raises SnsError unless `message` carries a valid SNS signature."""
        version = message.get("SignatureVersion")
        if version not in ("1", "2"):
            raise SnsError(f"unsupported SignatureVersion {version!r}")
        try:
            signature = base64.b64decode(str(message.get("Signature") or ""), validate=True)
        except ValueError:
            raise SnsError("the Signature is not base64") from None
        data = canonical_string(message)
        for cert in await self._certificates(str(message.get("SigningCertURL") or "")):
            if _verify_with(cert, signature, data, version):
                return
        raise SnsError("the SNS signature does not verify")
