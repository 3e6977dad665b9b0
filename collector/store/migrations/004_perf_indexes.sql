-- The sweep's abandonment pass looks, per site, for open carts with an email that have not
-- changed since a cutoff (collector/recovery/queue.py, mark_abandoned). carts_open_due has no
-- site_id: each site's pass walked every site's quiet carts. This one is per site, and in
-- (updated_at, id) order, so a pass that takes the oldest first needs no sort either
-- (bench/bench_sweep.py shows the plan).
CREATE INDEX carts_site_open_due ON carts (site_id, updated_at) WHERE status = 'open' AND email IS NOT NULL;
