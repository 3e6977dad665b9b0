"""The `cartback` command: serve, migrate, sites, users, tokens, exports and the sweep."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from pydantic import ValidationError

from collector.config import Config, ConfigError, load_config
from collector.schemas import SiteSettings, format_validation_error
from collector.snippet import snippet_html
from collector.store import Store, open_database


class UsageError(Exception):
    """Bad usage or bad input: exit status 2 with a one-line reason."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, as every other bad-input answer of the command.
        raise UsageError(message)


Command = Callable[[argparse.Namespace, Store, Config], Awaitable[int]]


def _origin(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/") or parts.query:
        raise UsageError(f"--origin {value!r}: give scheme, host and port only, like https://shop.example")
    return f"{parts.scheme}://{parts.netloc}".lower()


def load_settings_file(path: str) -> SiteSettings:
    try:
        raw = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror}") from None
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise UsageError(f"{path}: not valid JSON ({exc})") from None
    try:
        return SiteSettings.model_validate(doc)
    except ValidationError as exc:
        raise UsageError(f"{path}: {format_validation_error(exc)}") from None


async def require_site(store: Store, key: str) -> Any:
    site = await store.get_site(key, fresh=True)
    if site is None:
        raise UsageError(f"no site with key {key!r}")
    return site


def open_output(path: str | None) -> Any:
    if path is None:
        return sys.stdout
    try:
        return open(path, "w", encoding="utf-8", newline="")
    except OSError as exc:
        raise UsageError(f"--output {path}: {exc.strerror}") from None


# -- commands --------------------------------------------------------------------
async def cmd_migrate(args: argparse.Namespace, store: Store, config: Config) -> int:
    applied = await store.db.migrate()
    print(f"migrated: {len(applied)} migration(s) applied" if applied else "migrated: up to date")
    return 0


def site_json(site: Any, config: Config) -> dict[str, Any]:
    return {"key": site.key, "name": site.name, "origins": site.origins, "snippet": snippet_html(config.public_url, site.key)}


async def cmd_sites_create(args: argparse.Namespace, store: Store, config: Config) -> int:
    origins = [_origin(o) for o in args.origin]
    if not args.name.strip() or len(args.name) > 200:
        raise UsageError("--name must be 1 to 200 characters")
    settings = load_settings_file(args.settings) if args.settings else None
    site = await store.create_site(args.name.strip(), origins, settings)
    if args.json:
        print(json.dumps(site_json(site, config)))
    else:
        print(f"site {site.key} created for {', '.join(site.origins)}")
        print("paste this into every page of the store:")
        print(snippet_html(config.public_url, site.key))
    return 0


async def cmd_sites_update(args: argparse.Namespace, store: Store, config: Config) -> int:
    await require_site(store, args.key)
    settings = load_settings_file(args.settings) if args.settings else None
    origins = [_origin(o) for o in args.origin] if args.origin else None
    if settings is None and origins is None and args.name is None:
        raise UsageError("nothing to update: give --settings, --origin or --name")
    site = await store.update_site(args.key, settings=settings, origins=origins, name=args.name)
    print(f"site {site.key} updated")
    return 0


async def cmd_sites_list(args: argparse.Namespace, store: Store, config: Config) -> int:
    sites = await store.list_sites()
    if args.json:
        print(json.dumps([site_json(s, config) for s in sites]))
    else:
        for s in sites:
            print(f"{s.key}\t{s.name}\t{' '.join(s.origins)}")
    return 0


async def cmd_users_create(args: argparse.Namespace, store: Store, config: Config) -> int:
    if not args.password_stdin:
        raise UsageError("give the password on standard input with --password-stdin")
    password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < 8:
        raise UsageError("the password must be at least 8 characters")
    from collector.schemas import EMAIL_RE

    if not EMAIL_RE.match(args.email.strip()):
        raise UsageError(f"--email {args.email!r}: not a valid email address")
    if not await store.create_user(args.email, password):
        raise UsageError(f"a login for {args.email} exists already")
    print(f"user {args.email.strip().lower()} created")
    return 0


async def cmd_tokens_create(args: argparse.Namespace, store: Store, config: Config) -> int:
    if not args.name.strip():
        raise UsageError("--name must not be empty")
    token = await store.create_token(args.name.strip())
    print(token)
    return 0


def parse_range(args: argparse.Namespace) -> tuple[float | None, float | None]:
    from collector.exports import parse_time

    try:
        return parse_time(args.since), parse_time(args.until)
    except ValueError:
        raise UsageError("--since and --until take ISO 8601 dates, like 2026-11-01 or 2026-11-01T12:00:00Z") from None


async def cmd_leads_export(args: argparse.Namespace, store: Store, config: Config) -> int:
    from collector.exports import lead_csv_chunks

    site = await require_site(store, args.site)
    since, until = parse_range(args)
    out = open_output(args.output)
    try:
        async for chunk in lead_csv_chunks(store.db, site.id, since, until):
            out.write(chunk)
    finally:
        if out is not sys.stdout:
            out.close()
        else:
            out.flush()
    return 0


