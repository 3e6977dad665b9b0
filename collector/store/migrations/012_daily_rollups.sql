-- Daily rollups (issue 14): the additive counts of one site and one closed UTC day, so a
-- year-long overview reads a few hundred rows, not millions. Owned by collector/store/rollups.py:
-- `counts` is the JSON the analytics computed from the raw rows of that day (NULL while a
-- computation is under way, `token` naming it). Triggers (the migration's Python step,
-- written per engine) delete a day's row whenever a row counted in that day is written, so a
-- row that exists is always equal to a recount; reads take missing days from the raw rows.
CREATE TABLE daily_rollups (
    site_id BIGINT NOT NULL,
    day BIGINT NOT NULL,
    counts TEXT,
    token TEXT,
    computed_at {REAL} NOT NULL,
    PRIMARY KEY (site_id, day)
);

-- What the rollups leave to the raw rows, by index: a range's edge days of popup conversions (by
-- the lead's time), the holdout's carts (none at all on a site with no holdout), and discount tests'
-- reminders (none on a site without one).
CREATE INDEX variant_assignments_lead ON variant_assignments (site_id, lead_at, shown_at, experiment, variant) WHERE lead_at IS NOT NULL;
CREATE INDEX carts_site_holdout ON carts (site_id, abandoned_at, holdout) WHERE holdout IS NOT NULL AND abandoned_at IS NOT NULL;
CREATE INDEX email_variants_experiment ON email_variants (site_id, experiment, email_id);
-- A browser's events of one type in time order: the links between its consecutive checkout events
-- (the distinct browsers per step, the reasons per step). Replaces the two-column index of 001,
-- whose look-ups it serves as well.
DROP INDEX events_site_visitor;
CREATE INDEX events_site_visitor ON events (site_id, visitor_id, type, created_at);
