"""The shared kernel of the server and the desk scanner: pass tokens, keys, check-in records, the
sync protocol and its merge rules. Pure: it imports no web framework, database or UI."""
