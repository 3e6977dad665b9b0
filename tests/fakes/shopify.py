"""A Shopify-like Online Store on loopback, built from shopify.dev's Ajax API reference (cart.js, cart/add,
change, update, clear, with or without .js; the cart token with its "?key=" suffix; money in cents; the
item fields product_title, variant_title, final_price, image, url) and /discount/CODE, with a theme whose
scripts behave like Dawn's: FormData posted to /cart/add with X-Requested-With, edits through /cart/change.js,
responses read with response.text()."""

from __future__ import annotations

import email.parser
import email.policy
import json
import secrets
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# variant id -> (product title, variant title or None for a default variant, cents, handle, sold out)
CATALOG: dict[int, tuple[str, str | None, int, str, bool]] = {
    40000000001: ("Enamel mug", "Blue", 1400, "enamel-mug", False),
    40000000002: ("Linen apron", None, 3250, "linen-apron", False),
    40000000003: ("Gift card", None, 2500, "gift-card", True),
}


class Cart:
    def __init__(self) -> None:
        self.token = "c1-" + secrets.token_hex(12)
        self.key = secrets.token_hex(8)
        self.lines: list[list[int]] = []  # [variant id, quantity]
        self.attributes: dict[str, str] = {}
        self.discount: str | None = None

    def set(self, variant: int, qty: int) -> None:
        for line in self.lines:
            if line[0] == variant:
                line[1] = qty
        self.lines = [line for line in self.lines if line[1] > 0]
        if qty > 0 and not any(line[0] == variant for line in self.lines):
            self.lines.append([variant, qty])

    def qty(self, variant: int) -> int:
        return next((q for v, q in self.lines if v == variant), 0)

    def item(self, variant: int, qty: int) -> dict[str, Any]:
        title, vtitle, cents, handle, _ = CATALOG[variant]
        return {
            "id": variant,
            "variant_id": variant,
            "key": f"{variant}:{secrets.token_hex(4)}",
            "product_id": variant // 1000,
            "title": f"{title} - {vtitle}" if vtitle else title,
            "product_title": title,
            "variant_title": vtitle,
            "quantity": qty,
            "price": cents,
            "final_price": cents,
            "line_price": cents * qty,
            "final_line_price": cents * qty,
            "presentment_price": cents / 100,
            "sku": handle.upper(),
            "handle": handle,
            "url": f"/products/{handle}?variant={variant}",
            "image": f"https://cdn.shopify.test/s/files/1/{handle}.png?v=1",
            "featured_image": {"url": f"https://cdn.shopify.test/s/files/1/{handle}.png?v=1", "alt": title},
            "properties": {},
        }

    def json(self) -> dict[str, Any]:
        items = [self.item(v, q) for v, q in self.lines]
        total = sum(i["final_line_price"] for i in items)
        return {
            "token": f"{self.token}?key={self.key}",
            "note": None,
            "attributes": dict(self.attributes),
            "original_total_price": total,
            "total_price": total,
            "total_discount": 0,
            "item_count": sum(i["quantity"] for i in items),
            "items": items,
            "items_subtotal_price": total,
            "currency": "EUR",
            "requires_shipping": True,
        }


THEME = """<script>
// Dawn-like theme scripts: the product form posts FormData, the cart page edits through change.js.
window.routes = {cart_add_url: '/cart/add', cart_change_url: '/cart/change', cart_url: '/cart'};
async function addToCart(form) {
  const r = await fetch(routes.cart_add_url, {method: 'POST', body: new FormData(form),
    headers: {'X-Requested-With': 'XMLHttpRequest', Accept: 'application/javascript'}});
  document.getElementById('status').textContent = (await r.text()).length ? 'added' : 'empty';
}
async function changeLine(id, quantity) {
  const r = await fetch(routes.cart_change_url + '.js', {method: 'POST',
    headers: {'Content-Type': 'application/json'}, body: JSON.stringify({id: String(id), quantity})});
  document.getElementById('status').textContent = 'changed ' + (await r.json()).item_count;
}
</script>"""


