"""The WooCommerce-like fake (tests/fakes/woocommerce.py) answers as the Store API docs say: the cart's
shape and headers, the nonce refusals, Cart-Token instead of a nonce, batch, coupons, and the pages'
WordPress and WooCommerce markers."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator

import httpx
import pytest

from tests.fakes.woocommerce import WooStore

CART = "/wp-json/wc/store/v1/cart"


@pytest.fixture
def woo() -> Iterator[WooStore]:
    fake = WooStore()
    yield fake
    fake.close()


def test_the_cart_has_the_documented_shape_and_headers(woo):
    with httpx.Client(base_url=woo.origin) as c:
        r = c.get(CART)
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
        for h in ("Nonce", "Nonce-Timestamp", "User-ID", "Cart-Token", "Cart-Hash"):
            assert r.headers.get(h), h
        empty = r.json()
        assert empty["items"] == [] and empty["items_count"] == 0 and empty["coupons"] == []
        assert empty["totals"]["currency_code"] == "EUR" and empty["totals"]["currency_minor_unit"] == 2
        nonce = r.headers["Nonce"]
        added = c.post(CART + "/add-item", json={"id": 35, "quantity": 2}, headers={"Nonce": nonce})
        assert added.status_code == 201
        (item,) = added.json()["items"]
        assert {
            "key",
            "id",
            "quantity",
            "name",
            "sku",
            "permalink",
            "images",
            "variation",
            "prices",
            "totals",
        } <= item.keys()
        assert item["id"] == 35 and item["quantity"] == 2 and item["name"] == "Hoodie"
        assert item["variation"] == [{"attribute": "Color", "value": "Blue"}, {"attribute": "Size", "value": "L"}]
        # Money: strings in minor units, with the unit's size beside them.
        assert item["prices"]["price"] == "4550" and item["prices"]["currency_minor_unit"] == 2
        assert item["totals"]["line_total"] == "9100" and added.json()["totals"]["total_price"] == "9100"
        assert item["permalink"].startswith("http") and item["images"][0]["src"].startswith("http")
        # The Cart-Token is a JWT whose user_id is the session; it is re-signed on each answer.
        payload = r.headers["Cart-Token"].split(".")[1]
        session = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["user_id"]
        assert session.startswith("t_")
        again = c.get(CART).headers["Cart-Token"]
        assert (
            again != r.headers["Cart-Token"]
            and session in base64.urlsafe_b64decode(again.split(".")[1] + "==").decode()
        )


def test_writes_without_a_nonce_or_with_a_stale_one_are_refused_as_documented(woo):
    with httpx.Client(base_url=woo.origin) as c:
        token = c.get(CART).headers["Cart-Token"]
        missing = c.post(CART + "/add-item", json={"id": 21, "quantity": 1})
        assert missing.status_code == 401 and missing.json() == {
            "code": "woocommerce_rest_missing_nonce",
            "message": "Missing the Nonce header. This endpoint requires a valid nonce.",
            "data": {"status": 401},
        }
        stale = c.post(CART + "/add-item", json={"id": 21, "quantity": 1}, headers={"Nonce": "0123456789"})
        assert stale.status_code == 403 and stale.json()["code"] == "woocommerce_rest_invalid_nonce"
        assert c.get(CART).json()["items"] == []  # nothing changed
    # A Cart-Token instead of a nonce (a client without the cookie): the same cart, no nonce needed.
    with httpx.Client(base_url=woo.origin) as other:
        r = other.post(CART + "/add-item", json={"id": 21, "quantity": 1}, headers={"Cart-Token": token})
        assert r.status_code == 201 and r.json()["items_count"] == 1


def test_items_coupons_and_their_errors(woo):
    with httpx.Client(base_url=woo.origin) as c:
        n = {"Nonce": c.get(CART).headers["Nonce"]}
        c.post(CART + "/add-item", json={"id": 21, "quantity": 1}, headers=n)
        twice = c.post(CART + "/add-item", json={"id": 21, "quantity": 2}, headers=n).json()
        assert [i["quantity"] for i in twice["items"]] == [3]  # the same product adds up on its line
        key = twice["items"][0]["key"]
        assert c.post(CART + "/update-item", json={"key": key, "quantity": 1}, headers=n).json()["items_count"] == 1
        gone = c.post(CART + "/update-item", json={"key": "nope", "quantity": 1}, headers=n)
        assert gone.status_code == 409 and gone.json()["code"] == "woocommerce_rest_cart_invalid_key"
        assert "cart" in gone.json()["data"]
        sold_out = c.post(CART + "/add-item", json={"id": 40, "quantity": 1}, headers=n)
        assert sold_out.status_code == 400 and sold_out.json()["code"] == "woocommerce_rest_product_out_of_stock"
        unknown = c.post(CART + "/add-item", json={"id": 999, "quantity": 1}, headers=n)
        assert unknown.json()["code"] == "woocommerce_rest_cart_invalid_product"
        coupon = c.post(CART + "/apply-coupon", json={"code": "COMEBACK15"}, headers=n).json()
        assert [x["code"] for x in coupon["coupons"]] == ["comeback15"]  # kept in lower case
        assert coupon["totals"]["total_discount"] == "270" and coupon["totals"]["total_price"] == "1530"
        assert c.post(CART + "/apply-coupon", json={"code": "comeback15"}, headers=n).status_code == 400
        assert c.post(CART + "/remove-item", json={"key": key}, headers=n).json()["items"] == []


def test_batch_runs_each_request_with_its_own_headers(woo):
    with httpx.Client(base_url=woo.origin) as c:
        nonce = c.get(CART).headers["Nonce"]
        reqs = [
            {
                "path": "/wc/store/v1/cart/add-item",
                "method": "POST",
                "body": {"id": 21, "quantity": 1},
                "headers": {"Nonce": nonce},
            },
            {
                "path": "/wc/store/v1/cart/add-item",
                "method": "POST",
                "body": {"id": 40, "quantity": 1},
                "headers": {"Nonce": nonce},
            },
            {"path": "/wc/store/v1/cart/add-item", "method": "POST", "body": {"id": 35, "quantity": 2}, "headers": {}},
        ]
        r = c.post("/wp-json/wc/store/v1/batch", json={"requests": reqs})
        assert r.status_code == 207
        assert [x["status"] for x in r.json()["responses"]] == [201, 400, 401]
        assert all({"body", "status", "headers"} <= x.keys() for x in r.json()["responses"])
        assert [i["id"] for i in c.get(CART).json()["items"]] == [21]
        assert c.post("/wp-json/wc/store/v1/batch", json={"requests": reqs * 9}).status_code == 400  # 27 > 25


def test_pages_carry_the_markers_and_the_order_received_page_its_total(woo):
    with httpx.Client(base_url=woo.origin) as c:
        for path in ("/", "/product/hoodie/", "/cart/", "/checkout/"):
            page = c.get(path).text
            assert f'<link rel="https://api.w.org/" href="{woo.origin}/wp-json/">' in page, path
            assert re.search(r'<body class="[^"]*\bwoocommerce', page), path
        assert 'id="billing_email"' in c.get("/checkout/").text
        assert c.get("/?rest_route=/wc/store/v1/cart").json()["items"] == []  # plain permalinks
        c.post("/?wc-ajax=add_to_cart", data={"product_id": "35", "quantity": "2"})
        done = c.post("/?wc-ajax=checkout", data={"billing_email": "ann@example.com"}).json()
        assert done["result"] == "success"
        oid, key = re.match(r"/checkout/order-received/(\d+)/\?key=(wc_order_\w+)$", done["redirect"]).groups()
        page = c.get(done["redirect"]).text
        assert "woocommerce-order-received" in page and "91,00" in page
        assert woo.orders[int(oid)]["total"] == "9100" and c.get(CART).json()["items"] == []
        assert "invalid" in c.get(f"/checkout/order-received/{oid}/?key=wc_order_wrong").text
