"""The desk's adapters to the world: the HTTP client of its peers, the hub server, the SQLite store,
the credential vault, frame sources, QR decoders and the camera loop, the system clock and ids.
:func:`scanner_app.start.open_desk` builds them and hands them to the core
(:mod:`scanner_app.core.ports` says what it needs of each)."""
