// Display rules: the page globs, "only with a cart", and the caps kept per site.
import { get } from "./storage.js";
import { now } from "./util.js";

// A URL path glob: * is any run of characters (slashes too), ? one character.
const any = (list, path) => (list || []).some((p) =>
  RegExp("^" + p.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*+/g, ".*").replace(/\?/g, ".") + "$").test(path));

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
