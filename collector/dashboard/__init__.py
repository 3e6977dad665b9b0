"""The dashboard at /admin: login, the sites and their numbers, leads, carts, settings, the dev mailbox."""
