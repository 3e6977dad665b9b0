-- One open (or abandoned) cart per visitor. The store already keeps to it, and
-- SQLite's single writer made it hold by itself; with PostgreSQL two cart updates
-- of one visitor may run at once (in one process or in two), and without this
-- index both would find no cart and insert one each. With it the second insert
-- fails, its transaction is run again and updates the cart the first one made.
CREATE UNIQUE INDEX carts_one_open_per_visitor ON carts (site_id, visitor_id) WHERE status IN ('open', 'abandoned');
