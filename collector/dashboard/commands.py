"""The dashboard's commands: `cartback audiences export` and `cartback shoppers forget|export`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from collector.config import Config
from collector.store import Store


def _cli() -> Any:
    from collector import cli  # imported late: cli imports this module while building its parser

    return cli


async def cmd_audiences_export(args: argparse.Namespace, store: Store, config: Config) -> int:
    from collector.audiences import build_audience

    cli = _cli()
    site = await cli.require_site(store, args.site)
    audience = await build_audience(store.db, site, args.format)
    warning = audience.warning()
    if warning:
        print(f"cartback: warning: {warning}", file=sys.stderr)
    out = cli.open_output(args.output)
    try:
        out.write(audience.csv())
    finally:
        if out is not sys.stdout:
            out.close()
        else:
            out.flush()
    if args.output:
        print(f"{audience.size} people written to {args.output}", file=sys.stderr)
    return 0


def _email_arg(value: str) -> str:
    from collector.schemas import EMAIL_RE

    cli = _cli()
    email = value.strip().lower()
    if not EMAIL_RE.match(email):
        raise cli.UsageError(f"--email {value!r}: not a valid email address")
    return email


async def cmd_shoppers_export(args: argparse.Namespace, store: Store, config: Config) -> int:
    from collector.shoppers import export_shopper

    site = await _cli().require_site(store, args.site)
    data = await export_shopper(store.db, site, _email_arg(args.email))
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")
    return 0


async def cmd_shoppers_forget(args: argparse.Namespace, store: Store, config: Config) -> int:
    from collector.shoppers import forget_shopper

    site = await _cli().require_site(store, args.site)
    email = _email_arg(args.email)
    counts = await forget_shopper(store.db, site, email)
    parts = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items() if v)
    print(f"forgot {email} on {site.key}: {parts or 'nothing was stored'}; orders kept without the address")
    return 0


def add_commands(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    audiences = sub.add_parser("audiences", help="retargeting audiences").add_subparsers(
        dest="audiences_command", required=True, parser_class=parser_class
    )
    p = audiences.add_parser("export", help="hashed emails of shoppers who abandoned a cart (CSV)")
    p.add_argument("--site", required=True)
    p.add_argument("--format", required=True, choices=["google", "meta"])
    p.add_argument("--output")
    p.set_defaults(func=cmd_audiences_export)

    shoppers = sub.add_parser("shoppers", help="a shopper's data: export or forget").add_subparsers(
        dest="shoppers_command", required=True, parser_class=parser_class
    )
    p = shoppers.add_parser("export", help="everything stored about one shopper, as JSON")
    p.add_argument("--site", required=True)
    p.add_argument("--email", required=True)
    p.set_defaults(func=cmd_shoppers_export)
    p = shoppers.add_parser("forget", help="remove one shopper's data (orders are kept without the address)")
    p.add_argument("--site", required=True)
    p.add_argument("--email", required=True)
    p.set_defaults(func=cmd_shoppers_forget)
