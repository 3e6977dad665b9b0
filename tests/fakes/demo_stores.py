"""The platform demo stores of `make run`: the tests' Shopify-like and WooCommerce-like fakes (built from
the platforms' public documentation) served on their fixed loopback ports, each with only its demo
site's tag pasted, so a newcomer sees the tag alone read the cart, capture the email, restore a
reminder's cart and report the order.

    .venv/bin/python -m tests.fakes.demo_stores [data/demo-stores.json]

The file is written by `cartback demo-setup` (the demo sites' keys and the collector's URL). Runs
until interrupted; only the standard library and Cartback itself are needed (not the test extras)."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from collector.tag import snippet_html
from tests.fakes.shopify import ShopifyStore


def start(config: dict[str, Any]) -> list[Any]:
    collector = str(config["collector"])
    stores: list[Any] = []
    if "shopify" in config:
        shop = config["shopify"]
        stores.append(ShopifyStore(snippet_html(collector, shop["key"]), port=int(shop["port"])))
    if "woocommerce" in config:
        from tests.fakes.woocommerce import WooStore

        woo = config["woocommerce"]
        stores.append(WooStore(snippet_html(collector, woo["key"]), port=int(woo["port"])))
    return stores


def main(argv: list[str]) -> int:
    path = Path(argv[0] if argv else "data/demo-stores.json")
    if not path.exists():
        print(f"demo stores: {path} is missing: run `cartback demo-setup` first", file=sys.stderr)
        return 2
    try:
        stores = start(json.loads(path.read_text()))
    except OSError as exc:  # a port in use: the collector and its demo still run
        print(f"demo stores: not started ({exc})", file=sys.stderr)
        return 2
    for s in stores:
        print(f"demo store: {s.origin}/ ({type(s).__name__})", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    for s in stores:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
