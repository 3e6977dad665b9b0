"""Deterministic variant assignment of A/B tests, the same in Python and in the snippet: pure standard library.

Assignment algorithm (the JS snippet computes the same thing client-side; keep the two in step)
------------------------------------------------------------------------------------------------
Inputs: the experiment's name, a unit id (the visitor id `vid`, or for subject-line experiments
the normalised email: ``email.strip().lower()``) and the variants as an ordered list of
``(variant_name, weight)``. Weights are finite numbers >= 0; only their ratios matter.

1. For every variant with weight > 0, in list order, build the key string
   ``experiment_name + ":" + unit_id + ":" + variant_name`` and encode it as UTF-8
   (JS: ``new TextEncoder().encode(key)``; lone surrogates become U+FFFD in both).
2. ``h = fmix32(fnv1a32(key_bytes))`` where
     fnv1a32: h = 2166136261; for each byte b: h = h XOR b; h = (h * 16777619) mod 2**32
     fmix32 (MurmurHash3's finaliser), all arithmetic mod 2**32, ``>>`` unsigned:
       h ^= h >> 16; h = h * 0x85ebca6b; h ^= h >> 13; h = h * 0xc2b2ae35; h ^= h >> 16
   JS: ``h = Math.imul(h ^ b, 16777619) >>> 0`` per byte (same as xor-then-multiply), then
   ``h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b); h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35);
   h ^= h >>> 16; h >>>= 0``.
3. ``u = (h + 0.5) / 2**32`` — strictly inside (0, 1), so ln(u) is finite and < 0; exact in
   IEEE doubles on both sides.
4. ``score = -weight / ln(u)`` (natural log; JS ``Math.log``), a positive double.
5. The variant with the highest score wins. Tie rule: a later variant replaces the current best
   only when its score is strictly greater, so on an exact tie the earlier variant in the list
   wins. Variants with weight 0 are skipped (never assigned). No variant with weight > 0 is an
   error.

Reference JS (about 15 lines)::

    function cbHash(s) {
      var b = new TextEncoder().encode(s), h = 2166136261, i;
      for (i = 0; i < b.length; i++) h = Math.imul(h ^ b[i], 16777619) >>> 0;
      h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b); h ^= h >>> 13;
      h = Math.imul(h, 0xc2b2ae35); h ^= h >>> 16;
      return h >>> 0;
    }
    function cbAssign(exp, unit, variants) {   // variants: [{name, weight}, ...] in order
      var best = null, bestScore = -1, i, v, s;
      for (i = 0; i < variants.length; i++) {
        v = variants[i]; if (!(v.weight > 0)) continue;
        s = -v.weight / Math.log((cbHash(exp + ":" + unit + ":" + v.name) + 0.5) / 4294967296);
        if (s > bestScore) { bestScore = s; best = v.name; }
      }
      return best;
    }

Why this and not cumulative-weight buckets over one hash: with buckets, adding a variant or
changing a weight moves the boundaries, and shoppers slide from one old variant into another.
This is weighted rendezvous hashing (highest random weight): every (unit, variant) pair has a
fixed score, so adding a variant can only take units away to the new one, and changing one
variant's weight only moves units to or from that variant; the other pairs' scores are
unchanged. P(variant i wins) = w_i / sum(w) exactly, because -1/ln(u) ranks like u**(1/w),
the Efraimidis-Spirakis weighted sampling key.

Why fmix32 on top of FNV-1a: FNV-1a's last bytes barely reach the high bits, and the keys of
one unit differ only in their last bytes (the variant names). Raw FNV-1a made the scores of
"A" and "B" nearly equal for every unit: a 70/30 split came out 99/1, and a 1/1/1 split was
off by 49 standard deviations on 20,000 ids. The finaliser makes them independent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from collector.addresses import normalize_email

_FNV_OFFSET = 2166136261
_FNV_PRIME = 16777619
_MASK32 = 0xFFFFFFFF
_TWO32 = 4294967296.0


def fnv1a32(data: bytes) -> int:
    """32-bit FNV-1a of ``data`` (offset 2166136261, prime 16777619, xor then multiply)."""
    h = _FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME) & _MASK32
    return h


def fmix32(h: int) -> int:
    """MurmurHash3's 32-bit finaliser: spreads every input bit over every output bit."""
    h &= _MASK32
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK32
    h ^= h >> 16
    return h


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # Only lone surrogates get here (e.g. from a JSON "\ud800"). Match TextEncoder, which
        # pairs what can be paired and turns the rest into U+FFFD, so Python and JS agree.
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace").encode("utf-8")


def variant_hash(experiment_name: str, unit_id: str, variant_name: str) -> int:
    """fmix32(fnv1a32(utf8(experiment:unit:variant))): the fixed 32-bit hash of one pair."""
    return fmix32(fnv1a32(_utf8(f"{experiment_name}:{unit_id}:{variant_name}")))


def variant_score(experiment_name: str, unit_id: str, variant_name: str, weight: float) -> float:
    """The rendezvous score -weight / ln(u), u = (hash + 0.5) / 2**32; the highest wins."""
    u = (variant_hash(experiment_name, unit_id, variant_name) + 0.5) / _TWO32
    return -weight / math.log(u)


def _check_variants(variants: Sequence[tuple[str, float]]) -> None:
    if not variants:
        raise ValueError("an experiment needs at least one variant")
    seen = set()
    for item in variants:
        try:
            name, weight = item
        except (TypeError, ValueError):
            raise ValueError(f"a variant must be (name, weight), got {item!r}") from None
        if not isinstance(name, str) or not name:
            raise ValueError(f"variant name must be a non-empty string, got {name!r}")
        if name in seen:
            # Two variants of one name would share one score and be indistinguishable.
            raise ValueError(f"duplicate variant name {name!r}")
        seen.add(name)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise ValueError(f"weight of variant {name!r} must be a number, got {weight!r}")
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"weight of variant {name!r} must be finite and >= 0, got {weight!r}")


def assign(experiment_name: str, unit_id: str, variants: list[tuple[str, float]]) -> str:
    """The variant of ``unit_id`` in the experiment: weighted rendezvous over FNV-1a + fmix32.

    Deterministic; shares follow the weights; adding a variant or changing one weight only moves
    units to or from the variant concerned. See the module docstring for the exact algorithm.
    Raises ValueError on an empty list, a duplicate name, a negative/non-finite weight, or when
    no variant has weight > 0.
    """
    _check_variants(variants)
    best = None
    best_score = -1.0
    for name, weight in variants:
        if weight <= 0:
            continue
        score = variant_score(experiment_name, unit_id, name, weight)
        if score > best_score:  # strictly greater: an exact tie keeps the earlier variant
            best_score = score
            best = name
    if best is None:
        raise ValueError("no variant has a weight above 0")
    return best


def assign_email(experiment_name: str, email: str, variants: list[tuple[str, float]]) -> str:
    """``assign`` keyed by the normalised email, for subject-line experiments.

    Normalising means " Ann@Shop.COM" and "ann@shop.com" get one subject on every device.
    """
    return assign(experiment_name, normalize_email(email), variants)
