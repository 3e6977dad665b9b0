"""Email addresses: the one checker (email-validator) and the one normaliser of the project.

- check_email(value): is this an address Cartback takes? Returns it in email-validator's normalised
  form, raises ValueError with a short reason.
- normalize_email(addr): the form the store compares and keys on (stripped, lower case).
- needs_smtputf8(addr): whether the address can only be sent to over SMTPUTF8.

The snippet's isEmail (snippet/src/util.js) must never accept an address check_email refuses
(tests/test_email_parity.py): the shopper would see a discount code and the lead would be lost.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

__all__ = ["check_email", "needs_smtputf8", "normalize_email"]


def normalize_email(email: str) -> str:
    """The form the store compares on: surrounding whitespace off, lower case."""
    return email.strip().lower()


def check_email(value: str, *, allow_test_domain: bool = False) -> str:
    """``value`` stripped and checked; returned in email-validator's normalised form.

    The normalised form keeps the local part as typed (NFC-normalised; only RFC 2142 role names such
    as postmaster are lowercased), lowercases the domain and writes an IDN domain in Unicode
    (``ann@XN--BCHER-KVA.de`` and ``ann@Bücher.de`` both give ``ann@bücher.de``), so one mailbox
    typed two ways is one address. It is not lowercased: normalize_email does that for the store.

    Refused: anything RFC 5321/5322 refuses for an unquoted address, a local part over 64 characters,
    more than 254 bytes, quoted local parts, IP-address domains, single-label domains, numeric TLDs
    and special-use domains (localhost, .local, .test, .invalid, ...). Non-ASCII local parts and
    internationalised domains are accepted (the local part then needs SMTPUTF8: needs_smtputf8).

    ``allow_test_domain`` lets @*.test through (RFC 6761): for the shop's own From address in test
    and staging set-ups, never for a shopper's address.
    """
    try:
        checked = validate_email(
            value.strip(),
            check_deliverability=False,
            strict=True,  # also the 64-character limit on the local part (RFC 5321 4.5.3.1.1)
            test_environment=allow_test_domain,
        )
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    return checked.normalized


def needs_smtputf8(addr: str) -> bool:
    """True when the local part is not ASCII: only an SMTPUTF8 server can deliver to it.

    A non-ASCII domain alone does not need SMTPUTF8: it can be sent in its IDNA ASCII form.
    """
    local, at, _ = addr.strip().rpartition("@")
    return not (local if at else addr).isascii()