async def cmd_demo_setup(args: argparse.Namespace, store: Store, config: Config) -> int:
    """Creates the demo site and an admin login when none exist (used by `make run`)."""
    from collector.demo import DEMO_SITE_NAME

    sites = await store.list_sites()
    demo = next((s for s in sites if s.name == DEMO_SITE_NAME), None)
    if demo is None:
        settings = SiteSettings.model_validate(
            {
                "popup": {"delay_ms": 500, "cap_days": 0, "shipping_note": "Free shipping over 50 EUR, free returns for 30 days."},
                "recovery": {
                    "abandon_after_minutes": 1,
                    "cart_url": f"{config.public_url}/demo",
                    "from": "Demo store <shop@example.com>",
                    "steps": [
                        {"delay_minutes": 0, "subject": "You left something in your cart"},
                        {"delay_minutes": 2, "subject": "Still thinking? Here's 10% off", "discount_code": "SAVE10"},
                    ],
                },
            }
        )
        origins = {config.public_url.lower(), "http://127.0.0.1:8000", "http://localhost:8000"}
        demo = await store.create_site(DEMO_SITE_NAME, sorted(origins), settings)
    login_file = config.data_dir / "demo-login.txt"
    if await store.count_users() == 0:
        password = secrets.token_urlsafe(12)
        await store.create_user("admin@example.com", password)
        config.data_dir.mkdir(parents=True, exist_ok=True)
        login_file.write_text(f"admin@example.com {password}\n")
        os.chmod(login_file, 0o600)
    login = login_file.read_text().split() if login_file.exists() else None
    print(f"demo storefront: {config.public_url}/demo")
    print(f"dashboard:       {config.public_url}/admin")
    if login:
        print(f"demo login:      {login[0]} / {login[1]}")
    print(f"demo site key:   {demo.key}")
    return 0


def cmd_serve(args: argparse.Namespace, config: Config) -> int:
    import uvicorn

    async def prepare() -> None:
        store = Store(open_database(config.database_url))
        await store.connect()
        try:
            await store.db.migrate()
        finally:
            await store.close()

    asyncio.run(prepare())
    uvicorn.run(
        "collector.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers if args.workers > 1 else None,
        access_log=False,
        log_level="info",
    )
    return 0


# -- wiring ----------------------------------------------------------------------------
def build_parser() -> Parser:
    parser = Parser(prog="cartback", description="Cartback: cart-abandonment recovery you own.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = sub.add_parser("serve", help="run the collector")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="processes (use PostgreSQL for more than one machine)")
    p.set_defaults(sync=cmd_serve)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate, no_auto_migrate=True)
    sub.add_parser("demo-setup", help="create the demo site and login if missing").set_defaults(func=cmd_demo_setup)

    sites = sub.add_parser("sites", help="manage sites").add_subparsers(dest="sites_command", required=True, parser_class=Parser)
    p = sites.add_parser("create")
    p.add_argument("--name", required=True)
    p.add_argument("--origin", action="append", required=True)
    p.add_argument("--settings")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sites_create)
    p = sites.add_parser("update")
    p.add_argument("key")
    p.add_argument("--settings")
    p.add_argument("--origin", action="append")
    p.add_argument("--name")
    p.set_defaults(func=cmd_sites_update)
    p = sites.add_parser("list")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sites_list)

    users = sub.add_parser("users", help="dashboard logins").add_subparsers(dest="users_command", required=True, parser_class=Parser)
    p = users.add_parser("create")
    p.add_argument("--email", required=True)
    p.add_argument("--password-stdin", action="store_true")
    p.set_defaults(func=cmd_users_create)

    tokens = sub.add_parser("tokens", help="API tokens").add_subparsers(dest="tokens_command", required=True, parser_class=Parser)
    p = tokens.add_parser("create")
    p.add_argument("--name", required=True)
    p.set_defaults(func=cmd_tokens_create)

    leads = sub.add_parser("leads", help="leads").add_subparsers(dest="leads_command", required=True, parser_class=Parser)
    p = leads.add_parser("export")
    p.add_argument("--site", required=True)
    p.add_argument("--since")
    p.add_argument("--until")
    p.add_argument("--output")
    p.set_defaults(func=cmd_leads_export)

    # Commands of the recovery and dashboard packages.
    for name in ("collector.recovery.commands", "collector.dashboard.commands"):
        try:
            module = __import__(name, fromlist=["add_commands"])
        except ModuleNotFoundError as exc:
            if exc.name is None or not name.startswith(exc.name):
                raise
            continue
        module.add_commands(sub, Parser)
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
    try:
        args = build_parser().parse_args(argv)
        config = load_config()
        if getattr(args, "sync", None):
            return args.sync(args, config)
        return asyncio.run(_run(args.func, args, config))
    except (UsageError, ConfigError) as exc:
        print(f"cartback: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - one line for the user, not a traceback
        print(f"cartback: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
