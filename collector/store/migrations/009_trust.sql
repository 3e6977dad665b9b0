-- Issue 13 (trust): what the numbers can be checked against, and what the sweep prunes.
-- An order reported by the store's server (the API or a platform webhook) is verified (1); one
-- reported by a browser is not (0) until a server report of the same order id replaces it.
-- Rows from before this migration cannot tell: they stay unverified.
ALTER TABLE orders ADD COLUMN verified INTEGER NOT NULL DEFAULT 0;
-- Fetches of the recovery link by link scanners (a HEAD, a prefetch, a known scanner right
-- after delivery): kept apart from the clicks of people.
ALTER TABLE emails ADD COLUMN scanner_click_count INTEGER NOT NULL DEFAULT 0;
-- A restore token is good once: its nonce is recorded when the cart is handed over.
CREATE TABLE restore_uses (
    nonce TEXT PRIMARY KEY,
    site_id BIGINT NOT NULL,
    used_at {REAL} NOT NULL
);
CREATE INDEX restore_uses_time ON restore_uses (used_at);
-- Retention deletes by age: old events, old closed carts, old opens and the dev mailbox.
CREATE INDEX events_site_time ON events (site_id, created_at);
CREATE INDEX carts_site_closed ON carts (site_id, closed_at) WHERE closed_at IS NOT NULL;
CREATE INDEX opens_email_time ON opens (email_id, created_at);
