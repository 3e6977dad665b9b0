"""The public surface, pinned: the route table, the command line, and a layout without import cycles.

A change here is a change of the public interface (docs/reference.md says the same to users).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import grimp
from starlette.routing import Mount, Route

from collector.app import create_app
from collector.cli.main import build_parser
from collector.config import Config

ROUTES = [
    ("/healthz", "GET HEAD"),
    ("/c/{key}/restore", "GET HEAD"),
    ("/c/{key}/restore", "OPTIONS"),
    ("/c/{key}/{kind}", "POST"),
    ("/c/{key}/{kind}", "OPTIONS"),
    ("/s/{key}.js", "GET HEAD"),
    ("/api/v1/orders", "POST"),
    ("/api/v1/sites/{key}/leads.csv", "GET HEAD"),
    ("/api/v1/sites/{key}/stats", "GET HEAD"),
    ("/api/v1/openapi.json", "GET HEAD"),
    ("/hooks/shopify/{key}", "POST"),
    ("/hooks/woocommerce/{key}", "POST"),
    ("/demo", "GET HEAD"),
    ("/r/{token}", "GET HEAD"),
    ("/u/{token}", "GET HEAD POST"),
    ("/o/{token}.gif", "GET HEAD"),
    ("/report-optout/{token}", "GET HEAD POST"),
    ("/hooks/mail/{provider}", "POST"),
    ("/admin/login", "GET HEAD POST"),
    ("/admin/logout", "POST"),
    ("/admin", "GET HEAD"),
    ("/admin/sites/{key}", "GET HEAD"),
    ("/admin/sites/{key}/leads", "GET HEAD"),
    ("/admin/sites/{key}/leads.csv", "GET HEAD"),
    ("/admin/sites/{key}/carts", "GET HEAD"),
    ("/admin/sites/{key}/audience.csv", "GET HEAD"),
    ("/admin/sites/{key}/webhooks", "GET HEAD"),
    ("/admin/mailbox", "GET HEAD"),
    ("/admin/mailbox/{id:int}", "GET HEAD"),
    ("/admin/mailbox/{id:int}/body", "GET HEAD"),
    ("/admin/sites/{key}/settings", "GET HEAD POST"),
    ("/preview-sink/c/preview/{kind}", "POST"),
    ("/admin/sites/{key}/preview/popup", "POST"),
    ("/admin/sites/{key}/preview/snippet.js", "GET HEAD"),
    ("/admin/sites/{key}/preview/email", "POST"),
    ("/admin/sites/{key}/preview/send-test", "POST"),
    ("/admin/sites/{key}/experiments", "GET HEAD"),
    ("/admin/sites/{key}/experiments/{name}/end", "POST"),
    ("/admin/deliverability", "GET HEAD"),
    ("/admin/suppressions", "GET HEAD"),
    ("/admin/suppressions", "POST"),
    ("/admin/sites/{key}/install", "GET HEAD"),
    ("/static", "mount"),
]

COMMANDS = {
    "serve": ["--host", "--port", "--workers"],
    "migrate": [],
    "demo-setup": [],
    "sites create": ["--json", "--name", "--origin", "--settings"],
    "sites update": ["--name", "--origin", "--settings"],
    "sites list": ["--json"],
    "users create": ["--email", "--password-stdin"],
    "users list": [],
    "users delete": ["--email"],
    "users set-password": ["--email", "--password-stdin"],
    "tokens create": ["--name"],
    "tokens list": [],
    "tokens revoke": [],
    "leads export": ["--output", "--since", "--site", "--until"],
    "audiences export": ["--consent", "--format", "--output", "--site"],
    "shoppers export": ["--email", "--site"],
    "shoppers forget": ["--email", "--site"],
    "send-due": [],
    "codes import": ["--site"],
    "reports send-weekly": [],
    "reports weekly": ["--email"],
    "dkim create": ["--domain", "--selector"],
    "dkim list": [],
    "suppressions add": [],
    "suppressions remove": [],
    "suppressions import": [],
    "suppressions export": ["--output"],
    "suppressions list": [],
}


def test_the_route_table_is_the_documented_one(config: Config) -> None:
    table = []
    for r in create_app(config).routes:
        if isinstance(r, Route):
            table.append((r.path, " ".join(sorted(r.methods or []))))
        else:
            assert isinstance(r, Mount)
            table.append((r.path, "mount"))
    assert table == ROUTES


def _commands(parser: argparse.ArgumentParser, prefix: list[str]) -> Iterator[tuple[str, list[str]]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, [*prefix, name])
            return
    flags = sorted(o for a in parser._actions for o in a.option_strings if o not in ("-h", "--help"))
    yield " ".join(prefix), flags


def test_the_command_line_is_the_documented_one() -> None:
    assert dict(_commands(build_parser(), [])) == COMMANDS


def test_the_package_has_no_import_cycles() -> None:
    graph = grimp.build_graph("collector")
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if imported != module and graph.chain_exists(importer=imported, imported=module):
                cycles.append(
                    " -> ".join(graph.find_shortest_chain(importer=imported, imported=module) or ()) + f" -> {imported}"
                )
    assert cycles == []
