"""Modal dialogs: PIN entry, destructive-step confirmation, exception entry."""
