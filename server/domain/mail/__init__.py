"""E-mail to buyers: a durable outbox, the messages, and the worker that sends them."""
