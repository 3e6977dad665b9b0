"""What a reminder offers: a code from the site's pool, the shopper's variant of a discount test, or the step's code."""

from __future__ import annotations

import csv
import io
import re

from collector.experiments.assignment import assign, assign_email
from collector.locales import step_subject
from collector.schemas import Step
from collector.store import Database, Row, Site, Tx, codes, emails

MAX_CODE_LENGTH = 64
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_HEADERS = {"code", "codes", "discount_code", "discount code", "coupon", "coupon_code"}


def subject_and_variants(site: Site, step: int, to_addr: str, locale: str = "en") -> tuple[str, dict[str, str] | None]:
    """The step's subject (the locale's where the site left it out), or the address's variant of a running subject test."""
    subject = site.settings.recovery.steps[step].subject or step_subject(locale, step)
    for exp in site.settings.experiments:
        if exp.kind != "subject" or not exp.enabled or exp.step != step:
            continue
        name = assign_email(exp.name, to_addr, [(v.name, v.weight) for v in exp.variants])
        variant = next(v for v in exp.variants if v.name == name)
        return (variant.subject or subject), {exp.name: name}
    return subject, None


def discount_variant(site: Site, visitor_id: str, code: str) -> tuple[str, dict[str, str] | None]:
    """A step that offers a code offers the shopper's variant of a running discount test instead:
    assigned from the cart's visitor id, as the snippet assigns it, so the popup and the reminders
    make one shopper the same offer."""
    for exp in site.settings.experiments:
        if exp.kind != "discount" or not exp.enabled:
            continue
        name = assign(exp.name, visitor_id, [(v.name, v.weight) for v in exp.variants])
        variant = next(v for v in exp.variants if v.name == name)
        return (variant.discount_code or code), {exp.name: name}
    return code, None


async def offer(
    tx: Tx, db: Database, site: Site, step: Step, cart: Row, email_id: int, now: float
) -> tuple[str | None, dict[str, str] | None]:
    """The code the email offers and the discount test variant it stands for, if any."""
    code = None
    if step.use_code_pool:
        code = await codes.take(tx, site.id, email_id, now, db.skip_locked)
    if code is None and step.discount_code is not None:
        code, variant = discount_variant(site, cart["visitor_id"], step.discount_code)
        return code or step.discount_code, variant
    return code, None


async def give_back(tx: Tx, email: Row) -> None:
    """A pool code goes back only when the email never reached an SMTP server: after a try
    whose outcome is unknown (a timeout after DATA) the shopper may hold that code already."""
    if email["attempts"] == 0 and await codes.give_back(tx, email["id"]):
        await emails.forget_code(tx, email["id"])


def parse_codes(text: str, source: str) -> list[str]:
    """One code a line; a CSV's first column also works, with or without a header row.

    Raises ValueError naming the file and line of the first bad code."""
    found: list[str] = []
    seen: set[str] = set()
    for lineno, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row:
            continue
        code = row[0].strip()
        if not code:
            continue
        if lineno == 1 and code.lower() in _HEADERS:
            continue
        if len(code) > MAX_CODE_LENGTH:
            raise ValueError(f"{source}:{lineno}: a code is at most {MAX_CODE_LENGTH} characters")
        if _BAD_CHARS.search(code):
            raise ValueError(f"{source}:{lineno}: control characters in a code")
        if code not in seen:
            seen.add(code)
            found.append(code)
    return found
