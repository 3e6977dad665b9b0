-- Webhooks are claimed as emails are: a token per sweep names the claim (store/claims.py).
ALTER TABLE webhook_outbox ADD COLUMN claim_token TEXT;
-- Superseded by carts_site_open_due (004): the sweep marks carts abandoned site by site.
DROP INDEX carts_open_due;
