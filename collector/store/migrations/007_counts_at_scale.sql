-- Counts the database answers from indexes (issue 14; research note 2026-12-02-scale.md).
-- Every dashboard and stats query reads a range of one of these indexes, never a whole
-- site's rows: tests/test_query_plans.py checks each plan on both backends.

-- Opens carry their site, so a site's open counts never read another site's opens.
ALTER TABLE opens ADD COLUMN site_id BIGINT;
UPDATE opens SET site_id = (SELECT e.site_id FROM emails e WHERE e.id = opens.email_id);
CREATE INDEX opens_site_created ON opens (site_id, created_at, is_proxy);
-- Forgetting a shopper deletes their opens, orders' links and codes by email id.
CREATE INDEX opens_email ON opens (email_id);
CREATE INDEX orders_email ON orders (email_id);
CREATE INDEX discount_codes_email ON discount_codes (email_id);

-- Email counts filter on the time of each thing that happened to the email.
-- status leads (not a partial index): SQLite reads a partial index's own condition from the table,
-- so only a column of the index keeps the count on the index alone.
CREATE INDEX emails_site_sent ON emails (site_id, status, sent_at, cart_id);
CREATE INDEX emails_site_opened ON emails (site_id, opened_at) WHERE opened_at IS NOT NULL;
CREATE INDEX emails_site_clicked ON emails (site_id, clicked_at) WHERE clicked_at IS NOT NULL;

-- Abandoned carts counted by abandonment time and listed newest first (keyset pages);
-- the audience is the distinct addresses among them.
CREATE INDEX carts_site_abandoned ON carts (site_id, abandoned_at, id) WHERE abandoned_at IS NOT NULL;
CREATE INDEX carts_site_abandoned_email ON carts (site_id, email) WHERE abandoned_at IS NOT NULL AND email IS NOT NULL;
-- The carts page's other filters: by status, or all, newest change first.
CREATE INDEX carts_site_status_updated ON carts (site_id, status, updated_at, id);
CREATE INDEX carts_site_updated ON carts (site_id, updated_at, id);

-- Recovered orders: counted, summed and charted from the index alone.
CREATE INDEX orders_site_recovered ON orders (site_id, created_at, value, email) WHERE recovered = 1;

-- The leads page walks (created_at, id) newest first: keyset pages on both backends.
DROP INDEX leads_site_created;
CREATE INDEX leads_site_created ON leads (site_id, created_at, id);

-- Popup and discount tests: one row per visitor shown a variant (the first showing),
-- with the lead that visitor gave under it. Counting an experiment reads these rows,
-- not every `shown` event's JSON. Filled from the old events by the migration's Python
-- step (collector/store/variants.py, backfill); written by ingest from then on.
CREATE TABLE variant_assignments (
    site_id BIGINT NOT NULL REFERENCES sites(id),
    experiment TEXT NOT NULL,
    variant TEXT NOT NULL,
    visitor_id TEXT NOT NULL,
    shown_at {REAL} NOT NULL,
    lead_at {REAL},
    email TEXT,
    PRIMARY KEY (site_id, experiment, visitor_id, variant)
);
CREATE INDEX variant_assignments_shown ON variant_assignments (site_id, shown_at, experiment, variant, lead_at);
-- Covering, in GROUP BY order: an all-time count walks one experiment's entries with no table lookups.
CREATE INDEX variant_assignments_experiment ON variant_assignments (site_id, experiment, variant, lead_at, shown_at, email);

-- Subject and discount tests in reminders: the variants each reminder went out with.
-- No foreign key to emails: deleting old emails (retention) need not know of this table;
-- counts join emails, so a row left behind counts for nothing.
CREATE TABLE email_variants (
    email_id BIGINT NOT NULL,
    site_id BIGINT NOT NULL REFERENCES sites(id),
    experiment TEXT NOT NULL,
    variant TEXT NOT NULL,
    PRIMARY KEY (email_id, experiment)
);
