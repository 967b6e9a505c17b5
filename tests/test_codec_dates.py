"""The BCD date codecs (sscard.apdu.codec) agree with ``datetime.strptime`` / ``strftime``.

The codecs parse fixed-width digits directly (strptime costs ~15 us, on every tap);
the reference here is the standard library's own parser, on any digit string.
"""

from __future__ import annotations

from datetime import date, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from sscard.apdu.codec import bcd_date, bcd_datetime, parse_bcd_date, parse_bcd_datetime
from sscard.apdu.errors import TlvError

_TWO = st.integers(0, 99).map(lambda n: f"{n:02d}")


def _reference(text: str, fmt: str) -> object:
    try:
        return datetime.strptime(text, fmt)
    except ValueError:
        return "error"


def _ours(fn: object, raw: bytes) -> object:
    try:
        return fn(raw)  # type: ignore[operator]
    except TlvError:
        return "error"


@settings(max_examples=400, deadline=None)
@given(year=st.integers(0, 9999), parts=st.lists(_TWO, min_size=5, max_size=5))
def test_parse_matches_strptime(year: int, parts: list[str]) -> None:
    text = f"{year:04d}" + "".join(parts)
    expected = _reference(text, "%Y%m%d%H%M%S")
    assert _ours(parse_bcd_datetime, bytes.fromhex(text)) == expected
    expected_date = _reference(text[:8], "%Y%m%d")
    got = _ours(parse_bcd_date, bytes.fromhex(text[:8]))
    assert got == (expected_date if expected_date == "error" else expected_date.date())  # type: ignore[attr-defined]


@given(st.datetimes(min_value=datetime(1000, 1, 1)).map(lambda d: d.replace(microsecond=0)))
def test_encode_matches_strftime(when: datetime) -> None:
    assert bcd_datetime(when) == bytes.fromhex(when.strftime("%Y%m%d%H%M%S"))
    assert bcd_date(when.date()) == bytes.fromhex(when.strftime("%Y%m%d"))
    assert parse_bcd_datetime(bcd_datetime(when)) == when
    assert (
        parse_bcd_date(bcd_date(when.date()))
        == when.date()
        == date(when.year, when.month, when.day)
    )
