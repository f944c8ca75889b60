"""Any JSON given to the validator is either accepted or refused with LexiconValidationError."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.xrpc.lexicon import Lexicons, LexiconValidationError

ROOT = Path(__file__).resolve().parents[2] / "lexicons"
LEXICONS = Lexicons.load(ROOT)
METHODS = sorted(LEXICONS.method_nsids())
QUERIES = [nsid for nsid in METHODS if getattr(LEXICONS.method(nsid), "kind", None) == "query"]


def _property_names() -> list[str]:
    """Every property name the lexicons use, so generated objects reach deep into the schemas."""
    names: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            properties = node.get("properties")
            if isinstance(properties, dict):
                names.update(properties)
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    for path in ROOT.rglob("*.json"):
        walk(json.loads(path.read_text("utf-8")))
    return sorted(names)


SAMPLE_STRINGS = [
    "",
    "usd",
    "test",
    "event_1",
    "tier_1",
    "did:plc:z72i7hdynmk6r22z27h6tvur",
    "at://did:plc:z72i7hdynmk6r22z27h6tvur/community.lexicon.calendar.event/3jzfcijpj2z2a",
    "https://example.com/",
    "2026-11-29T18:02:00.000Z",
    "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a",
    "tickets.atmosphere.defs#ticketHoldItemRequest",
    "e\u0301\U0001f468\u200d\U0001f469",
]
strings = st.one_of(
    st.sampled_from(SAMPLE_STRINGS),
    st.text(max_size=40),
    st.text(st.characters(exclude_categories=()), max_size=10),  # lone surrogates too
)
keys = st.one_of(st.sampled_from([*_property_names(), "$type", "$bytes", "$link"]), st.text(max_size=8))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-2, max_value=60),
    st.floats(allow_nan=False, allow_infinity=False),
    strings,
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(keys, children, max_size=8),
    max_leaves=20,
)
json_objects = st.dictionaries(keys, json_values, max_size=10)
query_values = st.one_of(strings, st.lists(strings, max_size=3))


@pytest.mark.parametrize("nsid", METHODS)
@settings(max_examples=60, deadline=None)
@given(body=st.one_of(json_objects, json_values))
def test_input_is_accepted_or_refused(nsid: str, body: object) -> None:
    try:
        result = LEXICONS.validate_input(nsid, body)
    except LexiconValidationError:
        return
    assert isinstance(result, dict)


@settings(max_examples=100, deadline=None)
@given(nsid=st.sampled_from(METHODS), body=json_objects)
def test_output_is_accepted_or_refused(nsid: str, body: object) -> None:
    try:
        LEXICONS.validate_output(nsid, body)
    except LexiconValidationError:
        return


@pytest.mark.parametrize("nsid", QUERIES)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_params_are_accepted_or_refused(nsid: str, data: st.DataObject) -> None:
    method = LEXICONS.method(nsid)
    assert method is not None and method.parameters is not None
    names = st.sampled_from(sorted(cast(dict[str, object], method.parameters["properties"])))
    query = data.draw(st.dictionaries(names | st.text(max_size=8), query_values, max_size=6))
    try:
        result = LEXICONS.validate_params(nsid, query)
    except LexiconValidationError:
        return
    assert isinstance(result, dict)
