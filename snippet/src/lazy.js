// The popup's second file (static/cartback-popup.js): the core fetches it at idle time after the page's
// load where the popup may show on this page (or after the first cart with items), so it is there long
// before an exit; asked for earlier (cartback('show'), an exit before idle), it is fetched at once and
// opens when it arrives.
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
  (d.head || d.documentElement).appendChild(el);
};

export const open = () => {
  load();
  if (U.o) U.o();
  else U.w = 1;
};

// Not fetched where it cannot show: popup off, an excluded page, a lead already given, closed within
// cap_days, or (only_with_cart, the default) no cart yet: then the first cart with items fetches it.
export const prefetch = () => {
  const idle = () => (w.requestIdleCallback || setTimeout)(() => allowed(S.P) && load());
  if (d.readyState == "complete") idle();
  else on(w, "load", idle);
};
