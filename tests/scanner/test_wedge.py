"""The keyboard-wedge state machine: a scan is buffered until its terminator, whatever pauses it
has inside; human typing is never a scan; a code without its terminator is a fragment."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from scanner_app.core.wedge import ABANDON_S, MAX_GAP_S, MIN_LENGTH, WedgeDetector, WedgeRead

CODES = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", min_size=MIN_LENGTH, max_size=300)
FAST = st.floats(min_value=0.0005, max_value=MAX_GAP_S * 0.9)
SLOW = st.floats(min_value=MAX_GAP_S * 1.1, max_value=2.0)
IDLE = st.floats(min_value=ABANDON_S * 1.01, max_value=5.0)
HUMAN_TEXT = st.text(alphabet=st.characters(blacklist_characters="\r\n"), min_size=1, max_size=40)


def type_out(
    detector: WedgeDetector, keys: str, gaps: list[float], start: float
) -> tuple[list[WedgeRead], float]:
    """Feed ``keys`` with ``gaps[i]`` seconds before key ``i``; answers what was read and the time."""
    found, now = [], start
    for key, gap in zip(keys, gaps, strict=True):
        now += gap
        read = detector.feed(key, now)
        if read is not None:
            found.append(read)
    return found, now


@given(code=CODES, data=st.data())
def test_a_fast_burst_ended_by_enter_is_one_code(code: str, data: st.DataObject) -> None:
    gaps = data.draw(st.lists(FAST, min_size=len(code) + 1, max_size=len(code) + 1))
    gaps[0] = data.draw(SLOW)  # the scan starts after a pause
    found, _ = type_out(WedgeDetector(), code + "\r", gaps, 100.0)
    assert found == [WedgeRead(code, complete=True)]


@given(text=HUMAN_TEXT, data=st.data())
def test_human_typing_is_never_a_scan(text: str, data: st.DataObject) -> None:
    keys = text + "\n"
    gaps = data.draw(st.lists(SLOW, min_size=len(keys), max_size=len(keys)))
    found, _ = type_out(WedgeDetector(), keys, gaps, 0.0)
    assert found == []


@given(noise=HUMAN_TEXT, code=CODES, data=st.data())
def test_a_scan_after_stray_keys_is_read_whole(noise: str, code: str, data: st.DataObject) -> None:
    detector = WedgeDetector()
    slow = data.draw(st.lists(SLOW, min_size=len(noise), max_size=len(noise)))
    found, now = type_out(detector, noise, slow, 0.0)
    fast = data.draw(st.lists(FAST, min_size=len(code) + 1, max_size=len(code) + 1))
    fast[0] = data.draw(IDLE)
    scanned, _ = type_out(detector, code + "\r", fast, now)
    assert found == [] and scanned == [WedgeRead(code, complete=True)]


@given(
    code=CODES, at=st.integers(min_value=1), pause=st.floats(min_value=MAX_GAP_S, max_value=ABANDON_S * 0.9)
)
def test_a_pause_inside_a_code_does_not_split_it(code: str, at: int, pause: float) -> None:
    gaps = [0.001] * (len(code) + 1)
    gaps[1 + at % len(code)] = pause
    found, _ = type_out(WedgeDetector(), code + "\r", gaps, 0.0)
    assert found == [WedgeRead(code, complete=True)]


@given(code=CODES, cut=st.integers(min_value=1), idle=IDLE)
def test_a_code_without_its_terminator_is_a_fragment(code: str, cut: int, idle: float) -> None:
    detector = WedgeDetector()
    part = code[: 2 + cut % (len(code) - 1)]
    found, now = type_out(detector, part, [0.001] * len(part), 0.0)
    assert found == [] and detector.flush(now + idle) == WedgeRead(part, complete=False)
    following, _ = type_out(detector, code + "\r", [idle] + [0.001] * len(code), now)
    assert following == [WedgeRead(code, complete=True)]  # the next scan is not merged with it


def test_a_short_burst_is_a_fragment_and_enter_alone_reads_nothing() -> None:
    detector = WedgeDetector()
    assert detector.feed("\r", 0.0) is None
    found, _ = type_out(detector, "ABC\r", [1.0, 0.001, 0.001, 0.001], 0.0)
    assert found == [WedgeRead("ABC", complete=False)]


def test_tab_suffix_and_prefix_scanners() -> None:
    tab = WedgeDetector(terminators=frozenset({"\t"}))
    assert type_out(tab, "ABCDEFGHIJ\t", [1.0] + [0.001] * 10, 0.0)[0] == [WedgeRead("ABCDEFGHIJ", True)]
    suffix = WedgeDetector(suffix="##")
    assert type_out(suffix, "ABCDEFGHIJ##", [1.0] + [0.001] * 11, 0.0)[0] == [WedgeRead("ABCDEFGHIJ", True)]
    prefix = WedgeDetector(prefix="~")
    typed, now = type_out(prefix, "hello\r", [0.001] * 6, 0.0)  # fast, but no prefix: typed
    assert typed == []
    found, _ = type_out(prefix, "x~ABCDEFGHIJ\r", [0.5] + [0.001] * 12, now)
    assert found == [WedgeRead("ABCDEFGHIJ", True)]
