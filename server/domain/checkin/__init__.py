"""Check-in lists, the online door decision and the check-in log."""
