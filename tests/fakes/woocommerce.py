"""A WooCommerce-like store on loopback, built from the Store API docs (woocommerce/woocommerce
plugins/woocommerce/src/StoreApi/docs: cart.md, cart-items.md, cart-coupons.md, cart-tokens.md,
nonce-tokens.md): GET /wp-json/wc/store/v1/cart with the Nonce, Cart-Token and Cart-Hash headers, the
POST cart routes (add-item, update-item, remove-item, apply-coupon) that refuse without a Nonce (401
woocommerce_rest_missing_nonce) or with a stale one (403 woocommerce_rest_invalid_nonce) unless a
Cart-Token names the cart, the batch route, money as strings in minor units (currency_minor_unit), and
a theme whose scripts behave like WooCommerce's: the Blocks' add-to-cart posting to the Store API and
firing wc-blocks_added_to_cart, a Cart block quantity change that fires nothing, a classic add to cart
through ?wc-ajax=add_to_cart with jQuery's added_to_cart (seen only by jQuery handlers), a classic
checkout with #billing_email, and the order-received page. Every page carries WordPress's
<link rel="https://api.w.org/"> and WooCommerce's body classes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# product or variation id -> (product name, variation [(attribute, value)], price in minor units, slug, in stock)
CATALOG: dict[int, tuple[str, list[tuple[str, str]], int, str, bool]] = {
    21: ("Beanie", [], 1800, "beanie", True),
    35: ("Hoodie", [("Color", "Blue"), ("Size", "L")], 4550, "hoodie", True),
    40: ("Sold-out scarf", [], 2200, "scarf", False),
}
COUPONS = {"comeback15": 15}  # code -> percent
STORE_API = "/wp-json/wc/store/v1"
KEY = b"fake-wordpress-salt"

# A minimal jQuery stand-in (the real one is not on this machine): handlers bound with .on() run on
# .trigger(), and a triggered custom event never reaches addEventListener, as with jQuery itself.
JQUERY = """<script>
(function () {
  var handlers = [];
  window.jQuery = function (el) {
    return {
      on: function (types, fn) { types.split(' ').forEach(function (t) { handlers.push([el, t, fn]); }); return this; },
      trigger: function (type) { handlers.forEach(function (h) { if (h[0] === el && h[1] === type) h[2]({type: type}); }); return this; }
    };
  };
})();
</script>"""

THEME = """<script>
// WooCommerce-like theme scripts: Blocks through the Store API (the page's nonce), classic through wc-ajax.
async function blocksAdd(id, quantity) {
  const r = await fetch(wcBlocksMiddlewareConfig.root + 'wc/store/v1/cart/add-item', {method: 'POST',
    headers: {'Content-Type': 'application/json', Nonce: wcBlocksMiddlewareConfig.storeApiNonce},
    body: JSON.stringify({id, quantity})});
  document.getElementById('status').textContent = 'added ' + (await r.json()).items_count;
  document.body.dispatchEvent(new CustomEvent('wc-blocks_added_to_cart', {bubbles: true, cancelable: true}));
}
// The Cart block's quantity selector: a Store API write, and no event at all.
async function blocksQuantity(id, quantity) {
  const cart = await (await fetch(wcBlocksMiddlewareConfig.root + 'wc/store/v1/cart')).json();
  const item = cart.items.find((i) => i.id === id);
  const r = await fetch(wcBlocksMiddlewareConfig.root + 'wc/store/v1/cart/update-item', {method: 'POST',
    headers: {'Content-Type': 'application/json', Nonce: wcBlocksMiddlewareConfig.storeApiNonce},
    body: JSON.stringify({key: item.key, quantity})});
  document.getElementById('status').textContent = 'quantity ' + (await r.json()).items_count;
}
function classicAdd(id, quantity) {
  const x = new XMLHttpRequest();
  x.open('POST', '/?wc-ajax=add_to_cart');
  x.setRequestHeader('Content-Type', 'application/x-www-form-urlencoded');
  x.onload = function () {
    document.getElementById('status').textContent = 'classic added';
    if (window.jQuery) jQuery(document.body).trigger('added_to_cart');
  };
  x.send('product_id=' + id + '&quantity=' + quantity);
}
async function placeOrder() {
  const body = new URLSearchParams({billing_email: document.getElementById('billing_email').value});
  const r = await (await fetch('/?wc-ajax=checkout', {method: 'POST', body})).json();
  location.assign(r.redirect);
}
</script>"""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class Cart:
    def __init__(self) -> None:
        self.session = "t_" + secrets.token_hex(15)  # WooCommerce's guest session id
        self.lines: list[list[Any]] = []  # [key, id, quantity]
        self.coupons: list[str] = []
        self.email = ""

    def qty(self, pid: int) -> int:
        return sum(q for _, i, q in self.lines if i == pid)

    def line(self, key: str) -> list[Any] | None:
        return next((line for line in self.lines if line[0] == key), None)


class WooStore:
    """The fake store: pages carry `snippet` (the pasted tag) in wp_head, as a header-scripts hook puts it."""

    def __init__(self, snippet: str = "", minor_unit: int = 2, currency: str = "EUR", port: int = 0) -> None:
        self.snippet = snippet
        self.minor_unit = minor_unit
        self.currency = currency
        self.jquery = True
        # Each store its own copy: a test may sell a product out (its last field) after it was added.
        self.catalog: dict[int, list[Any]] = {k: list(v) for k, v in CATALOG.items()}
        self.carts: dict[str, Cart] = {}
        self.orders: dict[int, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        # A fault the Store API shows on every /cart and /batch request: None, "500", "html", "nonce", "404".
        self.fault: str | None = None
        self.pages: dict[str, str] = {}
        store = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def session(self) -> Cart:
                token = self.headers.get("Cart-Token")
                if token:
                    cart = store.from_token(token)
                    if cart is not None:
                        return cart
                for part in (self.headers.get("Cookie") or "").split(";"):
                    k, _, v = part.strip().partition("=")
                    if k == "wp_woocommerce_session" and v in store.carts:
                        return store.carts[v]
                cart = Cart()
                store.carts[cart.session] = cart
                return cart

            def send(
                self, status: int, body: bytes, ctype: str, cart: Cart, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.send_header("Set-Cookie", f"wp_woocommerce_session={cart.session}; Path=/; SameSite=Lax")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def body(self) -> Any:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if (self.headers.get("Content-Type") or "").startswith("application/json"):
                    return json.loads(raw or b"{}")
                return {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode()).items()}

            def route(self) -> tuple[str, dict[str, list[str]]]:
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                # Plain permalinks: /?rest_route=/wc/store/v1/cart is the same route as /wp-json/wc/store/v1/cart.
                path = "/wp-json" + query["rest_route"][0] if "rest_route" in query else url.path
                return path, query

            def api(self, method: str, path: str, cart: Cart) -> None:
                if store.fault == "500":
                    return self.send(500, b'{"code":"internal_server_error"}', "application/json", cart)
                if store.fault == "html":
                    return self.send(200, b"<!doctype html><p>Maintenance</p>", "text/html", cart)
                if store.fault == "404":
                    return self.send(404, b"<!doctype html><p>Not found</p>", "text/html", cart)
                body = self.body() if method == "POST" else {}
                if path == STORE_API + "/batch" and method == "POST":
                    status, doc = store.batch(body, cart)
                    return self.send(status, json.dumps(doc).encode(), "application/json; charset=UTF-8", cart)
                headers = {k: v for k, v in self.headers.items()}
                status, doc = store.handle(method, path.removeprefix(STORE_API), body, headers, cart)
                self.send(
                    status, json.dumps(doc).encode(), "application/json; charset=UTF-8", cart, store.api_headers(cart)
                )

            def do_GET(self) -> None:
                path, query = self.route()
                store.requests.append(("GET", path))
                cart = self.session()
                if path.startswith(STORE_API):
                    return self.api("GET", path, cart)
                html_page = store.page(path, query, cart)
                if html_page is None:
                    return self.send(404, b"not found", "text/plain", cart)
                self.send(200, html_page.encode(), "text/html; charset=UTF-8", cart)

            def do_POST(self) -> None:
                path, query = self.route()
                store.requests.append(
                    ("POST", path + ("?wc-ajax=" + query["wc-ajax"][0] if "wc-ajax" in query else ""))
                )
                cart = self.session()
                if path.startswith(STORE_API):
                    return self.api("POST", path, cart)
                ajax = (query.get("wc-ajax") or [""])[0]
                form = self.body()
                if ajax == "add_to_cart":
                    pid, qty = int(form.get("product_id", 0)), int(form.get("quantity", 1))
                    if pid not in store.catalog:
                        return self.send(200, b'{"error":true}', "application/json", cart)
                    store.add(cart, pid, qty)
                    return self.send(200, b'{"fragments":{},"cart_hash":"x"}', "application/json", cart)
                if ajax == "checkout":
                    order = store.place_order(cart, str(form.get("billing_email", "")))
                    redirect = f"/checkout/order-received/{order['id']}/?key={order['order_key']}"
                    return self.send(
                        200, json.dumps({"result": "success", "redirect": redirect}).encode(), "application/json", cart
                    )
                self.send(404, b"not found", "text/plain", cart)

        # port 0: any free one (the tests); make run's demo store asks for a fixed one.
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    # --- the Store API -------------------------------------------------------------------------

    def nonce(self, cart: Cart) -> str:
        """wp_create_nonce('wc_store_api') for the session: ten hex digits, stable within the session."""
        return hmac.new(KEY, ("wc_store_api|" + cart.session).encode(), hashlib.sha256).hexdigest()[:10]

    def token(self, cart: Cart) -> str:
        """The Cart-Token: a JWT (HS256) re-signed on every answer, whose user_id is the session."""
        head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        now = time.time()
        payload = _b64(
            json.dumps({"user_id": cart.session, "exp": int(now) + 172800, "iss": "store-api", "iat": now}).encode()
        )
        sig = _b64(hmac.new(KEY, f"{head}.{payload}".encode(), hashlib.sha256).digest())
        return f"{head}.{payload}.{sig}"

    def from_token(self, token: str) -> Cart | None:
        try:
            head, payload, sig = token.split(".")
            good = _b64(hmac.new(KEY, f"{head}.{payload}".encode(), hashlib.sha256).digest())
            if not hmac.compare_digest(good, sig):
                return None
            data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (ValueError, TypeError):
            return None
        return self.carts.get(data.get("user_id"))

    def api_headers(self, cart: Cart) -> dict[str, str]:
        return {
            "Nonce": self.nonce(cart),
            "Nonce-Timestamp": str(int(time.time())),
            "User-ID": "0",
            "Cart-Token": self.token(cart),
            "Cart-Hash": hashlib.md5(json.dumps(cart.lines).encode()).hexdigest(),
        }

    def money(self) -> dict[str, Any]:
        return {
            "currency_code": self.currency,
            "currency_symbol": "€",
            "currency_minor_unit": self.minor_unit,
            "currency_decimal_separator": ",",
            "currency_thousand_separator": ".",
            "currency_prefix": "",
            "currency_suffix": " €",
        }

    def item(self, key: str, pid: int, qty: int) -> dict[str, Any]:
        name, variation, price, slug, _ = self.catalog[pid]
        return {
            "key": key,
            "id": pid,
            "quantity": qty,
            "quantity_limits": {"minimum": 1, "maximum": 9999, "multiple_of": 1, "editable": True},
            "name": name,
            "sku": slug.upper(),
            "permalink": f"{self.origin}/product/{slug}/",
            "images": [
                {
                    "id": pid + 100,
                    "src": f"{self.origin}/wp-content/uploads/{slug}.jpg",
                    "thumbnail": f"{self.origin}/wp-content/uploads/{slug}-450x450.jpg",
                    "alt": "",
                }
            ],
            "variation": [{"attribute": a, "value": v} for a, v in variation],
            "item_data": [],
            "prices": {"price": str(price), "regular_price": str(price), "sale_price": str(price), **self.money()},
            "totals": {"line_subtotal": str(price * qty), "line_total": str(price * qty), **self.money()},
        }

    def cart_json(self, cart: Cart) -> dict[str, Any]:
        items = [self.item(k, pid, q) for k, pid, q in cart.lines]
        subtotal = sum(int(i["totals"]["line_total"]) for i in items)
        discount = sum(subtotal * COUPONS[c] // 100 for c in cart.coupons)
        return {
            "items": items,
            "coupons": [
                {"code": c, "discount_type": "percent", "totals": {"total_discount": str(discount), **self.money()}}
                for c in cart.coupons
            ],
            "fees": [],
            "totals": {
                "total_items": str(subtotal),
                "total_discount": str(discount),
                "total_price": str(subtotal - discount),
                **self.money(),
            },
            "billing_address": {"email": cart.email},
            "items_count": sum(q for _, _, q in cart.lines),
            "needs_payment": bool(cart.lines),
            "errors": [],
        }

    def add(self, cart: Cart, pid: int, qty: int) -> None:
        for line in cart.lines:
            if line[1] == pid:
                line[2] += qty
                return
        cart.lines.append([hashlib.md5(f"{cart.session}:{pid}".encode()).hexdigest(), pid, qty])

    @staticmethod
    def error(code: str, message: str, status: int, **data: Any) -> tuple[int, dict[str, Any]]:
        return status, {"code": code, "message": message, "data": {"status": status, **data}}

    def handle(
        self, method: str, path: str, body: Any, headers: dict[str, str], cart: Cart
    ) -> tuple[int, dict[str, Any]]:
        """One Store API cart route (path under /wc/store/v1) for the session's cart."""
        if path == "/cart" and method == "GET":
            return 200, self.cart_json(cart)
        action = path.removeprefix("/cart/")
        if method != "POST" or action not in (
            "add-item",
            "update-item",
            "remove-item",
            "apply-coupon",
            "remove-coupon",
        ):
            return self.error("rest_no_route", "No route was found matching the URL and request method.", 404)
        given = {k.lower(): v for k, v in headers.items()}
        if "cart-token" not in given or self.from_token(given["cart-token"]) is None:
            nonce = given.get("nonce")
            if not nonce:
                return self.error(
                    "woocommerce_rest_missing_nonce",
                    "Missing the Nonce header. This endpoint requires a valid nonce.",
                    401,
                )
            if self.fault == "nonce" or not hmac.compare_digest(nonce, self.nonce(cart)):
                return self.error("woocommerce_rest_invalid_nonce", "Nonce is invalid.", 403)
        if not isinstance(body, dict):
            return self.error("rest_invalid_json", "Invalid JSON body passed.", 400)
        if action == "add-item":
            pid, qty = int(body.get("id") or 0), int(body.get("quantity") or 1)
            if pid not in self.catalog:
                return self.error(
                    "woocommerce_rest_cart_invalid_product", "This product cannot be added to the cart.", 400
                )
            if not self.catalog[pid][4]:
                return self.error(
                    "woocommerce_rest_product_out_of_stock",
                    f"You cannot add &quot;{self.catalog[pid][0]}&quot; to the cart because the product is out of stock.",
                    400,
                )
            self.add(cart, pid, qty)
        elif action in ("update-item", "remove-item"):
            line = cart.line(str(body.get("key")))
            if line is None:
                return self.error(
                    "woocommerce_rest_cart_invalid_key",
                    "Cart item no longer exists or is invalid.",
                    409,
                    cart=self.cart_json(cart),
                )
            if action == "remove-item":
                cart.lines.remove(line)
            else:
                line[2] = int(body.get("quantity") or 1)
        else:
            code = str(body.get("code") or "").lower()
            if action == "remove-coupon":
                cart.coupons = [c for c in cart.coupons if c != code]
            elif code not in COUPONS:
                return self.error("woocommerce_rest_cart_coupon_error", f'Coupon "{code}" does not exist!', 400)
            elif code in cart.coupons:
                return self.error(
                    "woocommerce_rest_cart_coupon_error", f'Coupon code "{code}" has already been applied.', 400
                )
            else:
                cart.coupons.append(code)
        # Cart write routes answer 201 with the whole cart.
        return 201, self.cart_json(cart)

    def batch(self, body: Any, cart: Cart) -> tuple[int, dict[str, Any]]:
        """POST /wc/store/v1/batch: WordPress's batch format, 25 requests at most, each under /wc/store/v1."""
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not 0 < len(requests) <= 25:
            return self.error("rest_invalid_param", "Invalid parameter(s): requests", 400)
        responses = []
        for sub in requests:
            path = str(sub.get("path", ""))
            if not path.startswith("/wc/store/v1/"):
                status, doc = self.error("rest_invalid_param", "Invalid parameter(s): requests", 400)
            else:
                status, doc = self.handle(
                    str(sub.get("method", "POST")),
                    path.removeprefix("/wc/store/v1"),
                    sub.get("body") or {},
                    sub.get("headers") or {},
                    cart,
                )
            responses.append({"body": doc, "status": status, "headers": self.api_headers(cart)})
        return 207, {"responses": responses}

    def place_order(self, cart: Cart, email: str) -> dict[str, Any]:
        doc = self.cart_json(cart)
        oid = 100 + len(self.orders) + 1
        order = {
            "id": oid,
            "order_key": "wc_order_" + secrets.token_hex(6),
            "total": doc["totals"]["total_price"],
            "currency": self.currency,
            "email": email,
            "lines": [list(line) for line in cart.lines],
        }
        self.orders[oid] = order
        cart.lines, cart.coupons = [], []
        return order

    # --- the theme ------------------------------------------------------------------------------

    def shown(self, minor: int | str) -> str:
        """Money as the theme prints it (wc_price): decimal comma, thousands dot, suffix."""
        units = int(minor) / 10**self.minor_unit
        text = f"{units:,.{self.minor_unit}f}".replace(",", "_").replace(".", ",").replace("_", ".")
        return f'<span class="woocommerce-Price-amount amount"><bdi>{text}&nbsp;<span class="woocommerce-Price-currencySymbol">€</span></bdi></span>'

    def layout(self, title: str, body: str, classes: str, cart: Cart) -> str:
        # wp_head: WordPress's REST link, the Blocks' middleware config (the page's nonce), the pasted tag.
        config = json.dumps({"root": self.origin + "/wp-json/", "storeApiNonce": self.nonce(cart)})
        return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<link rel="https://api.w.org/" href="{self.origin}/wp-json/">
