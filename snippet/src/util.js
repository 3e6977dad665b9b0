// Small helpers shared by the snippet's modules: guarded callbacks, ids, window events.
export const w = window;
export const d = document;
export const now = () => Date.now();

// Every entry point (API call, listener, timer) runs through this: nothing may throw into the page.
export const safe = (fn) => (...a) => {
  try {
    return fn(...a);
  } catch (e) {}
};

export const on = (target, type, fn, opts) => target.addEventListener(type, safe(fn), opts);

export const later = (fn, ms) => setTimeout(safe(fn), ms);

// A random id in the collector's id charset ([A-Za-z0-9_-], 8..64 chars): five random 32-bit
// numbers joined by "_", 9 to 54 characters, 160 bits.
export const rid = () => crypto.getRandomValues(new Uint32Array(5)).join("_");

// The address shape the collector accepts (collector/schemas.py EMAIL_RE): checked before sending.
export const isEmail = (s) =>
  s.length < 255 && /^[^@\s"'<>(),;:\\[\]]{1,64}@[a-z\d]([a-z\d-]*[a-z\d])?(\.[a-z\d]([a-z\d-]*[a-z\d])?)+$/i.test(s);

// cartback:NAME on window, and the same as {event: "cartback:NAME", ...detail} for tag managers.
export const emit = (name, detail) => {
  name = "cartback:" + name;
  w.dispatchEvent(new CustomEvent(name, { detail }));
  try {
    w.dataLayer.push({ event: name, ...detail });
  } catch (e) {}
};
