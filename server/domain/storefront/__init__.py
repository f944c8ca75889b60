"""The hosted event page: its pure facts (rules.py) and what it reads (service.py)."""
