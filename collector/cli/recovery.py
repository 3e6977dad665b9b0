"""The recovery commands: send-due (one pass of the sweep) and codes import (the discount code pool)."""

from __future__ import annotations

import argparse

from collector.cli.common import Parser, UsageError, read_input, require_site
from collector.config import Config
from collector.recovery.codes import parse_codes
from collector.recovery.sweep import format_summary, sweep_once
from collector.security import Signer
from collector.services import Services
from collector.store import Store, codes


async def cmd_send_due(args: argparse.Namespace, store: Store, config: Config) -> int:
    summary = await sweep_once(Services(config=config, store=store, signer=Signer(config.secret_key)))
    print(format_summary(summary))
    return 0


async def cmd_codes_import(args: argparse.Namespace, store: Store, config: Config) -> int:
    site = await require_site(store, args.site)
    text, source = read_input(args.file)
    try:
        found = parse_codes(text.lstrip("\ufeff"), source)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not found:
        raise UsageError(f"{source}: no codes found (one code a line, or a CSV with the codes in its first column)")
    added, free = await codes.add(store.db, site.id, found)
    skipped = len(found) - added
    note = f" ({skipped} already in the pool)" if skipped else ""
    print(f"imported {added} code(s){note}; {free} unused code(s) in the pool of site {site.key}")
    return 0


def add_commands(sub: argparse._SubParsersAction[Parser]) -> None:
    sub.add_parser("send-due", help="one pass of the sweep: abandoned carts, due emails, due webhooks").set_defaults(
        func=cmd_send_due
    )

    group = sub.add_parser("codes", help="discount code pools").add_subparsers(
        dest="codes_command", required=True, parser_class=Parser
    )
    p = group.add_parser("import", help="add one-time codes to a site's pool (one a line, or CSV first column)")
    p.add_argument("--site", required=True)
    p.add_argument("file", help="the file of codes, or - for standard input")
    p.set_defaults(func=cmd_codes_import)
