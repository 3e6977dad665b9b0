// Display rules: the page globs, "only with a cart", and the caps kept per site.
import { get } from "./storage.js";
import { now } from "./util.js";

// A URL path glob: * is any run of characters (slashes too), ? one character. Matched without a
// regular expression: a glob like *a*a*a*…b made into one backtracks for minutes on a long path.
// Here a mismatch goes back only to the last star, which then takes one character more (the
// classic greedy matcher, correct for * and ?), so a match takes at most path × pattern steps.
const glob = (p, s) => {
  let i = 0, j = 0, star = -1, from = 0;
  while (i < s.length) {
    if (p[j] == "*") {
      star = j++;
      from = i;
    } else if (p[j] == "?" || p[j] == s[i]) i++, j++;
    else if (star < 0) return false;
    else (j = star + 1), (i = ++from);
  }
  while (p[j] == "*") j++;
  return j == p.length;
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
