// Recovery links land on the store with ?cartback_restore=TOKEN: fetch the saved cart once and hand
// it to the page's onRestore callbacks (whenever they register) and to a cartback:restore event.
import { S } from "./state.js";
import { emit, safe } from "./util.js";

const PARAM = /([?&])cartback_restore=([^&#]*)&?/;
let cart, fns = [];

export const onRestore = (fn) => {
  if (typeof fn != "function") return;
  if (cart) safe(fn)(cart);
  else fns.push(fn);
};

// Tokens already handed over in this tab: a reload or Back must not restore again.
const seen = (t, add) => {
  const k = "cb_" + S.key + "_rt";
  try {
    const list = JSON.parse(sessionStorage.getItem(k)) || [];
    if (add) sessionStorage.setItem(k, JSON.stringify([...list, t].slice(-20)));
    return list.includes(t);
  } catch (e) {}
};

// Take the token out of the address bar (other parameters and the hash stay as they were).
const strip = () => {
  const l = location;
  history.replaceState(history.state, "", l.pathname + l.search.replace(PARAM, "$1").replace(/[?&]$/, "") + l.hash);
};

export const restore = () => {
  const m = location.search.match(PARAM), t = m && decodeURIComponent(m[2]);
  if (!t) return;
  if (seen(t)) return strip();
  fetch(`${S.ep}/c/${S.key}/restore?t=${encodeURIComponent(t)}&vid=${S.vid}`)
    .then((r) => {
      // After a server error the token stays in the URL, so a reload tries again.
      if (r.status < 500) strip();
      return r.ok && r.json().then((c) => {
        if (!c || !c.items || cart) return;
        seen(t, 1);
        cart = c;
        fns.forEach(onRestore);
        emit("restore", c);
      });
    })
    .catch(() => {});
};
