"""Setting Cartback up: serve, migrate, demo-setup, sites, users and tokens."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from collector.cli.common import Parser, UsageError, email_arg, load_settings_file, origin, require_site
from collector.config import Config
from collector.demo import DEMO_SITE_NAME, PLATFORM_DEMOS
from collector.schemas import SiteSettings
from collector.server import uvicorn_options
from collector.store import Site, Store, open_database
from collector.tag import snippet_html


async def cmd_migrate(args: argparse.Namespace, store: Store, config: Config) -> int:
    applied = await store.db.migrate()
    print(f"migrated: {len(applied)} migration(s) applied" if applied else "migrated: up to date")
    return 0


def site_json(site: Site, config: Config) -> dict[str, Any]:
    return {
        "key": site.key,
        "name": site.name,
        "origins": site.origins,
        "snippet": snippet_html(config.public_url, site.key),
        # None when the stored settings validate; else why not (the site runs switched off).
        "needs_attention": site.problem,
    }


async def cmd_sites_create(args: argparse.Namespace, store: Store, config: Config) -> int:
    origins = [origin(o) for o in args.origin]
    if not args.name.strip() or len(args.name) > 200:
        raise UsageError("--name must be 1 to 200 characters")
    settings = load_settings_file(args.settings) if args.settings else None
    site = await store.sites.create(args.name.strip(), origins, settings)
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
    origins = [origin(o) for o in args.origin] if args.origin else None
    if settings is None and origins is None and args.name is None:
        raise UsageError("nothing to update: give --settings, --origin or --name")
    site = await store.sites.update(args.key, settings=settings, origins=origins, name=args.name)
    assert site is not None
    print(f"site {site.key} updated")
    return 0


async def cmd_sites_list(args: argparse.Namespace, store: Store, config: Config) -> int:
    sites = await store.sites.list()
    if args.json:
        print(json.dumps([site_json(s, config) for s in sites]))
    else:
        for s in sites:
            print(f"{s.key}\t{s.name}\t{' '.join(s.origins)}")
        for s in sites:
            if s.problem is not None:
                print(
                    f"{s.key}: needs attention: its stored settings are invalid ({s.problem}); it shows no popup and"
                    f" sends nothing until `cartback sites update {s.key} --settings FILE.json`",
                    file=sys.stderr,
                )
    return 0


def _password_from_stdin(args: argparse.Namespace) -> str:
    if not args.password_stdin:
        raise UsageError("give the password on standard input with --password-stdin")
    password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < 8:
        raise UsageError("the password must be at least 8 characters")
    return password


async def cmd_users_create(args: argparse.Namespace, store: Store, config: Config) -> int:
    password = _password_from_stdin(args)
    email = email_arg(args.email)
    if not await store.users.create(email, password):
        raise UsageError(f"a login for {args.email} exists already")
    print(f"user {email} created")
    return 0


async def cmd_users_list(args: argparse.Namespace, store: Store, config: Config) -> int:
    for user in await store.users.list_users():
        print(f"{user['email']}\tcreated {_iso(user['created_at'])}")
    return 0


async def cmd_users_delete(args: argparse.Namespace, store: Store, config: Config) -> int:
    email = email_arg(args.email)
    if not await store.users.delete(email):
        raise UsageError(f"no login for {args.email}")
    print(f"user {email} deleted")
    return 0


async def cmd_users_set_password(args: argparse.Namespace, store: Store, config: Config) -> int:
    password = _password_from_stdin(args)
    email = email_arg(args.email)
    if await store.users.get(email) is None:
        raise UsageError(f"no login for {args.email}")
    await store.users.set_password(email, password)
    print(f"password of {email} changed; its sessions have ended")
    return 0


async def cmd_tokens_list(args: argparse.Namespace, store: Store, config: Config) -> int:
    # The tokens themselves were shown once and are not kept: only their ids and names are.
    for token in await store.users.list_tokens():
        print(f"{token['id']}\t{token['name']}\tcreated {_iso(token['created_at'])}")
    return 0


async def cmd_tokens_revoke(args: argparse.Namespace, store: Store, config: Config) -> int:
    if not await store.users.revoke_token(args.id):
        raise UsageError(f"no token with id {args.id} (see `cartback tokens list`)")
    print(f"token {args.id} revoked")
    return 0


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def cmd_tokens_create(args: argparse.Namespace, store: Store, config: Config) -> int:
    if not args.name.strip():
        raise UsageError("--name must not be empty")
    token = await store.users.create_token(args.name.strip())
    print(token)
    return 0


async def cmd_demo_setup(args: argparse.Namespace, store: Store, config: Config) -> int:
    """Creates the demo site and an admin login when none exist (used by `make run`)."""
    sites = await store.sites.list()
    demo = next((s for s in sites if s.name == DEMO_SITE_NAME), None)
    if demo is None:
        settings = SiteSettings.model_validate(
            {
                "popup": {
                    "delay_ms": 500,
                    "cap_days": 0,
                    "shipping_note": "Free shipping over 50 EUR, free returns for 30 days.",
                },
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
        # The demo page is served by the collector itself: its origin is the public URL's.
        public = urlsplit(config.public_url)
        origins = {f"{public.scheme}://{public.netloc}".lower(), "http://127.0.0.1:8000", "http://localhost:8000"}
        demo = await store.sites.create(DEMO_SITE_NAME, sorted(origins), settings)
    platform_demos = await _platform_demo_sites(store, config)
    login_file = config.data_dir / "demo-login.txt"
    if await store.users.count() == 0:
        password = secrets.token_urlsafe(12)
        await store.users.create("admin@example.com", password)
        config.data_dir.mkdir(parents=True, exist_ok=True)
        login_file.write_text(f"admin@example.com {password}\n")
        os.chmod(login_file, 0o600)
    login = login_file.read_text().split() if login_file.exists() else None
    print(f"demo storefront: {config.public_url}/demo")
    print(f"dashboard:       {config.public_url}/admin")
    if login:
        print(f"demo login:      {login[0]} / {login[1]}")
    print(f"demo site key:   {demo.key}")
    for kind, url in platform_demos.items():
        label = f"{kind} demo:"
        print(f"{label:<17} {url} (started by make run)")
    return 0


async def _platform_demo_sites(store: Store, config: Config) -> dict[str, str]:
    """The Shopify-like and WooCommerce-like demo stores' sites, created when missing; their keys go
    to data/demo-stores.json, which tests/fakes/demo_stores.py reads to paste each one's tag."""
    sites = {s.name: s for s in await store.sites.list()}
    out: dict[str, Any] = {"collector": config.public_url}
    urls = {}
    for kind, (name, port, cart_path) in PLATFORM_DEMOS.items():
        origin = f"http://127.0.0.1:{port}"
        site = sites.get(name)
        if site is None:
            settings = SiteSettings.model_validate(
                {
                    "popup": {"delay_ms": 500, "cap_days": 0},
                    "platform": {"kind": kind},
                    "recovery": {
                        "abandon_after_minutes": 1,
                        "cart_url": origin + cart_path,
                        "from": f"{name} <shop@example.com>",
                        "steps": [{"delay_minutes": 0, "subject": "You left something in your cart"}],
                    },
                }
            )
            site = await store.sites.create(name, [origin, f"http://localhost:{port}"], settings)
        out[kind] = {"key": site.key, "port": port}
        urls[kind] = origin + "/"
    config.data_dir.mkdir(parents=True, exist_ok=True)
    (config.data_dir / "demo-stores.json").write_text(json.dumps(out, indent=2) + "\n")
    return urls


