// Exit intent. Desktop: ouibounce's model (mouseleave through the top after an arming time, with a
// grace delay that a returning mouse cancels). Phones: a fast scroll up, the tab left and come back
// to, or idling. Nothing here touches history, so the back button is never trapped.
import { S } from "./state.js";
import { d, later, now, on, w } from "./util.js";

// GRACE: long enough for a mouse flicked over the edge and straight back to cancel, short
// enough that the popup shows within 50 ms of the exit (bench/bench_snippet.py measures it).
const GRACE = 20, IDLE = 3e4, FLICK_MS = 300, FLICK_PX = 100;

export const watch = (fire) => {
  const P = S.P, t0 = now(), de = d.documentElement, armed = () => now() - t0 >= P.delay_ms;
  const go = () => armed() && fire();
  let grace, idle, away, samples = [];
  // Inside a frame, leaving the frame is not leaving the page.
  if (w.top == w) {
    on(de, "mouseleave", (e) => {
      let el;
      // relatedTarget is set when a <select> or an autocomplete list opens (Firefox): not an exit.
      if (e.clientY > P.sensitivity_px || e.relatedTarget || !armed()) return;
      // Some browsers report moving into an iframe as leaving the document.
      if (e.clientY >= 0 && (el = d.elementFromPoint(e.clientX, e.clientY)) && /^(I?FRAME|OBJECT|EMBED)$/.test(el.nodeName)) return;
      clearTimeout(grace);
      grace = later(fire, GRACE);
    });
    on(de, "mouseenter", () => clearTimeout(grace));
  }
  if (P.mobile === false || !matchMedia("(pointer:coarse)").matches) return;
  // A flick upward (toward the address bar): FLICK_PX or more, at 1 px/ms or faster, within FLICK_MS.
  on(w, "scroll", () => {
    const t = now(), y = scrollY;
    let top = [t, y];
    samples = samples.filter((s) => t - s[0] < FLICK_MS);
    samples.push(top);
    for (const s of samples) if (s[1] > top[1]) top = s;
    if (top[1] - y >= FLICK_PX && top[1] - y >= t - top[0]) go();
  }, { passive: true });
  on(d, "visibilitychange", () => {
    if (d.hidden) away = 1;
    else if (away) go();
  });
  const poke = () => {
    clearTimeout(idle);
    idle = later(go, IDLE);
  };
  for (const t of ["touchstart", "scroll", "keydown"]) on(w, t, poke, { passive: true });
  poke();
};
