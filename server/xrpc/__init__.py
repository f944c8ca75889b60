"""The XRPC surface: routing, lexicon validation and method handlers."""
