"""Retargeting audiences: hashed email lists for Google Customer Match and Meta custom audiences.

Who is in the list: shoppers of the site whose cart was marked abandoned
(carts.abandoned_at is set) and that carry an email; where the site's settings require
consent (popup.require_consent), only those whose lead row has consent = 1. Addresses that
unsubscribed are left out: an unsubscribe is a request to be left alone.

Normalisation, then SHA-256 in lowercase hex:
- google: header `Email`; trimmed, lowercased, and for @gmail.com / @googlemail.com the dots
  of the part before the @ removed (Google's Customer Match formatting guidelines);
- meta: header `email`; trimmed and lowercased.
One row per distinct hash, sorted, so that the same data gives the same file.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass

from collector.store import Database, Site

FORMATS = {"google": "Email", "meta": "email"}
# Meta refuses a custom audience under 100 people; Google needs more to serve ads at all.
MIN_AUDIENCE = 100
GMAIL_DOMAINS = ("gmail.com", "googlemail.com")


def normalize(email: str, fmt: str) -> str:
    address = email.strip().lower()
    if fmt == "google":
        local, at, domain = address.rpartition("@")
        if at and domain in GMAIL_DOMAINS:
            address = local.replace(".", "") + "@" + domain
    return address


def hash_email(email: str, fmt: str) -> str:
    return hashlib.sha256(normalize(email, fmt).encode("utf-8")).hexdigest()


def _audience_sql(site: Site) -> str:
    sql = (
        "SELECT DISTINCT c.email AS email FROM carts c WHERE c.site_id = ? AND c.abandoned_at IS NOT NULL"
        " AND c.email IS NOT NULL AND c.email <> ''"
        " AND NOT EXISTS (SELECT 1 FROM unsubscribes u WHERE u.site_id = c.site_id AND u.email = c.email)"
    )
    if site.settings.popup.require_consent:
        sql += " AND EXISTS (SELECT 1 FROM leads l WHERE l.site_id = c.site_id AND l.email = c.email AND l.consent = 1)"
    return sql


async def audience_size(db: Database, site: Site) -> int:
    """How many people the audience has, counted by the database."""
    row = await db.fetchone(f"SELECT COUNT(*) AS n FROM ({_audience_sql(site)}) audience", site.id)
    return int(row["n"]) if row else 0


async def audience_emails(db: Database, site: Site) -> list[str]:
    """The addresses that belong in the site's audience (not yet normalised for a format)."""
    rows = await db.fetchall(_audience_sql(site), site.id)
    return [r["email"] for r in rows if r["email"] and r["email"].strip()]


@dataclass
class Audience:
    format: str
    hashes: list[str]

    @property
    def size(self) -> int:
        return len(self.hashes)

    @property
    def too_small(self) -> bool:
        return self.size < MIN_AUDIENCE

    def warning(self) -> str | None:
        if not self.too_small:
            return None
        return (
            f"this audience has {self.size} people; Meta needs at least {MIN_AUDIENCE} to use a custom audience"
            " (and Google Customer Match needs more to serve ads)"
        )

    def csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\r\n")
        writer.writerow([FORMATS[self.format]])
        for h in self.hashes:
            writer.writerow([h])
        return buf.getvalue()


async def build_audience(db: Database, site: Site, fmt: str) -> Audience:
    if fmt not in FORMATS:
        raise ValueError(f"unknown audience format {fmt!r}: use google or meta")
    hashes = sorted({hash_email(e, fmt) for e in await audience_emails(db, site)})
    return Audience(fmt, hashes)
