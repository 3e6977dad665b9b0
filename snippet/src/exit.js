// Exit intent. Desktop: ouibounce's model (mouseleave through the top after an arming time, with a
// grace delay that a returning mouse cancels). Phones: a fast scroll up, the tab left and come back
// to, or idling. Nothing here touches history, so the back button is never trapped.
import { S } from "./state.js";
import { d, later, now, on, w } from "./util.js";

var GRACE = 100, IDLE = 30000, FLICK_MS = 300, FLICK_PX = 100;

export function watch(fire) {
  var P = S.P, t0 = now(), grace, idle, away, samples = [];
  function armed() {
    return now() - t0 >= (P.delay_ms == null ? 1000 : P.delay_ms);
  }
  function go() {
    if (armed()) fire();
  }
  // Inside a frame, leaving the frame is not leaving the page.
  if (w.top == w) {
    on(d.documentElement, "mouseleave", function (e) {
      var el;
      // relatedTarget is set when a <select> or an autocomplete list opens (Firefox): not an exit.
      if (e.clientY > (P.sensitivity_px == null ? 20 : P.sensitivity_px) || e.relatedTarget || !armed()) return;
      // Some browsers report moving into an iframe as leaving the document.
      el = e.clientY >= 0 && d.elementFromPoint(e.clientX, e.clientY);
      if (el && /^(I?FRAME|OBJECT|EMBED)$/.test(el.nodeName)) return;
      clearTimeout(grace);
      grace = later(fire, GRACE);
    });
    on(d.documentElement, "mouseenter", function () {
      clearTimeout(grace);
    });
  }
  if (P.mobile === false || !(w.matchMedia && matchMedia("(pointer:coarse)").matches)) return;
  // A flick upward (toward the address bar): FLICK_PX or more up at 1 px/ms or faster, within FLICK_MS.
  on(w, "scroll", function () {
    var t = now(), y = w.scrollY, top = [t, y];
    samples = samples.filter(function (s) {
      return t - s[0] < FLICK_MS;
    });
    samples.push(top);
    samples.forEach(function (s) {
      if (s[1] > top[1]) top = s;
    });
    if (top[1] - y >= FLICK_PX && top[1] - y >= t - top[0]) go();
  }, { passive: true });
  on(d, "visibilitychange", function () {
    if (d.hidden) away = 1;
    else if (away) go();
  });
  function poke() {
    clearTimeout(idle);
    idle = later(go, IDLE);
  }
  ["touchstart", "scroll", "keydown"].forEach(function (t) {
    on(w, t, poke, { passive: true });
  });
  poke();
}
