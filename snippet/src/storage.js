// First-party storage keyed by site: localStorage, falling back to a cookie where it is unavailable.
import { d, w } from "./util.js";

// ck: a value went to a cookie on this page view (localStorage refused a write, its quota say).
let ls, prefix, ck;
try {
  ls = w.localStorage;
  ls.setItem("cb_", 1);
  ls.removeItem("cb_");
} catch (e) {
  ls = 0;
}

export const setPrefix = (key) => {
  prefix = "cb_" + key + "_";
};

export const get = (name) => {
  const k = prefix + name;
  let v, m;
  try {
    v = ls && ls.getItem(k);
  } catch (e) {}
  // Cookies only where values go there: reading document.cookie is a synchronous round trip to the
  // browser (a few ms on a page's first read), which a page with localStorage never needs.
  if (!v && (!ls || ck) && (m = d.cookie.match("(?:^|; )" + k + "=([^;]*)"))) v = decodeURIComponent(m[1]);
  try {
    return JSON.parse(v);
  } catch (e) {
    return null;
  }
};

// noCookie: for values too big for a cookie (the outbox); they live in memory instead.
export const set = (name, value, noCookie) => {
  const k = prefix + name, v = JSON.stringify(value);
  try {
    if (ls) return ls.setItem(k, v);
  } catch (e) {}
  // max-age, not expires: no "Invalid Date" (ouibounce's bug); 400 days is Chrome's ceiling.
  if (!noCookie) ck = d.cookie = k + "=" + encodeURIComponent(v) + ";path=/;max-age=34560000;SameSite=Lax";
};
