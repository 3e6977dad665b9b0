// The WooCommerce adapter (static/cartback-woocommerce.js, loaded by the core only on WooCommerce): reads
// the Store API cart (wc/store/v1/cart) after every change the theme makes, restores a recovery link's
// cart into it with one Store API batch, and reports the order-received page's purchase.
import { F, abs, cb, d, note, w, watch } from "./common.js";

(() => {
  const P = cb && cb.p, L = d.querySelector('link[rel="https://api.w.org/"]');
  if (!P) return;
  // The REST root as WordPress announces it: /wp-json/, or ?rest_route=/ with plain permalinks.
  const api = ((L && L.href) || "/wp-json/").replace(/\/?$/, "/") + "wc/store/v1/";
  // The nonce from the last Store API answer (a cached page's own nonce may be stale), and the
  // money format of the last cart (the order-received page parses its total with it).
  let nonce, fmt = {};
  const call = (path, body) =>
    F(api + path, body
      ? { method: "POST", headers: { "Content-Type": "application/json", Nonce: nonce }, body: JSON.stringify(body) }
      : { cache: "no-store" }).then((r) => {
      nonce = r.headers.get("Nonce") || nonce;
      // The session behind the Cart-Token (a JWT whose user_id stays while the token is re-signed
      // on every answer): the cart's stable reference.
      let s;
      try {
        s = JSON.parse(atob(r.headers.get("Cart-Token").split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).user_id;
      } catch (e) {}
      return r.ok ? r.json().then((c) => ((c.s = s), c)) : Promise.reject(r.status);
    });
  const units = (p, v) => +v / 10 ** (p && p.currency_minor_unit != null ? +p.currency_minor_unit : 2);

  const report = (c) => {
    if (!c || !Array.isArray(c.items)) return;
    fmt = c.totals || {};
    cb("cart", {
      currency: fmt.currency_code,
      platform_token: c.s && "" + c.s,
      // Money in the store's minor units; the name as the shopper sees it: the product, then the
      // values of its variation (Blue, L). id: the product's or the variation's id.
      items: c.items.filter((i) => i && i.id).map((i) => {
        const v = (i.variation || []).map((a) => a.value).join(", "), m = i.images && i.images[0];
        return {
          id: i.id,
          name: i.name + (v ? " - " + v : ""),
          price: units(i.prices, (i.prices || {}).price),
          quantity: i.quantity,
          image: abs(m && (m.thumbnail || m.src)),
          url: abs(i.permalink),
        };
      }),
    }, 1);
    return c;
  };
  const get = () => call("cart");
  const read = () => get().then(report).catch(() => {});

  // The order-received page (/checkout/order-received/{id}/?key=wc_order_…): the purchase, once,
  // with the total the page shows, read in the store's own money format (the cart's, now empty: not
  // reported, the purchase closes the shopper's cart). Nothing else to watch there.
  const o = location.pathname.match(/order-received\/(\d+)/), K = "cb_wo";
  if (o && /[?&]key=wc_order_/.test(location.search))
    return get().then((c) => (fmt = c.totals || {}), () => 0).then(() => {
      const seen = JSON.parse(localStorage.getItem(K) || "[]"), t = d.querySelector(".woocommerce-order-overview__total .amount,.wc-block-order-confirmation-totals__total .wc-block-formatted-money-amount");
      if (!t || seen.includes(o[1])) return;
      const sep = fmt.currency_decimal_separator || ".", n = t.textContent.split(sep), num = (s) => s.replace(/\D/g, "");
      cb("purchase", { order_id: o[1], value: +(num(n[0]) + "." + num(n[1] || "0")), currency: fmt.currency_code });
      localStorage.setItem(K, JSON.stringify([...seen, o[1]].slice(-20)));
    }).catch(() => {});

  // The Blocks' and the theme's own Store API writes and classic wc-ajax calls, by fetch or XHR
  // (a Cart block quantity change fires no event); the Blocks' events; jQuery's, which only jQuery
  // handlers see.
  const soon = watch((u, m) => m != "GET" && /wc\/store\/|wc-ajax=/.test(u.href), read);
  for (const e of ["added_to_cart", "removed_from_cart"]) d.addEventListener("wc-blocks_" + e, soon);
  try {
    w.jQuery(d.body).on("added_to_cart removed_from_cart updated_cart_totals updated_wc_div wc_cart_emptied", soon);
  } catch (e) {}
  note();

  // Exactly the reminder's lines: in one batch, lines not in it are removed, lines already in the
  // cart take its quantity (never doubled), the others are added; then the coupon; then the cart page.
  cb("onRestore", (c) => {
    let ok = 1, code = c.discount_code;
    const fail = () => (ok = 0);
    get()
      .then((cart) => {
        const have = {}, reqs = [], want = {};
        for (const i of c.items) want[i.id] = 1;
        for (const i of cart.items) have[i.id] = i;
        // WooCommerce keeps coupon codes in lower case; one already applied is not applied again.
        if ((cart.coupons || []).some((x) => x.code == ("" + code).toLowerCase())) code = 0;
        for (const i of cart.items) if (!want[i.id]) reqs.push(["remove-item", { key: i.key }]);
        for (const i of c.items) {
          const h = have[i.id];
          reqs.push(h ? ["update-item", { key: h.key, quantity: i.quantity }] : ["add-item", { id: +i.id, quantity: i.quantity }]);
        }
        // One batch; the route takes 25 requests at most, so a longer reminder takes a batch per 25.
        let chain = Promise.resolve();
        for (let k = 0; k < reqs.length; k += 25)
          chain = chain.then(() => call("batch", {
            requests: reqs.slice(k, k + 25).map(([p, body]) => ({ path: "/wc/store/v1/cart/" + p, method: "POST", body, headers: { Nonce: nonce } })),
          }).then((b) => b.responses.forEach((r) => r.status > 299 && fail())));
        return chain;
      })
      .catch(fail)
      .then(() => code && call("cart/apply-coupon", { code }).catch(fail))
      .then(() => {
        ok || note(1);
        const p = w.wc_add_to_cart_params;
        location.assign((p && p.cart_url) || location.href);
      });
  });
})();
