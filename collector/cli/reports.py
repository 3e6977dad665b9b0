"""The report commands: reports send-weekly (last week's report to every user who wants it) and the per-user switch."""

from __future__ import annotations

import argparse

from collector.cli.common import Parser, UsageError, email_arg
from collector.config import Config
from collector.reports.weekly import send_weekly
from collector.security import Signer
from collector.services import Services
from collector.store import Store, users


async def cmd_send_weekly(args: argparse.Namespace, store: Store, config: Config) -> int:
    sent = await send_weekly(Services(config=config, store=store, signer=Signer(config.secret_key)))
    print(f"weekly report: sent to {sent} user(s)")
    return 0


async def cmd_weekly_switch(args: argparse.Namespace, store: Store, config: Config) -> int:
    user = await store.users.get(email_arg(args.email))
    if user is None:
        raise UsageError(f"--email: no dashboard user {args.email}")
    await users.set_weekly_report(store.db, int(user["id"]), args.state == "on")
    print(f"weekly report {args.state} for {user['email']}")
    return 0


def add_commands(sub: argparse._SubParsersAction[Parser]) -> None:
    group = sub.add_parser("reports", help="the weekly report email").add_subparsers(
        dest="reports_command", required=True, parser_class=Parser
    )
    group.add_parser("send-weekly", help="send last week's report to each user who has not had it").set_defaults(
        func=cmd_send_weekly
    )
    p = group.add_parser("weekly", help="turn one user's weekly report on or off")
    p.add_argument("state", choices=["on", "off"])
    p.add_argument("--email", required=True)
    p.set_defaults(func=cmd_weekly_switch)
