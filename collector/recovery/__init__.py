"""Recovery: abandonment, the reminder sequence, mail rendering and sending, signed links."""
