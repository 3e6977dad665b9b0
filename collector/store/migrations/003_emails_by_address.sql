-- Attribution looks up the reminders a shopper's address clicked; unsubscribes cancel by address.
CREATE INDEX emails_site_addr ON emails (site_id, to_addr);
