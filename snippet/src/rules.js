// Display rules: the page globs, "only with a cart", and the caps kept per site.
import { get } from "./storage.js";
import { now } from "./util.js";

// A URL path glob: * is any run of characters (slashes too), ? one character. Matched without a
// regular expression: a glob like *a*a*a*…b made into one backtracks for minutes on a long path.
// Here the pieces between stars are matched left to right, each at its first fit (which is always
// safe for globs), so a match takes at most path × pattern steps.
const at = (s, seg, i) => {
  if (i < 0 || i + seg.length > s.length) return false;
  for (let k = 0; k < seg.length; k++) if (seg[k] != "?" && seg[k] != s[i + k]) return false;
  return true;
};
const glob = (p, s) => {
  const parts = p.split(/\*+/), last = parts.pop();
  if (!parts.length) return last.length == s.length && at(s, last, 0);
  let i = parts[0].length, end = s.length - last.length;
  if (i > end || !at(s, parts[0], 0) || !at(s, last, end)) return false;
  for (const seg of parts.slice(1)) {
    while (i + seg.length <= end && !at(s, seg, i)) i++;
    if (i + seg.length > end) return false;
    i += seg.length;
  }
  return true;
};
const any = (list, path) => (list || []).some((p) => glob(p, path));

// Closed: not again for cap_days. An email given: never again on this site.
export const capped = (P) => {
  const c = get("closed");
  return get("lead") || now() - c < P.cap_days * 864e5;
};

export const allowed = (P) => {
  const { include, exclude } = P.pages || {}, path = location.pathname;
  return P.enabled !== false
    && (!(include || []).length || any(include, path))
    && !any(exclude, path)
    && (P.only_with_cart === false || get("cart") > 0)
    && !capped(P);
};
