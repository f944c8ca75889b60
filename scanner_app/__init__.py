"""The desk scanner for door staff."""
