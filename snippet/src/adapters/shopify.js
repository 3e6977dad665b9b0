// The Shopify adapter (static/cartback-shopify.js, loaded by the core only on Shopify): reads the
// platform's own cart (/cart.js) after every change the theme makes, writes the _cartback cart
// attribute that the order webhook carries back, and restores a recovery link's cart into it.
import { F, abs, cb, d, note, w, watch } from "./common.js";

(() => {
  const P = cb && cb.p, S = w.Shopify || {};
  if (!P) return;
  const root = ((S.routes && S.routes.root) || "/").replace(/\/?$/, "/");
  const json = (r) => (r.ok ? r.json() : Promise.reject(r.status));
  const post = (path, body) =>
    F(root + path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  // no-store: a cart.js from the HTTP or back/forward cache shows lines that are gone.
  const get = () => F(root + "cart.js", { cache: "no-store" }).then(json);
  let tagged;

  const report = (c) => {
    if (!c || !Array.isArray(c.items)) return;
    const token = c.token && ("" + c.token).split("?")[0];
    cb("cart", {
      currency: c.currency,
      platform_token: token,
      // Money in cents; the name as the shopper sees it: product title, then the variant's (none for a default).
      // (id is the variant's id in /cart.js.)
      items: c.items.map((i) => ({
        id: i.id,
        name: i.product_title + (i.variant_title ? " - " + i.variant_title : ""),
        price: i.final_price / 100,
        quantity: i.quantity,
        image: abs(i.image),
        url: abs(i.url),
      })),
    }, 1);
    // The cart attribute the order webhook brings back (note_attributes): once per cart token.
    const a = c.attributes || {};
    if (c.items.length && a._cartback != P.v && tagged != token) {
      tagged = token;
      post("cart/update.js", { attributes: { _cartback: P.v } }).catch(() => {});
    }
  };
  const read = () => get().then(report, () => {});

  // Under the locale root or not, with or without .js/.json: the theme's own cart writes.
  watch((u, m) => m != "GET" && /\/cart\/(add|change|update|clear)(\.js(on)?)?$/.test(u.pathname), read);
  d.addEventListener("shopify:cart:lines-update", () => setTimeout(read, 50));
  note();

  // Exactly the reminder's lines: the cart is cleared, then each line added (a sold-out line costs
  // only itself), then the cart page is loaded.
  cb("onRestore", (c) => {
    const items = c.items.map((i) => ({ id: +i.id, quantity: i.quantity }));
    // One line after the other: Shopify loses concurrent writes to one cart.
    items
      .reduce((p, i) => p.then((ok) => post("cart/add.js", { items: [i] }).then((r) => ok & r.ok, () => 0)), post("cart/clear.js", {}).then(() => 1))
      .then((all) => all || note(1), () => note(1))
      .then(() => {
        const cart = root + "cart", code = c.discount_code;
        location.assign(code ? root + "discount/" + encodeURIComponent(code) + "?redirect=" + encodeURIComponent(cart) : cart);
      });
  });
})();
