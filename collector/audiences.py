"""Retargeting audiences: hashed email lists for Google Customer Match and Meta custom audiences.

Who is in the list: shoppers of the site whose cart was marked abandoned
(carts.abandoned_at is set) and that carry an email; where the site's settings require
consent (popup.require_consent), only those whose lead row has consent = 1. Addresses that
unsubscribed are left out: an unsubscribe is a request to be left alone.

Normalisation, then SHA-256 in lowercase hex:
- google: header `Email`; trimmed, lowercased, and for @gmail.com / @googlemail.com a `+suffix`
  and the dots of the part before the @ removed (the Data Manager API's formatting guide:
  cloudy.sanfrancisco+shopping@gmail.com -> cloudysanfrancisco@gmail.com);
- meta: header `email`; trimmed and lowercased.
One row per distinct hash, sorted, so that the same data gives the same file.

Consent (Google Customer Match, since March 2024): every upload declares `ad_user_data` and
`ad_personalization` for all of its people, so consented and unconsented addresses go in separate
files. `consent="granted"` keeps the addresses whose lead gave consent (GRANTED, GRANTED);
`consent="not-granted"` the others (DENIED, DENIED: never declare a consent the shopper did not give).
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
CONSENTS = ("granted", "not-granted")
# What to declare for an upload of each part (Google's Consent enum).
CONSENT_FLAGS = {
    "granted": {"ad_user_data": "GRANTED", "ad_personalization": "GRANTED"},
    "not-granted": {"ad_user_data": "DENIED", "ad_personalization": "DENIED"},
}


def consent_flags(consent: str) -> str:
    """`ad_user_data=GRANTED; ad_personalization=GRANTED`: what the upload of this part declares."""
    return "; ".join(f"{k}={v}" for k, v in CONSENT_FLAGS[consent].items())


def normalize(email: str, fmt: str) -> str:
    address = email.strip().lower()
    if fmt == "google":
        local, at, domain = address.rpartition("@")
        if at and domain in GMAIL_DOMAINS:
            address = local.split("+", 1)[0].replace(".", "") + "@" + domain
    return address


def hash_email(email: str, fmt: str) -> str:
    return hashlib.sha256(normalize(email, fmt).encode("utf-8")).hexdigest()


_CONSENTED = "EXISTS (SELECT 1 FROM leads l WHERE l.site_id = c.site_id AND l.email = c.email AND l.consent = 1)"


def _audience_sql(site: Site, consent: str | None = None) -> str:
    sql = (
        "SELECT DISTINCT c.email AS email FROM carts c WHERE c.site_id = ? AND c.abandoned_at IS NOT NULL"
        " AND c.email IS NOT NULL AND c.email <> ''"
        " AND NOT EXISTS (SELECT 1 FROM unsubscribes u WHERE u.site_id = c.site_id AND u.email = c.email)"
    )
    if site.settings.popup.require_consent or consent == "granted":
        sql += f" AND {_CONSENTED}"
    elif consent == "not-granted":
        sql += f" AND NOT {_CONSENTED}"
    return sql


async def audience_size(db: Database, site: Site) -> int:
    """How many people the audience has, counted by the database."""
    row = await db.fetchone(f"SELECT COUNT(*) AS n FROM ({_audience_sql(site)}) audience", site.id)
    return int(row["n"]) if row else 0


async def audience_emails(db: Database, site: Site, consent: str | None = None) -> list[str]:
    """The addresses that belong in the site's audience (not yet normalised for a format)."""
    rows = await db.fetchall(_audience_sql(site, consent), site.id)
    return [r["email"] for r in rows if r["email"] and r["email"].strip()]


@dataclass
class Audience:
    format: str
    hashes: list[str]
    consent: str | None = None  # None: everyone, whatever their consent

    def filename(self, site_key: str) -> str:
        """`audience-google-KEY-ad_user_data-GRANTED-ad_personalization-GRANTED.csv` for a consent part."""
        flags = "".join(f"-{k}-{v}" for k, v in CONSENT_FLAGS[self.consent].items()) if self.consent else ""
        return f"audience-{self.format}-{site_key}{flags}.csv"

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


async def build_audience(db: Database, site: Site, fmt: str, consent: str | None = None) -> Audience:
    if fmt not in FORMATS:
        raise ValueError(f"unknown audience format {fmt!r}: use google or meta")
    if consent is not None and consent not in CONSENTS:
        raise ValueError(f"unknown consent {consent!r}: use granted or not-granted")
    hashes = sorted({hash_email(e, fmt) for e in await audience_emails(db, site, consent)})
    return Audience(fmt, hashes, consent)
