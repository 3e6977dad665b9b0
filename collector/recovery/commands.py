"""The recovery commands of `cartback`: send-due (one sweep) and codes import (the discount code pool)."""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from types import SimpleNamespace
from typing import Any

from collector.config import Config
from collector.security import Signer
from collector.store import Store

MAX_CODE_LENGTH = 64
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_HEADERS = {"code", "codes", "discount_code", "discount code", "coupon", "coupon_code"}


def _usage(message: str) -> Exception:
    from collector.cli import UsageError

    return UsageError(message)


def sweep_state(store: Store, config: Config) -> Any:
    """What the server's app.state gives the sweep, built from the configuration."""
    return SimpleNamespace(store=store, config=config, signer=Signer(config.secret_key))


async def cmd_send_due(args: argparse.Namespace, store: Store, config: Config) -> int:
    from collector.recovery.sweep import format_summary, sweep_once

    summary = await sweep_once(sweep_state(store, config))
    print(format_summary(summary))
    return 0


def parse_codes(text: str, source: str) -> list[str]:
    """One code a line; a CSV's first column also works, with or without a header row."""
    codes: list[str] = []
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
            raise _usage(f"{source}:{lineno}: a code is at most {MAX_CODE_LENGTH} characters")
        if _BAD_CHARS.search(code):
            raise _usage(f"{source}:{lineno}: control characters in a code")
        if code not in seen:
            seen.add(code)
            codes.append(code)
    return codes


async def cmd_codes_import(args: argparse.Namespace, store: Store, config: Config) -> int:
    from collector.cli import require_site
    from collector.recovery.queue import import_codes

    site = await require_site(store, args.site)
    if args.file == "-":
        text, source = sys.stdin.read(), "standard input"
    else:
        try:
            with open(args.file, encoding="utf-8-sig", newline="") as f:
                text = f.read()
        except OSError as exc:
            raise _usage(f"{args.file}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise _usage(f"{args.file}: not UTF-8 text") from None
        source = args.file
    codes = parse_codes(text.lstrip("\ufeff"), source)
    if not codes:
        raise _usage(f"{source}: no codes found (one code a line, or a CSV with the codes in its first column)")
    added, free = await import_codes(store.db, site.id, codes)
    skipped = len(codes) - added
    note = f" ({skipped} already in the pool)" if skipped else ""
    print(f"imported {added} code(s){note}; {free} unused code(s) in the pool of site {site.key}")
    return 0


def add_commands(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    sub.add_parser(
        "send-due", help="one pass of the sweep: abandoned carts, due emails, due webhooks"
    ).set_defaults(func=cmd_send_due)

    codes = sub.add_parser("codes", help="discount code pools").add_subparsers(
        dest="codes_command", required=True, parser_class=parser_class
    )
    p = codes.add_parser("import", help="add one-time codes to a site's pool (one a line, or CSV first column)")
    p.add_argument("--site", required=True)
    p.add_argument("file", help="the file of codes, or - for standard input")
    p.set_defaults(func=cmd_codes_import)
