"""Reports sent to the dashboard's users: the weekly report email (weekly.py) and its opt-out link (routes.py)."""
