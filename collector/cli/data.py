"""Getting data out: leads and audiences exports, and a shopper's data exported or forgotten."""

from __future__ import annotations

import argparse
import json
import sys

from collector.audiences import CONSENTS, build_audience, consent_flags
from collector.cli.common import Parser, email_arg, output, require_site, time_range
from collector.config import Config
from collector.exports import lead_csv_chunks
from collector.shoppers import export_shopper, forget_shopper
from collector.store import Store


async def cmd_leads_export(args: argparse.Namespace, store: Store, config: Config) -> int:
    site = await require_site(store, args.site)
    since, until = time_range(args)
    with output(args.output) as out:
        async for chunk in lead_csv_chunks(store.db, site.id, since, until):
            out.write(chunk)
    return 0


async def cmd_audiences_export(args: argparse.Namespace, store: Store, config: Config) -> int:
    site = await require_site(store, args.site)
    audience = await build_audience(store.db, site, args.format, args.consent)
    warning = audience.warning()
    if warning:
        print(f"cartback: warning: {warning}", file=sys.stderr)
    if args.consent:
        print(f"cartback: upload this file with {consent_flags(args.consent)}", file=sys.stderr)
    elif args.format == "google":
        print(
            "cartback: note: Google Customer Match wants consent declared per upload:"
            " export --consent granted and --consent not-granted as separate files",
            file=sys.stderr,
        )
    with output(args.output) as out:
        out.write(audience.csv())
    if args.output:
        print(f"{audience.size} people written to {args.output}", file=sys.stderr)
    return 0


async def cmd_shoppers_export(args: argparse.Namespace, store: Store, config: Config) -> int:
    site = await require_site(store, args.site)
    data = await export_shopper(store.db, site, email_arg(args.email))
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")
    return 0


async def cmd_shoppers_forget(args: argparse.Namespace, store: Store, config: Config) -> int:
    site = await require_site(store, args.site)
    email = email_arg(args.email)
    counts = await forget_shopper(store.db, site, email)
    parts = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items() if v)
    print(f"forgot {email} on {site.key}: {parts or 'nothing was stored'}; orders kept without the address")
    return 0


def add_commands(sub: argparse._SubParsersAction[Parser]) -> None:
    leads = sub.add_parser("leads", help="leads").add_subparsers(
        dest="leads_command", required=True, parser_class=Parser
    )
    p = leads.add_parser("export")
    p.add_argument("--site", required=True)
    p.add_argument("--since")
    p.add_argument("--until")
    p.add_argument("--output")
    p.set_defaults(func=cmd_leads_export)

    audiences = sub.add_parser("audiences", help="retargeting audiences").add_subparsers(
        dest="audiences_command", required=True, parser_class=Parser
    )
    p = audiences.add_parser("export", help="hashed emails of shoppers who abandoned a cart (CSV)")
    p.add_argument("--site", required=True)
    p.add_argument("--format", required=True, choices=["google", "meta"])
    p.add_argument(
        "--consent", choices=list(CONSENTS), help="only the shoppers who gave consent, or only those who did not"
    )
    p.add_argument("--output")
    p.set_defaults(func=cmd_audiences_export)

    shoppers = sub.add_parser("shoppers", help="a shopper's data: export or forget").add_subparsers(
        dest="shoppers_command", required=True, parser_class=Parser
    )
    p = shoppers.add_parser("export", help="everything stored about one shopper, as JSON")
    p.add_argument("--site", required=True)
    p.add_argument("--email", required=True)
    p.set_defaults(func=cmd_shoppers_export)
    p = shoppers.add_parser("forget", help="remove one shopper's data (orders are kept without the address)")
    p.add_argument("--site", required=True)
    p.add_argument("--email", required=True)
    p.set_defaults(func=cmd_shoppers_forget)
