-- The first schema. {ID} and {REAL} are filled per dialect by the migration runner.
CREATE TABLE sites (
    id {ID},
    key TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    origins TEXT NOT NULL,
    settings TEXT NOT NULL,
    webhook_secret TEXT NOT NULL,
    created_at {REAL} NOT NULL,
    updated_at {REAL} NOT NULL
);

CREATE TABLE users (
    id {ID},
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at {REAL} NOT NULL
);

CREATE TABLE tokens (
    id {ID},
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at {REAL} NOT NULL
);

CREATE TABLE events (
    id {ID},
    site_id BIGINT NOT NULL REFERENCES sites(id),
    client_id TEXT NOT NULL,
    visitor_id TEXT,
    type TEXT NOT NULL,
    data TEXT,
    created_at {REAL} NOT NULL,
    UNIQUE (site_id, client_id)
);
CREATE INDEX events_site_type_time ON events (site_id, type, created_at);
CREATE INDEX events_site_visitor ON events (site_id, visitor_id);

-- Who a visitor is, once they gave an email (popup, identify, or a restored cart).
CREATE TABLE visitors (
    site_id BIGINT NOT NULL REFERENCES sites(id),
    visitor_id TEXT NOT NULL,
    email TEXT NOT NULL,
    updated_at {REAL} NOT NULL,
    PRIMARY KEY (site_id, visitor_id)
);

CREATE TABLE carts (
    id {ID},
    site_id BIGINT NOT NULL REFERENCES sites(id),
    visitor_id TEXT NOT NULL,
    email TEXT,
    items TEXT NOT NULL,
    currency TEXT NOT NULL,
    value {REAL} NOT NULL,
    item_count INTEGER NOT NULL,
    status TEXT NOT NULL,
    variants TEXT,
    created_at {REAL} NOT NULL,
    updated_at {REAL} NOT NULL,
    abandoned_at {REAL},
    closed_at {REAL},
    order_id TEXT
);
CREATE INDEX carts_site_visitor_status ON carts (site_id, visitor_id, status);
CREATE INDEX carts_site_email_status ON carts (site_id, email, status);
-- The sweep looks for open carts with an email that have not changed for a while.
CREATE INDEX carts_open_due ON carts (status, updated_at) WHERE status = 'open' AND email IS NOT NULL;
CREATE INDEX carts_site_created ON carts (site_id, created_at);

CREATE TABLE leads (
    id {ID},
    site_id BIGINT NOT NULL REFERENCES sites(id),
    email TEXT NOT NULL,
    visitor_id TEXT,
    source TEXT NOT NULL,
    consent INTEGER NOT NULL,
    discount_code TEXT,
    variants TEXT,
    cart_value {REAL},
    currency TEXT,
    created_at {REAL} NOT NULL,
    UNIQUE (site_id, email)
);
CREATE INDEX leads_site_created ON leads (site_id, created_at);

CREATE TABLE orders (
    id {ID},
    site_id BIGINT NOT NULL REFERENCES sites(id),
    order_id TEXT NOT NULL,
    value {REAL} NOT NULL,
    currency TEXT NOT NULL,
    email TEXT,
    cart_id BIGINT,
    recovered INTEGER NOT NULL DEFAULT 0,
    email_id BIGINT,
    created_at {REAL} NOT NULL,
    UNIQUE (site_id, order_id)
);
CREATE INDEX orders_site_created ON orders (site_id, created_at);

CREATE TABLE emails (
    id {ID},
    site_id BIGINT NOT NULL REFERENCES sites(id),
    cart_id BIGINT NOT NULL REFERENCES carts(id),
    step INTEGER NOT NULL,
    to_addr TEXT NOT NULL,
    subject TEXT,
    discount_code TEXT,
    variants TEXT,
    status TEXT NOT NULL,
    due_at {REAL} NOT NULL,
    claimed_at {REAL},
    claim_token TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at {REAL},
    sent_at {REAL},
    error TEXT,
    opened_at {REAL},
    open_count INTEGER NOT NULL DEFAULT 0,
    proxy_open_count INTEGER NOT NULL DEFAULT 0,
    clicked_at {REAL},
    click_count INTEGER NOT NULL DEFAULT 0,
    created_at {REAL} NOT NULL,
    UNIQUE (cart_id, step)
);
CREATE INDEX emails_due ON emails (status, due_at);
CREATE INDEX emails_site_created ON emails (site_id, created_at);

CREATE TABLE opens (
    id {ID},
    email_id BIGINT NOT NULL REFERENCES emails(id),
    is_proxy INTEGER NOT NULL,
    user_agent TEXT,
    created_at {REAL} NOT NULL
);

CREATE TABLE unsubscribes (
    site_id BIGINT NOT NULL REFERENCES sites(id),
    email TEXT NOT NULL,
    created_at {REAL} NOT NULL,
    PRIMARY KEY (site_id, email)
);

CREATE TABLE discount_codes (
    id {ID},
    site_id BIGINT NOT NULL REFERENCES sites(id),
    code TEXT NOT NULL,
    email_id BIGINT,
    assigned_at {REAL},
    UNIQUE (site_id, code)
);
CREATE INDEX discount_codes_free ON discount_codes (site_id, assigned_at);

CREATE TABLE mailbox (
    id {ID},
    site_id BIGINT,
    email_id BIGINT,
    to_addr TEXT NOT NULL,
    from_addr TEXT NOT NULL,
    subject TEXT NOT NULL,
    html TEXT NOT NULL,
    text TEXT NOT NULL,
    headers TEXT NOT NULL,
    created_at {REAL} NOT NULL
);

CREATE TABLE webhook_outbox (
    id {ID},
    site_id BIGINT NOT NULL REFERENCES sites(id),
    url TEXT NOT NULL,
    event TEXT NOT NULL,
    ref TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at {REAL} NOT NULL,
    claimed_at {REAL},
    delivered_at {REAL},
    last_error TEXT,
    created_at {REAL} NOT NULL,
    UNIQUE (site_id, url, event, ref)
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (status, next_attempt_at);

CREATE TABLE login_attempts (
    key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    window_start {REAL} NOT NULL
);
