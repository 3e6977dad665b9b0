-- Deliverability (issue 15): the collector-wide suppression list, DKIM keys, and what the mail
-- providers report (bounces, complaints) for the funnel's rates.
CREATE TABLE suppressions (
    email TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    detail TEXT,
    created_at {REAL} NOT NULL
);

-- One key per sending domain; `private_key` is encrypted with a key derived from CARTBACK_SECRET_KEY.
CREATE TABLE dkim_keys (
    domain TEXT PRIMARY KEY,
    selector TEXT NOT NULL,
    private_key TEXT NOT NULL,
    public_key TEXT NOT NULL,
    created_at {REAL} NOT NULL
);

CREATE TABLE mail_events (
    id {ID},
    provider TEXT NOT NULL,
    kind TEXT NOT NULL,
    email TEXT NOT NULL,
    site_id BIGINT,
    email_id BIGINT,
    detail TEXT,
    created_at {REAL} NOT NULL
);
CREATE INDEX mail_events_site_created ON mail_events (site_id, created_at);

-- Smart sending's look-up (the address's latest reminder on the site) uses emails_site_addr (003).
