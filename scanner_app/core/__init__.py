"""The desk scanner's core: the door decisions and the desk's state machine. It does no I/O of its
own: the clock, the id source, the peers, the local store and the credential vault are handed to
it (:mod:`scanner_app.core.ports`), and it imports no UI toolkit, so it runs headless
(``tickets-scanner --headless``), in tests and under the Textual app alike."""
