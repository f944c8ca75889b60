"""``tickets``, the operator's command line: :mod:`server.cli.main` builds the parser and runs a
command; each other module registers one group of commands."""
