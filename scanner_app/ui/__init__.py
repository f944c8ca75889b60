"""The door staff's screen: a Textual app over :class:`scanner_app.core.desk.DeskCore`.

``screens/`` holds one module per screen, ``widgets/`` one per screen region, ``messages.py``
what happened (past tense), and ``app.py`` the app that owns the core and runs its workers.
"""
