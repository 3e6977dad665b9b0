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
    """Each configured store, on its port; one that cannot start (its port taken) is said and skipped."""
    collector = str(config["collector"])
    stores: list[Any] = []
    for kind in ("shopify", "woocommerce"):
        if kind not in config:
            continue
        tag = snippet_html(collector, config[kind]["key"])
        try:
            if kind == "shopify":
                stores.append(ShopifyStore(tag, port=int(config[kind]["port"])))
            else:
                from tests.fakes.woocommerce import WooStore

                stores.append(WooStore(tag, port=int(config[kind]["port"])))
        except (OSError, ImportError) as exc:  # its port taken, or its fake not in this checkout
            print(f"demo stores: the {kind} store did not start ({exc})", file=sys.stderr)
    return stores


def main(argv: list[str]) -> int:
    path = Path(argv[0] if argv else "data/demo-stores.json")
    if not path.exists():
        print(f"demo stores: {path} is missing: run `cartback demo-setup` first", file=sys.stderr)
        return 2
    stores = start(json.loads(path.read_text()))
    if not stores:
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
