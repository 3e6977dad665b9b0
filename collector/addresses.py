"""Email addresses: the one normaliser and checker of the project (placeholder until email-validator lands)."""

from __future__ import annotations


def normalize_email(email: str) -> str:
    return email.strip().lower()


def check_email(value: str) -> str:
    value = value.strip()
    if "@" not in value:
        raise ValueError("not a valid email address")
    return value
