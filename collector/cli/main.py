"""`cartback`: parses the command line, runs one command, and turns every outcome into an exit status."""

from __future__ import annotations

import argparse
import asyncio
import sys

from collector.cli import admin, data, mail, recovery, reports
from collector.cli.common import Command, Parser, UsageError
from collector.config import Config, ConfigError, load_config
from collector.store import Store, open_database


def build_parser() -> Parser:
    parser = Parser(prog="cartback", description="Cartback: cart-abandonment recovery you own.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for group in (admin, data, recovery, reports, mail):
        group.add_commands(sub)
    return parser


async def _run(func: Command, args: argparse.Namespace, config: Config) -> int:
    store = Store(open_database(config.database_url))
    await store.connect()
    try:
        if not getattr(args, "no_auto_migrate", False):
            await store.db.migrate()
        return await func(args, store, config)
    finally:
        await store.close()


def main(argv: list[str] | None = None) -> int:
    """Exit status: 0 done, 2 bad usage or input (one line on standard error), 1 anything else."""
    try:
        args = build_parser().parse_args(argv)
        config = load_config()
        if getattr(args, "sync", None):
            return int(args.sync(args, config))
        return asyncio.run(_run(args.func, args, config))
    except (UsageError, ConfigError) as exc:
        print(f"cartback: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # The contract knows 0, 1 and 2: an interrupted command did not finish, which is 1.
        print("cartback: interrupted", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - one line for the user, not a traceback
        print(f"cartback: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
