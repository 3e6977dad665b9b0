// Small helpers shared by the snippet's modules: guarded callbacks, ids, window events.
export var w = window;
export var d = document;
export var now = function () { return Date.now(); };

// Every entry point (API call, listener, timer) runs through this: nothing may throw into the page.
export function safe(fn) {
  return function () {
    try {
      return fn.apply(this, arguments);
    } catch (e) {}
  };
}

export function on(target, type, fn, opts) {
  target.addEventListener(type, safe(fn), opts);
}

export function later(fn, ms) {
  return setTimeout(safe(fn), ms);
}

var ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// A random id in the collector's id charset ([A-Za-z0-9_-], 8..64 chars): 16 chars = 96 bits.
export function rid() {
  var a = crypto.getRandomValues(new Uint8Array(16)), s = "", i;
  for (i = 0; i < 16; i++) s += ALPHABET[a[i] & 63];
  return s;
}

// cartback:NAME on window, and the same as {event: "cartback:NAME", ...detail} for tag managers.
export function emit(name, detail) {
  name = "cartback:" + name;
  w.dispatchEvent(new CustomEvent(name, { detail: detail }));
  var dl = w.dataLayer;
  try {
    if (dl && dl.push) dl.push(Object.assign({ event: name }, detail));
  } catch (e) {}
}
