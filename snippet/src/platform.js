// Storefront platforms in the core: which one this page runs on (platform.kind, or "auto" by the
// platform's own markers), then its adapter, a second small file loaded only there; and the store's
// own email fields reported as identify (platform.email_fields).
import { api } from "./api.js";
import { S } from "./state.js";
import { d, on, w } from "./util.js";

const detect = (kind) => {
  if (kind != "auto") return kind;
  const s = w.Shopify;
  if (s && (s.routes || s.shop)) return "shopify";
  // Every WooCommerce page (shop, cart, checkout, order-received) has one of these body classes.
  if (d.querySelector('link[rel="https://api.w.org/"]') && /\bwoocommerce/.test(d.body.className))
    return "woocommerce";
};

// Never a password, never a field the store marked; type, name, id or autocomplete says email
// (identify itself drops what is not a valid address).
const field = (e) => {
  const t = e.target;
  if (t.type != "password" && !t.closest("[data-cartback-ignore]") && /mail/i.test(t.type + t.name + t.id + t.autocomplete))
    api("identify", { email: t.value });
};

export const platform = (C) => {
  const p = C.platform || {};
  if (p.email_fields) on(d, "change", field, true);
  const kind = detect(p.kind || "none");
  if (kind != "shopify" && kind != "woocommerce") return;
  // What the adapter needs from the core; the adapter calls back through window.cartback.
  w.cartback.p = { v: S.vid };
  const s = d.createElement("script");
  s.async = true;
  s.src = S.st + "cartback-" + kind + ".js";
  d.head.appendChild(s);
};
