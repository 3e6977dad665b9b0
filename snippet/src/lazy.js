// The popup's second file (static/cartback-popup.js): the core fetches it at idle time after the shopper's
// first interaction where the popup may show on this page (or after the first cart with items), so it is
// there before an exit; asked for earlier (cartback('show'), an exit before it came), it is fetched at
// once and opens when it arrives.
import { send } from "./outbox.js";
import { allowed } from "./rules.js";
import { S } from "./state.js";
import { set } from "./storage.js";
import { d, isEmail, on, w } from "./util.js";

let U;

// What the popup file shares with the core, on window.cartback.u: S (state), s (send), t (set),
// m (isEmail); the file adds o (open); w is set when it was asked to open before it arrived.
const load = () => {
  if (U) return;
  U = w.cartback.u = { S, s: send, t: set, m: isEmail };
  const el = d.createElement("script");
  el.src = S.st + "cartback-popup.js";
  // The collector out of reach just then: the next ask (an exit, cartback('show')) fetches it again.
  el.onerror = () => (el.remove(), (U = 0));
  (d.head || d.documentElement).appendChild(el);
};

export const open = () => {
  load();
  if (U.o) U.o();
  else U.w = 1;
};

// Not fetched where it cannot show: popup off, an excluded page, a lead already given, closed within
// cap_days, or (only_with_cart, the default) no cart yet: then the first cart with items fetches it.
// Nor before the shopper's first interaction (a pointer move or press, a key, a scroll, a touch), which
// every exit comes after: loading the page costs it the tag's one request and nothing more.
let want, touched;
const idle = () => (w.requestIdleCallback || setTimeout)(() => allowed(S.P) && load());
const first = () => {
  if (!touched) (touched = 1), want && idle();
};
export const prefetch = () => {
  if (!want)
    for (const e of ["pointermove", "pointerdown", "keydown", "scroll", "touchstart"])
      on(w, e, first, { capture: !0, passive: !0, once: !0 });
  want = 1;
  touched && idle();
};
