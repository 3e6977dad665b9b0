// Delivery that loses nothing: every message waits in a localStorage outbox until the collector
// answers 2xx (or a 4xx that says it will never be accepted). Client-made ids make retries harmless.
import { S } from "./state.js";
import { get, set } from "./storage.js";
import { later, now, rid } from "./util.js";

var mem = [], busy = 0, fails = 0, timer;
var WEEK = 6048e5;

function load() {
  var q = get("q");
  return Array.isArray(q) ? q : mem;
}

function save(q) {
  mem = q;
  set("q", q, 1);
}

function drop(id) {
  save(load().filter(function (x) {
    return x.b.id != id;
  }));
}

export function send(kind, body) {
  body.id = rid();
  body.vid = S.vid;
  var t = now(), item = { k: kind, b: body, t: t }, i = -1, q = load().filter(function (x) {
    return x && x.b && t - x.t < WEEK;
  });
  // Only the latest cart matters: it takes the older one's place (and so its order in the queue).
  if (kind == "cart") q.forEach(function (x, j) {
    if (x.k == "cart") i = j;
  });
  if (i < 0) q.push(item);
  else q[i] = item;
  save(q.slice(-50));
  flush();
}

// One request at a time, oldest first, so the collector sees a cart before the lead that follows it.
export function flush(reset) {
  if (reset) fails = 0;
  var item = load()[0];
  if (busy || !item) return;
  busy = 1;
  clearTimeout(timer);
  fetch(S.ep + "/c/" + S.key + "/" + item.k, {
    method: "POST",
    keepalive: true,
    headers: { "Content-Type": "text/plain" },
    body: JSON.stringify(item.b),
  })
    .then(function (r) {
      var s = r.status;
      // 2xx: stored. 4xx other than 408/429: that input will never be accepted. Else: try again.
      if (s < 300 || (s < 500 && s != 408 && s != 429)) return 1;
      if (s >= 500) {
        item.n = (item.n || 0) + 1;
        // A message the collector keeps failing on must not block the queue for ever.
        if (item.n > 8) return 1;
        save(load().map(function (x) {
          return x.b.id == item.b.id ? item : x;
        }));
      }
    }, function () {})
    .then(function (done) {
      busy = 0;
      if (done) {
        drop(item.b.id);
        fails = 0;
        flush();
      } else {
        fails++;
        timer = later(flush, Math.min(3e5, 1e3 * Math.pow(2, fails)));
      }
    })
    .catch(function () {
      busy = 0;
    });
}
