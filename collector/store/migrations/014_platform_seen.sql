-- Where each order's report came from ('browser', 'api', 'shopify', 'woocommerce'; NULL before this
-- release), so the install page can say when the platform's order webhook last delivered.
ALTER TABLE orders ADD COLUMN source TEXT;
CREATE INDEX orders_site_source ON orders (site_id, source, created_at);
-- The install page's "carts from the platform, last seen": the newest cart that carries a platform token.
CREATE INDEX carts_site_platform_seen ON carts (site_id, updated_at) WHERE platform_token IS NOT NULL;
