"""Fakes of outside systems (mail providers), built from their public documentation."""
