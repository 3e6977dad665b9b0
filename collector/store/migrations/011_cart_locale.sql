-- The language of the storefront page a cart came from (the snippet's resolved locale): with the site's
-- locale "auto", the cart's reminders and the pages behind their links use it (collector/locales).
ALTER TABLE carts ADD COLUMN locale TEXT;
