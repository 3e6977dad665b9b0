"""Fakes of outside systems (storefront platforms, mail providers), built from their public documentation."""