def cmd_serve(args: argparse.Namespace, config: Config) -> int:
    import uvicorn  # only `serve` needs the server

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
        **uvicorn_options(config),
    )
    return 0


def add_commands(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser("serve", help="run the collector")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="processes (use PostgreSQL for more than one machine)")
    p.set_defaults(sync=cmd_serve)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate, no_auto_migrate=True)
    sub.add_parser("demo-setup", help="create the demo site and login if missing").set_defaults(func=cmd_demo_setup)

    sites = sub.add_parser("sites", help="manage sites").add_subparsers(
        dest="sites_command", required=True, parser_class=Parser
    )
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

    users = sub.add_parser("users", help="dashboard logins").add_subparsers(
        dest="users_command", required=True, parser_class=Parser
    )
    p = users.add_parser("create")
    p.add_argument("--email", required=True)
    p.add_argument("--password-stdin", action="store_true")
    p.set_defaults(func=cmd_users_create)
    p = users.add_parser("list")
    p.set_defaults(func=cmd_users_list)
    p = users.add_parser("delete")
    p.add_argument("--email", required=True)
    p.set_defaults(func=cmd_users_delete)
    p = users.add_parser("set-password")
    p.add_argument("--email", required=True)
    p.add_argument("--password-stdin", action="store_true")
    p.set_defaults(func=cmd_users_set_password)

    tokens = sub.add_parser("tokens", help="API tokens").add_subparsers(
        dest="tokens_command", required=True, parser_class=Parser
    )
    p = tokens.add_parser("create")
    p.add_argument("--name", required=True)
    p.set_defaults(func=cmd_tokens_create)
    p = tokens.add_parser("list")
    p.set_defaults(func=cmd_tokens_list)
    p = tokens.add_parser("revoke")
    p.add_argument("id", type=int, help="the token's id, from `cartback tokens list`")
    p.set_defaults(func=cmd_tokens_revoke)
