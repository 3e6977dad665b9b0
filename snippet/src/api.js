// The JavaScript API of the contract: cartback('cart' | 'identify' | 'checkout' | 'purchase' | 'onRestore' | 'show', ...).
import { hash } from "./experiments.js";
import { send } from "./outbox.js";
import { open } from "./popup.js";
import { onRestore } from "./restore.js";
import { get, set } from "./storage.js";

function str(v, max) {
  return String(v == null ? "" : v).slice(0, max);
}

function currency(c) {
  return str(c || "USD", 3).toUpperCase();
}

function email(o) {
  return str(o && o.email, 320).trim();
}

var H = {
  cart: function (c) {
    c = c || {};
    var items = (Array.isArray(c.items) ? c.items : []).slice(0, 100).map(function (i) {
      var o = {
        id: str(i.id, 128),
        name: str(i.name || i.id, 300),
        price: Math.max(0, +i.price || 0),
        quantity: Math.max(1, Math.round(+i.quantity) || 1),
      };
      if (i.image) o.image = str(i.image, 2048);
      if (i.url) o.url = str(i.url, 2048);
      return o;
    }), body = { items: items, currency: currency(c.currency) }, h = hash(JSON.stringify(body));
    set("cart", items.length);
    // Pages repeat the same cart on every page view; only a change is news.
    if (get("ch") === h) return;
    set("ch", h);
    send("cart", body);
  },
  identify: function (o) {
    var b = { email: email(o) };
    if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(b.email)) return;
    if (o.consent != null) b.consent = !!o.consent;
    send("identify", b);
  },
  checkout: function (o) {
    send("event", { type: "checkout", step: str(o && o.step, 80) });
  },
  purchase: function (o) {
    o = o || {};
    send("purchase", { order_id: str(o.order_id, 128), value: Math.max(0, +o.value || 0), currency: currency(o.currency) });
    set("cart", 0);
    set("ch", 0);
  },
  onRestore: onRestore,
  // Previews and tests: open now, past every trigger and cap.
  show: function () {
    open();
  },
};

export function api(cmd) {
  try {
    var f = H.hasOwnProperty(cmd) && H[cmd];
    if (f) f.apply(null, [].slice.call(arguments, 1));
  } catch (e) {}
}
