// Cartback's storefront snippet: one IIFE (built by snippet/build.mjs) that installs window.cartback,
// drains the stub's queue, delivers carts and leads through an outbox, and shows the exit-intent popup.
import { api } from "./api.js";
import { assign } from "./experiments.js";
import { watch } from "./exit.js";
import { flush } from "./outbox.js";
import { open, prefetch } from "./lazy.js";
import { platform } from "./platform.js";
import { restore } from "./restore.js";
import { allowed } from "./rules.js";
import { S } from "./state.js";
import { get, set, setPrefix } from "./storage.js";
import { d, on, rid, safe, w } from "./util.js";

const start = (C) => {
  const s = d.currentScript, prev = w.cartback;
  let fired;
  // The collector puts the site's config object in place of the string; a raw file has no site.
  if (!s || typeof C != "object" || !C || !C.key) return;
  // Only over nothing or the stub: a second copy of the tag (whose cartback is no stub) or some other
  // library's cartback keeps the page.
  if (prev && !(prev.q || /\.q\b/.test(prev))) return;

  S.key = C.key;
  S.ep = (C.endpoint || new URL(s.src).origin).replace(/\/+$/, "");
  // The static files (the popup, the platform adapters) sit beside the tag's /s/ folder; a snippet
  // served from elsewhere (the dashboard's preview) finds them under its origin's /static/.
  S.st = new URL((/\/s\/[^/]*$/.test(new URL(s.src).pathname) ? "../" : "/") + "static/", s.src).href;
  setPrefix(C.key);
  S.vid = get("vid");
  if (!/^[\w-]{8,64}$/.test(S.vid)) set("vid", (S.vid = rid()));

  // The collector sends the texts of the site's locale, or with "auto" a small table of them: then the
  // platform's own locale wins over <html lang>, by primary subtag (fr-CA -> fr), else English.
  const T = C.texts || {}, L = Object.keys(T), lang = L.length > 1 ? ((w.Shopify && w.Shopify.locale) || d.documentElement.lang || "").split(/[-_]/)[0].toLowerCase() : L[0];
  S.lang = T[lang] ? lang : "en";
  S.T = T[S.lang] || {};
  const P = (S.P = { delay_ms: 1e3, sensitivity_px: 20, cap_days: 7, ...C.popup });
  for (const e of C.experiments || []) {
    const v = assign(e, S.vid);
    if (!v) continue;
    S.variants[e.name] = v.name;
    // A variant changes only the colours it names; the site's others stay.
    Object.assign(P, v.popup, { colors: { ...P.colors, ...(v.popup || {}).colors } });
    if (v.discount_code) P.discount_code = v.discount_code;
  }

  const cb = (...a) => api(...a);
  cb._cb = 1;
  w.cartback = cb;
  for (const args of (prev && prev.q) || []) api(...args);

  flush(1);
  on(w, "online", () => flush(1));
  restore();
  // The platform's markers (globals, the REST link, body classes) are all in place once the document is parsed.
  if (d.readyState == "loading") on(d, "DOMContentLoaded", () => platform(C));
  else platform(C);
  prefetch();
  watch(() => {
    if (!fired && allowed(P)) {
      fired = 1;
      open();
    }
  });
};

safe(start)("__CARTBACK_CONFIG__");
