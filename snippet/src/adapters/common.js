// What both platform adapters share: the page's untouched fetch, a debounced re-read after the theme's
// own cart requests (fetch and XMLHttpRequest) and on returning to the page, and the quiet line a
// partial restore leaves.
export const w = window, d = document, cb = w.cartback;
export const F = w.fetch.bind(w);

export const abs = (u) => {
  try {
    return u ? new URL(u, location.href).href : undefined;
  } catch (e) {}
};

// The adapter's own requests go through F, so they never trigger a re-read: no loop on a failing API.
export const watch = (match, read) => {
  let t;
  const soon = () => {
    clearTimeout(t);
    t = setTimeout(read, 250);
  };
  const hit = (url, method) => {
    try {
      return match(new URL(url, location.href), (method || "GET").toUpperCase());
    } catch (e) {}
  };
  // The theme gets its own response, untouched; the cart is read again once the request is done.
  w.fetch = function (input, init) {
    const p = F.apply(this, arguments);
    if (hit(input && input.url ? input.url : input, (init && init.method) || (input && input.method))) p.then(soon, soon);
    return p;
  };
  const x = XMLHttpRequest.prototype, open = x.open;
  x.open = function (m, u) {
    if (hit(u, m)) this.addEventListener("loadend", soon);
    return open.apply(this, arguments);
  };
  w.addEventListener("pageshow", (e) => e.persisted && soon());
  d.addEventListener("visibilitychange", () => d.visibilityState == "visible" && soon());
  (w.requestIdleCallback || setTimeout)(read);
  return soon;
};

// After a restore that could not put everything back: one quiet line on the next page. In
// localStorage, which the core has opened already (a page's first sessionStorage access costs a
// synchronous round trip to the browser).
const K = "cb_rn";
export const note = (missing) => {
  try {
    if (missing) return localStorage.setItem(K, 1);
    if (!localStorage.getItem(K)) return;
    localStorage.removeItem(K);
    const p = d.createElement("p");
    p.setAttribute("role", "status");
    p.style.cssText = "position:fixed;bottom:0;padding:8px;background:#fff";
    p.textContent = "Some items could not be put back in your cart.";
    d.body.appendChild(p);
  } catch (e) {}
};
