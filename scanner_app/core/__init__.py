"""The desk scanner's core: everything but the screen. It imports no UI toolkit, so it runs
headless (``tickets-scanner --headless``), in tests and under the Textual app alike."""
