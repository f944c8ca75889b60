"""Organizer exports of a check-in list: the door list (CSV, XLSX, PDF) and the check-in log (CSV)."""
