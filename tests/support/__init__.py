"""Test support: databases, a real server on loopback and a signing app client."""
