// Delivery that loses nothing: every message waits in a localStorage outbox until the collector
// answers 2xx (or a 4xx that says it will never be accepted). Client-made ids make retries harmless.
import { S } from "./state.js";
import { get, set } from "./storage.js";
import { later, now, rid } from "./util.js";

let mem = [], busy, fails = 0, timer;

const load = () => {
  const q = get("q");
  return Array.isArray(q) ? q : mem;
};

const save = (q) => set("q", (mem = q), 1);

export const send = (k, b) => {
  b.id = rid();
  b.vid = S.vid;
  const t = now(), item = { k, b, t }, q = load().filter((x) => x && x.b && t - x.t < 6048e5); // a week
  // Only the latest cart matters: it takes the older one's place (and so its turn in the queue).
  const i = k == "cart" ? q.findIndex((x) => x.k == k) : -1;
  if (i < 0) q.push(item);
  else q[i] = item;
  save(q.slice(-50));
  flush();
};

// One request at a time, oldest first, so the collector sees a cart before the lead that follows it.
export const flush = (reset) => {
  const item = load()[0];
  if (reset) fails = 0;
  if (busy || !item) return;
  busy = 1;
  clearTimeout(timer);
  fetch(`${S.ep}/c/${S.key}/${item.k}`, {
    method: "POST",
    keepalive: true,
    headers: { "Content-Type": "text/plain" },
    body: JSON.stringify(item.b),
  })
    .then((r) => {
      const s = r.status;
      // 2xx: stored. 4xx other than 408/429: that input will never be accepted. Else: try again.
      if (s < 300 || (s < 500 && s != 408 && s != 429)) return 1;
      // A message the collector keeps failing on must not block the queue for ever.
      if (s > 499 && (item.n = -~item.n) > 8) return 1;
      save(load().map((x) => (x.b.id == item.b.id ? item : x)));
    }, () => {})
    .then((done) => {
      busy = 0;
      if (done) {
        save(load().filter((x) => x.b.id != item.b.id));
        fails = 0;
        flush();
      } else timer = later(flush, Math.min(3e5, 500 * 2 ** ++fails));
    })
    .catch(() => {
      busy = 0;
    });
};
