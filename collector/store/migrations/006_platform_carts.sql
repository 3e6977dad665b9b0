-- The platform's own cart token (Shopify's cart token), by which its order webhook names the cart.
ALTER TABLE carts ADD COLUMN platform_token TEXT;
CREATE INDEX carts_site_platform_token ON carts (site_id, platform_token);
