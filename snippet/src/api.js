// The JavaScript API of the contract: cartback('cart' | 'identify' | 'checkout' | 'purchase' | 'onRestore' | 'show', ...).
import { hash } from "./experiments.js";
import { send } from "./outbox.js";
import { open, prefetch } from "./lazy.js";
import { onRestore } from "./restore.js";
import { S } from "./state.js";
import { get, set } from "./storage.js";
import { isEmail, now } from "./util.js";

const str = (v, max) => String(v ?? "").slice(0, max);
const currency = (c) => str(c || "USD", 3).toUpperCase();

const H = {
  // auto: read from the platform's cart by its adapter. From the page's first explicit cart on,
  // nothing read automatically counts on this page view (the explicit one replaces it).
  cart(c = {}, auto) {
    if (auto ? S.x : (S.x = 1) && 0) return;
    const items = (Array.isArray(c.items) ? c.items : []).slice(0, 100).map((i) => ({
      id: str(i.id, 128),
      name: str(i.name || i.id, 300),
      price: Math.max(0, +i.price || 0),
      quantity: Math.max(1, Math.round(+i.quantity) || 1),
      image: i.image ? str(i.image, 2048) : undefined,
      url: i.url ? str(i.url, 2048) : undefined,
    }));
    const body = { items, currency: currency(c.currency), locale: S.lang, platform_token: c.platform_token }, h = hash(JSON.stringify(body)), last = get("ch") || [];
    set("cart", items.length);
    // The popup may show from now on (only_with_cart): its file, at idle time (once).
    if (items.length) prefetch();
    // Pages repeat the same cart on every page view: send it again only as a sign of life every
    // 5 minutes (the collector counts a cart's inactivity toward abandonment from its last update).
    if (last[0] === h && now() - last[1] < 3e5) return;
    set("ch", [h, now()]);
    send("cart", body);
  },
  identify(o) {
    const email = str(o.email, 320).trim();
    if (isEmail(email)) send("identify", { email, consent: o.consent == null ? undefined : !!o.consent });
  },
  checkout(o) {
    send("event", { type: "checkout", step: str(o && o.step, 80) });
  },
  purchase(o) {
    send("purchase", { order_id: str(o.order_id, 128), value: Math.max(0, +o.value || 0), currency: currency(o.currency) });
    set("cart", 0);
    set("ch", 0);
  },
  onRestore,
  // Previews and tests: open now, past every trigger and cap.
  show: () => open(),
};

export const api = (cmd, ...args) => {
  try {
    if (H.hasOwnProperty(cmd)) H[cmd](...args);
  } catch (e) {}
};
