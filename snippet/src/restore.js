// Recovery links land on the store with ?cartback_restore=TOKEN: fetch the saved cart once and hand
// it to the page's onRestore callbacks (whenever they register) and to a cartback:restore event.
import { S } from "./state.js";
import { emit, safe, w } from "./util.js";

var cart, fns = [], PARAM = /([?&])cartback_restore=([^&#]*)&?/;

function call(fn) {
  safe(fn)(cart);
}

export function onRestore(fn) {
  if (typeof fn != "function") return;
  if (cart) call(fn);
  else fns.push(fn);
}

function seen(token, add) {
  var k = "cb_" + S.key + "_rt", ss = w.sessionStorage, list;
  try {
    list = JSON.parse(ss.getItem(k) || "[]");
    if (add) ss.setItem(k, JSON.stringify(list.concat(token).slice(-20)));
    return list.indexOf(token) >= 0;
  } catch (e) {}
}

// Take the token out of the address bar, so a reload or a shared URL does not restore again.
function strip() {
  var l = location, s = l.search.replace(PARAM, "$1").replace(/[?&]$/, "");
  history.replaceState(history.state, "", l.pathname + s + l.hash);
}

export function restore() {
  var m = location.search.match(PARAM), t = m && decodeURIComponent(m[2].replace(/\+/g, " "));
  if (!t) return;
  if (seen(t)) return strip();
  fetch(S.ep + "/c/" + S.key + "/restore?t=" + encodeURIComponent(t) + "&vid=" + S.vid)
    .then(function (r) {
      // A server error may pass: keep the token in the URL so a reload tries again.
      if (r.status < 500) strip();
      if (r.ok) return r.json().then(function (c) {
        if (!c || !c.items || cart) return;
        seen(t, 1);
        cart = c;
        fns.forEach(call);
        fns = [];
        emit("restore", c);
      });
    })
    .catch(function () {});
}
