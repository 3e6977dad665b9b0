// First-party storage keyed by site: localStorage, falling back to a cookie where it is unavailable.
import { w, d } from "./util.js";

var ls;
try {
  ls = w.localStorage;
  ls.setItem("cb_t", "1");
  ls.removeItem("cb_t");
} catch (e) {
  ls = null;
}

var prefix = "cb_";

export function setPrefix(key) {
  prefix = "cb_" + key + "_";
}

export function get(name) {
  var k = prefix + name, v = null, m;
  try {
    if (ls) v = ls.getItem(k);
  } catch (e) {}
  if (v == null) {
    m = d.cookie.match("(?:^|; )" + k.replace(/[^\w]/g, "\\$&") + "=([^;]*)");
    if (m) v = decodeURIComponent(m[1]);
  }
  try {
    return v == null ? null : JSON.parse(v);
  } catch (e) {
    return null;
  }
}

// noCookie: for values too big for a cookie (the outbox); they live in memory instead.
export function set(name, value, noCookie) {
  var k = prefix + name, v = JSON.stringify(value);
  try {
    if (ls) return ls.setItem(k, v);
  } catch (e) {}
  // max-age, not expires: no "Invalid Date" (ouibounce's bug); 400 days is Chrome's ceiling.
  if (!noCookie) d.cookie = k + "=" + encodeURIComponent(v) + "; path=/; max-age=34560000; SameSite=Lax";
}
