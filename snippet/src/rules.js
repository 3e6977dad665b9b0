// Display rules: the page globs, "only with a cart", and the caps kept per site.
import { get } from "./storage.js";
import { now } from "./util.js";

// A URL path glob: * is any run of characters (slashes too), ? one character.
function glob(p, path) {
  return new RegExp("^" + p.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*+/g, ".*").replace(/\?/g, ".") + "$").test(path);
}

function any(list, path) {
  return (list || []).some(function (p) {
    return glob(p, path);
  });
}

// Closed: not again for cap_days. An email given: never again on this site.
export function capped(P) {
  var c = get("closed");
  return !!get("lead") || (c > 0 && now() - c < (P.cap_days == null ? 7 : P.cap_days) * 864e5);
}

export function allowed(P) {
  var pages = P.pages || {}, path = location.pathname;
  return P.enabled !== false
    && !((pages.include || []).length && !any(pages.include, path))
    && !any(pages.exclude, path)
    && !(P.only_with_cart !== false && !(get("cart") > 0))
    && !capped(P);
}
