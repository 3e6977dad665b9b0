"""Makes the README's screenshots of the settings editor, its live preview and the German popup.

Run from the repository: `.venv/bin/python docs/screenshots.py` (a collector on a free port, Debian's Chromium).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser.conftest import CHROMIUM_ARGS, Storefront  # noqa: E402
from tests.conftest import LiveCollector  # noqa: E402

OUT = ROOT / "docs" / "img"
OWNER, PASSWORD = "owner@example.com", "a long enough password"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        live = LiveCollector(Path(tmp))
        shop = Storefront()
        live.start()
        try:
            live.cli("users", "create", "--email", OWNER, "--password-stdin", input=PASSWORD + "\n")
            site = live.create_site(
                [shop.origin],
                name="Kaffeehaus",
                settings={
                    "locale": "de",
                    "popup": {"discount_code": "KAFFEE10", "require_consent": True},
                    "recovery": {
                        "from": "Kaffeehaus <shop@example.com>",
                        "email": {"footer": "Kaffeehaus GmbH, Bohnenweg 1, 10115 Berlin"},
                    },
                },
            )
            page_url = shop.add(
                "/p",
                '<!doctype html><html lang="de"><head><meta charset="utf-8"><title>Kaffeehaus</title></head>'
                '<body style="font-family:sans-serif;margin:2rem"><h1>Kaffeehaus</h1><p>Frisch geröstet.</p>'
                f"{site['snippet']}</body></html>",
            )
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1000, "height": 700})
                page.goto(page_url)
                page.wait_for_function("() => window.cartback && window.cartback._cb === 1")
                page.evaluate("() => cartback('show')")
                page.wait_for_selector("#cartback-popup [role=dialog]")
                page.screenshot(path=str(OUT / "popup-de.png"))
                page = browser.new_page(viewport={"width": 1500, "height": 1100})
                page.goto(f"{live.url}/admin/login")
                page.fill("#email", OWNER)
                page.fill("#password", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_url(f"{live.url}/admin")
                page.goto(f"{live.url}/admin/sites/{site['key']}/settings")
                page.frame_locator("#popup-preview").locator("[role=dialog] h2").wait_for()
                page.fill("#f-popup-headline", "Nicht so schnell!")
                page.frame_locator("#popup-preview").locator("text=Nicht so schnell!").wait_for()
                page.wait_for_timeout(500)
                page.screenshot(path=str(OUT / "editor.png"))
                page.locator("[data-preview]").screenshot(path=str(OUT / "preview.png"))
                browser.close()
        finally:
            live.stop()
            shop.close()
    print(json.dumps(sorted(p.name for p in OUT.glob("*.png"))))


if __name__ == "__main__":
    main()
