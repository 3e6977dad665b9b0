"""`make run`'s demo, from outside: `cartback demo-setup` makes the plain demo site and one site per
platform demo store (with its own origin, platform and cart page), writes their keys for the demo
stores' launcher, and /demo links to the stores; the launcher serves the Shopify-like store with only
that site's tag pasted."""

from __future__ import annotations

import json
import urllib.request

from collector.demo import PLATFORM_DEMOS
from tests.fakes import demo_stores
from tests.recovery_support import cli, cli_env


async def test_demo_setup_makes_the_platform_demo_sites_and_the_launcher_pastes_their_tags(
    client, store, config, tmp_path
):
    env = cli_env(config.database_url, tmp_path)
    code, out, err = await cli(env, "demo-setup")
    assert code == 0, err
    assert "shopify demo:     http://127.0.0.1:8001/" in out and "woocommerce demo: http://127.0.0.1:8002/" in out
    code, again, _ = await cli(env, "demo-setup")  # run twice (every `make run`): nothing doubles
    assert code == 0 and len(await store.sites.list()) == 3
    written = json.loads((tmp_path / "data" / "demo-stores.json").read_text())
    sites = {s.name: s for s in await store.sites.list()}
    for kind, (name, port, cart_path) in PLATFORM_DEMOS.items():
        site = sites[name]
        assert written[kind] == {"key": site.key, "port": port}
        assert site.settings.platform.kind == kind
        assert f"http://127.0.0.1:{port}" in site.origins
        assert site.settings.recovery.cart_url == f"http://127.0.0.1:{port}{cart_path}"

    page = await client.get("/demo")
    assert page.status_code == 200
    for name, port, _ in PLATFORM_DEMOS.values():
        assert f'<a href="http://127.0.0.1:{port}/">{name}</a>' in page.text

    # The launcher, on free ports here (make run uses the fixed ones): each store carries its own tag.
    only_shopify = {"collector": written["collector"], "shopify": {**written["shopify"], "port": 0}}
    (shop,) = demo_stores.start(only_shopify)
    try:
        with urllib.request.urlopen(shop.origin + "/") as r:
            html = r.read().decode()
        assert f"/s/{written['shopify']['key']}.js" in html and "window.Shopify" in html
        assert written["woocommerce"]["key"] not in html
    finally:
        shop.close()


def test_the_launcher_says_what_is_missing(tmp_path, capsys):
    assert demo_stores.main([str(tmp_path / "nothing.json")]) == 2
    assert "run `cartback demo-setup` first" in capsys.readouterr().err