<script>var wcBlocksMiddlewareConfig = {config};
var wc_add_to_cart_params = {{"ajax_url": "/wp-admin/admin-ajax.php", "cart_url": "{self.origin}/cart/"}};</script>
{JQUERY if self.jquery else ""}
{self.snippet}
{THEME}</head><body class="{classes}"><h1>{html.escape(title)}</h1><p id="status"></p>{body}</body></html>"""

    def page(self, path: str, query: dict[str, list[str]], cart: Cart) -> str | None:
        if path in self.pages:
            return self.layout("Page", self.pages[path], "page woocommerce-page", cart)
        if path == "/product/hoodie/":
            return self.layout(
                "Hoodie",
                '<button id="add" onclick="blocksAdd(35, 1)">Add to cart</button>'
                '<button id="add-beanie" onclick="classicAdd(21, 2)">Add beanies (classic)</button>'
                '<button id="three" onclick="blocksQuantity(35, 3)">3 hoodies</button>',
                "product-template-default single single-product woocommerce woocommerce-page",
                cart,
            )
        if path == "/cart/":
            lines = "".join(
                f'<li data-id="{pid}" data-quantity="{q}">{self.catalog[pid][0]} × {q}</li>' for _, pid, q in cart.lines
            )
            coupons = "".join(f'<li class="coupon">{c}</li>' for c in cart.coupons)
            return self.layout(
                "Cart",
                f'<ul id="lines">{lines}</ul><ul id="coupons">{coupons}</ul>',
                "page woocommerce-cart woocommerce-page",
                cart,
            )
        if path == "/checkout/":
            return self.layout(
                "Checkout",
                '<form class="checkout woocommerce-checkout" onsubmit="event.preventDefault(); placeOrder()">'
                '<input type="email" class="input-text" name="billing_email" id="billing_email" autocomplete="email">'
                '<input type="email" name="gift_email" id="gift_email" data-cartback-ignore>'
                '<button id="place_order" type="submit">Place order</button></form>',
                "page woocommerce-checkout woocommerce-page",
                cart,
            )
        if path.startswith("/checkout/order-received/"):
            oid = int(path.strip("/").rsplit("/", 1)[1])
            order = self.orders.get(oid)
            if order is None or query.get("key", [""])[0] != order["order_key"]:
                return self.layout(
                    "Checkout", "<p>Sorry, this order is invalid.</p>", "woocommerce-checkout woocommerce-page", cart
                )
            return self.layout(
                "Order received",
                f"""<p class="woocommerce-thankyou-order-received">Thank you. Your order has been received.</p>
<ul class="woocommerce-order-overview woocommerce-thankyou-order-details order_details">
<li class="woocommerce-order-overview__order order">Order number: <strong>{oid}</strong></li>
<li class="woocommerce-order-overview__total total">Total: <strong>{self.shown(order["total"])}</strong></li></ul>""",
                "page woocommerce-order-received woocommerce-checkout woocommerce-page",
                cart,
            )
        if path == "/":
            return self.layout("Fake Woo shop", '<a href="/product/hoodie/">Hoodie</a>', "home woocommerce-no-js", cart)
        return None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
