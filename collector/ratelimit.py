"""Token buckets for ingest: one per visitor, and an optional ceiling per site, kept in memory.

A bucket holds up to `burst` tokens and gains `rate` a second; a request takes one. An empty
bucket answers how long until the next token, which ingest sends as 429 with Retry-After (the
snippet keeps the event in its outbox and retries later). Buckets are per process: with
several workers each has its own, so a visitor gets the burst once per worker at most, which
still stops one console from flooding the store.

Visitors are limited by their visitor id, not their IP address: shoppers behind one address (an
office, a mobile carrier's NAT) never take each other's turn. A visitor id is chosen by the
client, so a flood with a fresh id per request gets past it: that is what the per-site ceiling
is for (`CARTBACK_INGEST_SITE_PER_SECOND`, off unless set), and the body caps bound each request.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass

# Enough for a busy page view (cart, events, a lead) and a retried outbox; a person clicking
# "add to cart" as fast as they can stays far below 5 a second for long.
VISITOR_BURST = 40.0
VISITOR_RATE = 5.0
# Buckets kept at most: a full bucket is the same as none, so the oldest are forgotten first.
MAX_BUCKETS = 100_000


@dataclass
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    """Buckets by key, `burst` tokens each, refilled at `rate` per second."""

    def __init__(self, burst: float, rate: float, max_buckets: int = MAX_BUCKETS) -> None:
        self.burst = burst
        self.rate = rate
        self.max_buckets = max_buckets
        self._buckets: OrderedDict[object, _Bucket] = OrderedDict()

    def take(self, key: object, now: float | None = None) -> float:
        """Takes a token for `key`: 0 when granted, else the seconds until one is there."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_buckets:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate


def retry_after(wait: float) -> str:
    """The Retry-After value (whole seconds, at least 1) for a wait."""
    return str(max(1, math.ceil(wait)))


class IngestLimits:
    """What ingest checks before it stores anything: the site's ceiling, then the visitor's bucket."""

    def __init__(self, site_per_second: float = 0.0) -> None:
        self.visitors = TokenBuckets(VISITOR_BURST, VISITOR_RATE)
        # A second's worth of burst: the ceiling is meant for floods, not for a shop's rush hour.
        self.sites = TokenBuckets(max(1.0, site_per_second), site_per_second) if site_per_second > 0 else None

    def check(self, site_id: int, visitor_id: str, now: float | None = None) -> float:
        """0 when the request may go on, else the seconds to wait."""
        if self.sites is not None:
            wait = self.sites.take(site_id, now)
            if wait:
                return wait
        return self.visitors.take((site_id, visitor_id), now)
