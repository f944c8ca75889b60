"""The keyboard-wedge state machine: a fast burst ended by Enter is one code, human typing never is."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from scanner_app.core.wedge import MAX_GAP_S, MIN_LENGTH, WedgeDetector

CODES = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", min_size=MIN_LENGTH, max_size=300)
FAST = st.floats(min_value=0.0005, max_value=MAX_GAP_S * 0.9)
SLOW = st.floats(min_value=MAX_GAP_S * 1.1, max_value=2.0)
HUMAN_TEXT = st.text(alphabet=st.characters(blacklist_characters="\r\n"), min_size=1, max_size=40)


def type_out(detector: WedgeDetector, keys: str, gaps: list[float], start: float) -> tuple[list[str], float]:
    """Feed ``keys`` with ``gaps[i]`` seconds before key ``i``; answers the codes read and the time."""
    found, now = [], start
    for key, gap in zip(keys, gaps, strict=True):
        now += gap
        code = detector.feed(key, now)
        if code is not None:
            found.append(code)
    return found, now


@given(code=CODES, data=st.data())
def test_a_fast_burst_ended_by_enter_is_one_code(code: str, data: st.DataObject) -> None:
    gaps = data.draw(st.lists(FAST, min_size=len(code) + 1, max_size=len(code) + 1))
    gaps[0] = data.draw(SLOW)  # the scan starts after a pause
    found, _ = type_out(WedgeDetector(), code + "\r", gaps, 100.0)
    assert found == [code]


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
    fast[0] = data.draw(SLOW)
    scanned, _ = type_out(detector, code + "\r", fast, now)
    assert found == [] and scanned == [code]


@given(code=CODES, cut=st.integers(min_value=1, max_value=MIN_LENGTH - 1), pause=SLOW)
def test_a_pause_inside_a_code_or_a_short_burst_reads_nothing_whole(
    code: str, cut: int, pause: float
) -> None:
    detector = WedgeDetector()
    gaps = [0.001] * (len(code) + 1)
    gaps[len(code) - cut] = pause  # only the last `cut` keys (fewer than a code) follow the pause
    found, _ = type_out(detector, code + "\r", gaps, 0.0)
    assert found == []


def test_enter_alone_or_after_a_pause_reads_nothing() -> None:
    detector = WedgeDetector()
    assert detector.feed("\r", 0.0) is None
    for n, key in enumerate("ABCDEFGHIJ"):
        assert detector.feed(key, 1.0 + n * 0.001) is None
    assert detector.feed("\r", 5.0) is None  # Enter long after the burst: typed, not scanned
    detector.reset()
    assert detector.feed("A", 6.0) is None
