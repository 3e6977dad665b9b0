// A/B variant assignment: weighted rendezvous hashing over FNV-1a + fmix32.
// collector/experiments.py (assign) computes exactly the same thing; keep the two in step.

// fmix32(fnv1a32(utf8(s))): FNV-1a, then MurmurHash3's finaliser so the last bytes reach every bit.
export const hash = (s) => {
  let h = 2166136261;
  for (const b of new TextEncoder().encode(s)) h = Math.imul(h ^ b, 16777619) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
};

// Each (visitor, variant) pair has a fixed score -weight / ln(u); the highest wins, the earlier on a tie.
export const assign = (exp, vid) => {
  let best = null, top = -1;
  for (const v of exp.variants || []) {
    const s = -v.weight / Math.log((hash(exp.name + ":" + vid + ":" + v.name) + 0.5) / 4294967296);
    if (v.weight > 0 && s > top) {
      top = s;
      best = v;
    }
  }
  return best;
};
