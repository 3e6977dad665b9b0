"""Signed links in reminder emails, and the restore token they carry to the store."""

from __future__ import annotations

from collector.security import Signer

RESTORE_MAX_AGE = 30 * 86400


def make_restore_token(signer: Signer, cart_id: int) -> str:
    return signer.dumps({"c": cart_id}, "restore")


def load_restore_token(signer: Signer, token: str) -> int | None:
    value = signer.loads(token, "restore", RESTORE_MAX_AGE)
    if isinstance(value, dict) and isinstance(value.get("c"), int):
        return value["c"]
    return None
