"""Reusable widgets: status table, PIN field, hash read-aloud."""
