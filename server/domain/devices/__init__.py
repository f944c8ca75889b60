"""Desk scanners: enrollment, credentials, offline bundles and the check-in record sync."""
