// Cartback's storefront snippet: one IIFE (built by snippet/build.mjs) that installs window.cartback,
// drains the stub's queue, delivers carts and leads through an outbox, and shows the exit-intent popup.
import { api } from "./api.js";
import { assign } from "./experiments.js";
import { watch } from "./exit.js";
import { flush } from "./outbox.js";
import { isOpen, open } from "./popup.js";
import { restore } from "./restore.js";
import { allowed } from "./rules.js";
import { S } from "./state.js";
import { get, set, setPrefix } from "./storage.js";
import { d, on, rid, safe, w } from "./util.js";

var ID = /^[\w-]{8,64}$/;

function start(C) {
  var s = d.currentScript, prev = w.cartback, P, fired;
  // The collector puts the site's config object in place of the string; a raw file has no site.
  if (!s || typeof C != "object" || !C || !C.key) return;
  // Already running (the tag pasted twice): the first copy keeps the page.
  if (prev && prev._cb) return;
  if (prev && !prev.q && !(typeof prev == "function" && /\.q\b/.test(String(prev)))) return;

  S.key = C.key;
  S.ep = (C.endpoint || new URL(s.src).origin).replace(/\/+$/, "");
  setPrefix(C.key);
  S.vid = get("vid");
  if (!ID.test(S.vid)) set("vid", S.vid = rid());

  P = S.P = Object.assign({}, C.popup);
  (C.experiments || []).forEach(function (e) {
    var v = assign(e, S.vid);
    if (!v) return;
    S.variants[e.name] = v.name;
    Object.assign(P, v.popup);
    if (v.discount_code) P.discount_code = v.discount_code;
  });

  var cb = function () {
    api.apply(null, arguments);
  };
  cb._cb = 1;
  w.cartback = cb;
  [].forEach.call((prev && prev.q) || [], function (args) {
    api.apply(null, args);
  });

  flush(1);
  on(w, "online", function () {
    flush(1);
  });
  restore();
  watch(function () {
    if (!fired && !isOpen() && allowed(P)) {
      fired = 1;
      open();
    }
  });
}

safe(start)("__CARTBACK_CONFIG__");
