"""Outbound lifecycle webhooks: a durable outbox written with each change, delivered at least once."""
