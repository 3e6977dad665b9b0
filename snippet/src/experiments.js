// A/B variant assignment: weighted rendezvous hashing over FNV-1a + fmix32.
// collector/experiments.py (assign) computes exactly the same thing; keep the two in step.

// fmix32(fnv1a32(utf8(s))): FNV-1a, then MurmurHash3's finaliser so the last bytes reach every bit.
export function hash(s) {
  var b = new TextEncoder().encode(s), h = 2166136261, i;
  for (i = 0; i < b.length; i++) h = Math.imul(h ^ b[i], 16777619) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

// Each (visitor, variant) pair has a fixed score -weight / ln(u); the highest wins, the earlier on a tie.
export function assign(exp, vid) {
  var best = null, top = -1, vs = exp.variants || [], i, v, s;
  for (i = 0; i < vs.length; i++) {
    v = vs[i];
    if (!(v.weight > 0)) continue;
    s = -v.weight / Math.log((hash(exp.name + ":" + vid + ":" + v.name) + 0.5) / 4294967296);
    if (s > top) {
      top = s;
      best = v;
    }
  }
  return best;
}
