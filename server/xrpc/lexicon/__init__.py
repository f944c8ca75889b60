"""Lexicon registry and validator for the XRPC surface and the records it refers to.

Loads the Lexicon v1 documents under ``lexicons/`` and checks query parameters, procedure inputs,
outputs and records against them with atproto's rules: ``maxLength`` counts UTF-8 bytes and
``maxGraphemes`` extended grapheme clusters, unknown properties are ignored, ``knownValues`` is
documentation only, and unions are open unless ``closed``. Missing optional properties that declare
a ``default`` get it. Beyond those rules, no string may hold a NUL, and an integer without bounds of
its own must fit 64 bits signed (a BIGINT column).

The modules, each importing only those before it:

- ``formats``: the string formats (``did``, ``cid``, ``datetime``, …) and the two length counts;
- ``nodes``: the compiled validators, one small node per schema, and :class:`LexiconValidationError`;
- ``syntax``: the documents as written: reading the files, typed access to their JSON, which
  definition types may appear where, and :class:`LexiconLoadError`;
- ``compiler``: documents into trees of nodes, every reference resolved at load time;
- ``registry``: :class:`Lexicons`, the compiled set that the service looks methods up in.
"""

from server.xrpc.lexicon.nodes import LexiconValidationError
from server.xrpc.lexicon.registry import LEXICON_DIR, Lexicons
from server.xrpc.lexicon.syntax import LexiconLoadError

__all__ = ["LEXICON_DIR", "LexiconLoadError", "LexiconValidationError", "Lexicons"]