class ShopifyStore:
    """The fake store: pages carry `snippet` (the pasted tag) as an Online Store theme would."""

    def __init__(self, snippet: str = "", port: int = 0) -> None:
        """`port` 0: a free one (the tests); `make run` serves the demo Shopify store on a fixed one."""
        self.snippet = snippet
        self.carts: dict[str, Cart] = {}
        self.requests: list[tuple[str, str]] = []
        store = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def cart(self) -> tuple[Cart, bool]:
                cookie = self.headers.get("Cookie") or ""
                for part in cookie.split(";"):
                    k, _, v = part.strip().partition("=")
                    if k == "cart" and v in store.carts:
                        return store.carts[v], False
                c = Cart()
                store.carts[c.token] = c
                return c, True

            def send(self, status: int, body: bytes, ctype: str, cart: Cart | None = None, **headers: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                if cart is not None:
                    self.send_header("Set-Cookie", f"cart={cart.token}; Path=/; SameSite=Lax")
                for k, v in headers.items():
                    self.send_header(k.replace("_", "-"), v)
                self.end_headers()
                self.wfile.write(body)

            def json_out(self, doc: Any, cart: Cart, status: int = 200) -> None:
                self.send(status, json.dumps(doc).encode(), "application/json; charset=utf-8", cart)

            def form(self) -> dict[str, Any]:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ctype = self.headers.get("Content-Type") or ""
                if ctype.startswith("application/json"):
                    return json.loads(raw or b"{}")
                if ctype.startswith("multipart/form-data"):
                    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                        b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + raw
                    )
                    return {
                        p.get_param("name", header="content-disposition"): p.get_content().strip()
                        for p in msg.iter_parts()
                    }
                return {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode()).items()}

            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                store.requests.append(("GET", url.path))
                cart, _ = self.cart()
                if url.path in ("/cart.js", "/cart.json"):
                    return self.json_out(cart.json(), cart)
                if url.path.startswith("/discount/"):
                    cart.discount = urllib.parse.unquote(url.path[len("/discount/") :])
                    target = urllib.parse.parse_qs(url.query).get("redirect", ["/"])[0]
                    return self.send(302, b"", "text/plain", cart, Location=target)
                pages = {"/": store.home(), "/products/enamel-mug": store.product(), "/cart": store.cart_page(cart)}
                extra = {p: h for p, h in store.pages.items()}
                html = pages.get(url.path) or extra.get(url.path)
                if html is None:
                    return self.send(404, b"not found", "text/plain", cart)
                return self.send(200, html.encode(), "text/html; charset=utf-8", cart)

            def do_POST(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                store.requests.append(("POST", url.path))
                cart, _ = self.cart()
                action = url.path.removeprefix("/cart/").removesuffix(".js").removesuffix(".json")
                try:
                    body = self.form()
                except ValueError:
                    return self.json_out({"status": 400, "message": "Bad Request"}, cart, 400)
                if action == "add":
                    lines = body.get("items") or [{"id": body.get("id"), "quantity": body.get("quantity", 1)}]
                    parsed = []
                    for line in lines:
                        variant, qty = int(line["id"]), int(line.get("quantity") or 1)
                        if variant not in CATALOG:
                            return self.json_out(
                                {"status": 404, "message": "Cart Error", "description": "Cannot find variant"},
                                cart,
                                404,
                            )
                        if CATALOG[variant][4]:
                            return self.json_out(
                                {
                                    "status": 422,
                                    "message": "Cart Error",
                                    "description": f"{CATALOG[variant][0]} is sold out.",
                                },
                                cart,
                                422,
                            )
                        parsed.append((variant, qty))
                    # add.js answers only the added lines; a variant already in the cart adds up.
                    for variant, qty in parsed:
                        cart.set(variant, cart.qty(variant) + qty)
                    added = [cart.item(v, cart.qty(v)) for v, _ in parsed]
                    return self.json_out({"items": added} if "items" in body else added[0], cart)
                if action == "change":
                    ident, qty = body.get("id"), int(body.get("quantity", 0))
                    if body.get("line"):
                        variant = cart.lines[int(body["line"]) - 1][0]
                    else:
                        variant = int(str(ident).split(":")[0])
                    cart.set(variant, qty)
                    return self.json_out(cart.json(), cart)
                if action == "update":
                    for k, v in (body.get("updates") or {}).items():
                        cart.set(int(k), int(v))
                    cart.attributes.update({k: str(v) for k, v in (body.get("attributes") or {}).items()})
                    return self.json_out(cart.json(), cart)
                if action == "clear":
                    cart.lines = []
                    return self.json_out(cart.json(), cart)
                return self.json_out({"status": 404, "message": "Not Found"}, cart, 404)

        self.pages: dict[str, str] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def layout(self, title: str, body: str) -> str:
        # theme.liquid: Shopify's own globals in the head (content_for_header), the pasted tag before </head>.
        return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<script>window.Shopify = {{shop: "fake-shop.myshopify.com", locale: "en", currency: {{active: "EUR", rate: "1.0"}},
 routes: {{root: "/"}}, theme: {{name: "Dawn"}}}};</script>
{self.snippet}
{THEME}</head><body><h1>{title}</h1><p id="status"></p>{body}</body></html>"""

    def home(self) -> str:
        return self.layout("Fake shop", '<a href="/products/enamel-mug">Enamel mug</a>')

    def product(self) -> str:
        return self.layout(
            "Enamel mug",
            """<form id="product-form" onsubmit="event.preventDefault(); addToCart(this)">
<select name="id"><option value="40000000001">Blue</option></select>
<input name="quantity" value="1"><button id="add" type="submit">Add to cart</button></form>
<button id="more" type="button" onclick="changeLine(40000000001, 3)">3 mugs</button>""",
        )

    def cart_page(self, cart: Cart) -> str:
        lines = "".join(f'<li data-variant="{v}" data-quantity="{q}">{CATALOG[v][0]} × {q}</li>' for v, q in cart.lines)
        code = f'<p id="discount">{cart.discount}</p>' if cart.discount else ""
        return self.layout("Your cart", f'<ul id="lines">{lines}</ul>{code}')

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
