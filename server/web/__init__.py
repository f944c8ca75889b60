"""Non-XRPC HTTP: the broker's webhooks, the dev checkout and the hosted pass pages."""
