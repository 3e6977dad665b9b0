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

// Never looser than the collector's check (collector/addresses.py, email-validator): an address
// accepted here and refused there would lose the lead after the shopper saw the code
// (tests/test_email_parity.py). Stricter in places: ASCII and Latin letters (U+00C0-U+024F) only,
// no quoted local parts, no hand-typed punycode. `d` is the domain in lower case, `h` its IDNA
// (punycode) form from the URL parser: labels of at most 63 bytes, a TLD that ends in a letter and
// is not special-use (RFC 6761), each form of the address in 254 UTF-8 bytes. The last class:
// Latin letters that IDNA maps to other letters (ĳ ŀ ŉ ſ ǆ ǉ ǌ ǳ).
const bytes = (s) => new TextEncoder().encode(s).length;
export const isEmail = (s) => {
  const i = s.lastIndexOf("@"), l = s.slice(0, i), d = s.slice(i + 1).toLowerCase();
  try {
    const h = new URL("http://" + d).hostname;
    return (
      /^[\w.!#$%&'*+/=?^`{|}~\xc0-\xd6\xd8-\xf6\xf8-\u024f-]{1,64}@[\w.\xc0-\xd6\xd8-\xf6\xf8-\u024f-]+$/.test(s) &&
      !/^\.|\.\.|\.$/.test(l) &&
      /^([a-z\d\xe0-\xf6\xf8-\u024f-]+\.)+[a-z\d\xe0-\xf6\xf8-\u024f-]+$/.test(d) &&
      !/(^|\.)(-|..--)|-(\.|$)|[\u0133\u0140\u0149\u017f\u01c6\u01c9\u01cc\u01f3]/.test(d) &&
      /[a-z]$/.test(h) && !/[^.]{64}|\.(arpa|invalid|local|localhost|onion|test)$/.test(h) &&
      bytes(s) < 255 && bytes(l + "@" + h) < 255
    );
  } catch (e) {
    return false;
  }
};

// cartback:NAME on window, and the same as {event: "cartback:NAME", ...detail} for tag managers.
export const emit = (name, detail) => {
  name = "cartback:" + name;
  w.dispatchEvent(new CustomEvent(name, { detail }));
  try {
    w.dataLayer.push({ event: name, ...detail });
  } catch (e) {}
};
