"""The AT Protocol as a client speaks it: AT-URIs, record CIDs, the Lexicon datetime format, XRPC
calls to a PDS and an account session on it, and the event graph (calendar event records read by
their AT-URI). No web framework and no database: the domain uses these to read and write records."""
