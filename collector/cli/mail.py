"""The deliverability commands: `dkim create|list` and `suppressions add|remove|import|export|list`."""

from __future__ import annotations

import argparse
import csv
import io
import time

from collector.addresses import check_email, normalize_email
from collector.cli.common import Parser, UsageError, output, read_input
from collector.config import Config
from collector.recovery.dkim import DEFAULT_SELECTOR, DkimError, create_key, list_keys
from collector.store import Store, suppressions


# -- dkim ----------------------------------------------------------------------------------------
async def cmd_dkim_create(args: argparse.Namespace, store: Store, config: Config) -> int:
    try:
        key = await create_key(store.db, args.domain, args.selector, config.secret_key)
    except DkimError as exc:
        raise UsageError(str(exc)) from None
    print(key.record())
    return 0


async def cmd_dkim_list(args: argparse.Namespace, store: Store, config: Config) -> int:
    keys = await list_keys(store.db)
    if not keys:
        print("no DKIM keys: make one with `cartback dkim create --domain DOMAIN`")
    for key in keys:
        made = time.strftime("%Y-%m-%d", time.gmtime(key.created_at))
        print(f"{key.domain}\tselector {key.selector}\tmade {made}")
        print(f"  {key.record()}")
    return 0


# -- suppressions -----------------------------------------------------------------------------
def _checked(value: str, where: str) -> str:
    try:
        check_email(value)
    except ValueError as exc:
        raise UsageError(f"{where}: {value!r} is not a valid address ({exc}); nothing was changed") from None
    return normalize_email(value)


def parse_addresses(text: str, source: str) -> list[str]:
    """One address a line, or a CSV whose header (any case) has an `email` column. Every address is
    checked first; one bad line names itself and nothing is imported."""
    text = text.lstrip("\ufeff")
    rows = list(csv.reader(io.StringIO(text)))
    header = [c.strip().lower() for c in rows[0]] if rows else []
    found: list[str] = []
    if "email" in header:
        col = header.index("email")
        for n, row in enumerate(rows[1:], start=2):
            if not row or not any(c.strip() for c in row):
                continue
            value = row[col].strip() if col < len(row) else ""
            found.append(_checked(value, f"{source} line {n}"))
        return found
    for n, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            found.append(_checked(line.strip(), f"{source} line {n}"))
    return found


async def cmd_suppressions_add(args: argparse.Namespace, store: Store, config: Config) -> int:
    addrs = [_checked(e, "address") for e in args.emails]
    added = await suppressions.add(store.db, addrs, suppressions.MANUAL, "added by hand", time.time())
    print(f"suppressed {added} address(es); {len(set(addrs)) - added} already on the list")
    return 0


async def cmd_suppressions_remove(args: argparse.Namespace, store: Store, config: Config) -> int:
    addrs = [_checked(e, "address") for e in args.emails]
    removed = await suppressions.remove(store.db, addrs)
    print(f"removed {removed} address(es) from the list; {len(set(addrs)) - removed} were not on it")
    return 0


async def cmd_suppressions_import(args: argparse.Namespace, store: Store, config: Config) -> int:
    text, source = read_input(args.file)
    addrs = parse_addresses(text, source)
    if not addrs:
        raise UsageError(f"{source}: no addresses found (one a line, or a CSV with an email column)")
    added = await suppressions.add(store.db, addrs, suppressions.MANUAL, f"imported from {source}", time.time())
    print(f"imported {added} new address(es); {len(set(addrs)) - added} already on the list")
    return 0


async def cmd_suppressions_export(args: argparse.Namespace, store: Store, config: Config) -> int:
    rows = await suppressions.list_all(store.db)
    with output(args.output) as out:
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["email"])
        for row in rows:
            writer.writerow([row["email"]])
    return 0


async def cmd_suppressions_list(args: argparse.Namespace, store: Store, config: Config) -> int:
    for row in await suppressions.list_all(store.db):
        made = time.strftime("%Y-%m-%d %H:%M", time.gmtime(float(row["created_at"])))
        print(f"{row['email']}\t{row['reason']}\t{made}\t{row['detail'] or ''}".rstrip())
    return 0


def add_commands(sub: argparse._SubParsersAction[Parser]) -> None:
    dkim = sub.add_parser("dkim", help="DKIM keys of the sending domains").add_subparsers(
        dest="dkim_command", required=True, parser_class=Parser
    )
    p = dkim.add_parser("create", help="make (or rotate) a domain's key and print the DNS record to publish")
    p.add_argument("--domain", required=True)
    p.add_argument("--selector", default=DEFAULT_SELECTOR)
    p.set_defaults(func=cmd_dkim_create)
    dkim.add_parser("list", help="the domains, selectors and records").set_defaults(func=cmd_dkim_list)

    sup = sub.add_parser("suppressions", help="addresses that never get email").add_subparsers(
        dest="suppressions_command", required=True, parser_class=Parser
    )
    p = sup.add_parser("add", help="suppress addresses")
    p.add_argument("emails", nargs="+", metavar="EMAIL")
    p.set_defaults(func=cmd_suppressions_add)
    p = sup.add_parser("remove", help="take addresses off the list")
    p.add_argument("emails", nargs="+", metavar="EMAIL")
    p.set_defaults(func=cmd_suppressions_remove)
    p = sup.add_parser("import", help="suppress the addresses of a file (one a line, or a CSV with an email column)")
    p.add_argument("file", help="the file, or - for standard input")
    p.set_defaults(func=cmd_suppressions_import)
    p = sup.add_parser("export", help="the list as CSV (header: email)")
    p.add_argument("--output")
    p.set_defaults(func=cmd_suppressions_export)
    sup.add_parser("list", help="the list: address, reason, when").set_defaults(func=cmd_suppressions_list)
