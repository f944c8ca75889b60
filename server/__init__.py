"""Atmosphere Tickets: the ticketing and check-in service."""

__version__ = "0.1.0"
