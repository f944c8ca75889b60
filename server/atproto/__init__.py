"""The AT Protocol as a client speaks it: AT-URIs, record CIDs, XRPC calls to a PDS and an account
session on it. No web framework and no database: the domain uses these to read and write records."""
