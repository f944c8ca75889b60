"""Identifiers (``server.domain.common.new_id``): their form, their order, and their randomness
across the processes a server forks."""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st

from server.domain.common import new_id

DIGITS = "0123456789abcdefghjkmnpqrstvwxyz"


def decoded(identifier: str) -> int:
    value = 0
    for digit in identifier.rpartition("_")[2]:
        value = value * 32 + DIGITS.index(digit)
    return value


@given(st.lists(st.integers(min_value=0, max_value=(1 << 48) - 1), min_size=1, max_size=20))
def test_an_id_names_its_millisecond_and_later_ids_sort_after(moments: list[int]) -> None:
    made = [new_id("tk", ms) for ms in sorted(moments)]
    for ms, identifier in zip(sorted(moments), made, strict=True):
        prefix, _, digits = identifier.partition("_")
        assert prefix == "tk" and len(digits) == 26 and set(digits) <= set(DIGITS)
        assert decoded(identifier) >> 80 >= ms  # its own millisecond, or later within the same one
    assert made == sorted(made) and len(set(made)) == len(made)


def test_a_forked_process_draws_other_random_bits() -> None:
    """A child forked after its parent drew random bits (as a server's workers are) does not make
    the parent's next ids: the buffered bits are not inherited."""
    new_id("tk", 1)
    far = (1 << 48) - 1
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child's side)
        os.write(writing, new_id("tk", far).encode())
        os._exit(0)
    os.close(writing)
    os.waitpid(child, 0)
    theirs = os.read(reading, 100).decode()
    os.close(reading)
    mine = new_id("tk", far)
    assert decoded(theirs) >> 80 == decoded(mine) >> 80 == far
    assert theirs != mine
