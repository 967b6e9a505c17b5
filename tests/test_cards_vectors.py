"""Walk every layout of sscard.cards: inline vectors, hypothesis round trips, bad input.

One test covers all layouts (pySim's pattern, shared/design/lessons-from-anchors.md):
a new layout class is tested as soon as it is declared.
"""

from __future__ import annotations

import contextlib
import dataclasses
import string
from datetime import date, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sscard.cards import LayoutError, LayoutLike, all_layouts
from sscard.cards.layout import Cn, Date, DateTime, Hex, Layout, Raw, Text, Uint, _ClassAdapter
from sscard.cards.purse import EpFci, PpseEntry, PpseFci
from sscard.cards.ssse import CardIdCode, Fmt, SsseFci, SsseItem

LAYOUTS = all_layouts()
IDS = [layout.layout_name for layout in LAYOUTS]

# A few GBK characters (names, places) plus ASCII, to exercise 2-byte text.
_CJK = "张王李赵欧阳买提社会保障卡上海江苏浙江安徽·"
_ASCII = string.ascii_letters + string.digits + " -.:"


def _text(size: int, encoding: str) -> st.SearchStrategy[str]:
    alphabet = _ASCII if encoding == "ascii" else _ASCII + _CJK
    return st.text(alphabet, max_size=size).filter(lambda t: len(t.encode(encoding)) <= size)


_DATES = st.dates(min_value=date(1000, 1, 1), max_value=date(9999, 12, 31))
_DATETIMES = st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31)).map(
    lambda d: d.replace(microsecond=0)
)


def codec_strategy(codec: Any) -> st.SearchStrategy[Any]:
    match codec:
        case Raw(size=n):
            return st.binary(min_size=n, max_size=n)
        case Uint(size=n):
            return st.integers(0, (1 << (8 * n)) - 1)
        case Hex(size=n):
            return st.binary(min_size=n, max_size=n).map(lambda b: b.hex().upper())
        case Cn(size=n):
            return st.text(string.digits, max_size=2 * n)
        case Text(size=n, encoding=enc):
            return _text(n, enc)
        case Date(optional=opt):
            return st.none() | _DATES if opt else _DATES
        case DateTime(optional=opt):
            return st.none() | _DATETIMES if opt else _DATETIMES
    raise AssertionError(f"no strategy for codec {codec!r}")


# Fields whose values are constrained beyond their codec.
_OVERRIDES: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "CompositeRecord": {"tag": st.just(0x27), "length": st.just(0x7D)},
    "CardIdCode": {"region": st.text(string.digits, min_size=6, max_size=6)},
}


def layout_strategy(cls: type[Layout]) -> st.SearchStrategy[Any]:
    kwargs = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        codec = f.metadata["codec"]
        override = _OVERRIDES.get(cls.__name__, {}).get(f.name)
        strat = override if override is not None else codec_strategy(codec)
        if f.metadata.get("optional_tail"):
            strat = st.none() | strat
        kwargs[f.name] = strat
    return st.builds(cls, **kwargs)


def _item_strategy(item: SsseItem) -> st.SearchStrategy[Any]:
    match item.fmt:
        case Fmt.CARD_ID:
            return layout_strategy(CardIdCode)
        case Fmt.AN:
            return _text(item.length, "ascii")
        case Fmt.GBK:
            return _text(item.length, "gbk")
        case Fmt.CN:
            return st.text(string.digits, max_size=2 * item.length)
        case Fmt.DATE:
            return _DATES


_HAND_WRITTEN: dict[type, st.SearchStrategy[Any]] = {
    SsseFci: st.builds(SsseFci, algorithm=st.integers(0, 255), df_name=st.binary(max_size=16)),
    EpFci: st.builds(
        EpFci,
        ef0015=st.deferred(lambda: layout_strategy(_ef0015())),
        app_version=st.none() | st.integers(0, 255),
        aid=st.binary(min_size=5, max_size=16),
    ),
    PpseFci: st.builds(
        PpseFci,
        entries=st.lists(
            st.builds(
                PpseEntry,
                aid=st.binary(min_size=5, max_size=16),
                label=st.binary(max_size=16),
                priority=st.none() | st.integers(0, 255),
            ),
            max_size=3,
        ).map(tuple),
        name=st.binary(max_size=16),
    ),
}


def _ef0015() -> type[Layout]:
    from sscard.cards.purse import Ef0015

    return Ef0015


def strategy_for(layout: LayoutLike) -> st.SearchStrategy[Any]:
    if isinstance(layout, SsseItem):
        return _item_strategy(layout)
    assert isinstance(layout, _ClassAdapter)
    if issubclass(layout.cls, Layout):
        return layout_strategy(layout.cls)
    return _HAND_WRITTEN[layout.cls]


# --------------------------------------------------------------------------- the walker


def test_registry_is_complete() -> None:
    names = set(IDS)
    for expected in (
        "CardIdCode", "SsseFci", "AtrHistorical", "Ef0015", "Ef0016", "Ef0017", "TxnRecord",
        "TripRecord", "CompositeRecord", "EpFci", "PpseFci", "PurchaseInitResponse",
        "LoadInitResponse", "DebitResponse", "ProveResponse", "InitData", "DebitData",
        "CreditData", "CreditResponse", "SamPurchaseInitData", "SamPurchaseInitResponse",
        "BalanceResponse", "ProveData", "SamCreditData", "SamKeyInitData", "SamCipherData",
        "SamCryptogram",
    ):  # fmt: skip
        assert expected in names
    assert sum(1 for n in names if n.startswith("SSSE EF05")) == 7
    assert sum(1 for n in names if n.startswith("SSSE EF06")) == 7
    assert len(names) == len(IDS), "layout names must be unique"


@pytest.mark.parametrize("layout", LAYOUTS, ids=IDS)
def test_vectors(layout: LayoutLike) -> None:
    vectors = layout.test_vectors()
    assert vectors, f"{layout.layout_name} has no test vector"
    for raw, expected in vectors:
        decoded = layout.decode_any(raw)
        assert decoded == expected
        assert layout.encode_any(decoded) == raw


@pytest.mark.parametrize("layout", LAYOUTS, ids=IDS)
def test_fixed_sizes_match_reference(layout: LayoutLike) -> None:
    """Sizes from reference §P1.3, §P2, §P5 and reference §C1.4, §C5."""
    sizes = {
        "Ef0015": 30, "Ef0016": 55, "Ef0017": 60, "TxnRecord": 23, "TripRecord": 48,
        "CompositeRecord": 128, "PurchaseInitResponse": 15, "LoadInitResponse": 16,
        "DebitResponse": 8, "ProveResponse": 8, "InitData": 11, "DebitData": 15,
        "CreditData": 11, "CreditResponse": 4, "SamPurchaseInitData": 36,
        "SamPurchaseInitResponse": 8, "CardIdCode": 16, "AtrHistorical": 13,
        "BalanceResponse": 4, "ProveData": 2, "SamCreditData": 4, "SamKeyInitData": 16,
        "SamCipherData": 24, "SamCryptogram": 8,
    }  # fmt: skip
    if isinstance(layout, _ClassAdapter) and issubclass(layout.cls, Layout):
        assert layout.cls.size() == sizes[layout.layout_name]
    elif isinstance(layout, SsseItem):
        for raw, _ in layout.test_vectors():
            assert raw[1] == layout.length and len(raw) == 2 + layout.length


@pytest.mark.parametrize("layout", LAYOUTS, ids=IDS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(data=st.data())
def test_round_trip(layout: LayoutLike, data: st.DataObject) -> None:
    value = data.draw(strategy_for(layout))
    raw = layout.encode_any(value)
    assert layout.decode_any(raw) == value
    assert layout.encode_any(layout.decode_any(raw)) == raw


@pytest.mark.parametrize("layout", LAYOUTS, ids=IDS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_garbage_is_a_layout_error(layout: LayoutLike, data: st.DataObject) -> None:
    """Arbitrary bytes decode or raise LayoutError, never IndexError/ValueError."""
    sample = layout.test_vectors()[0][0]
    raw = data.draw(st.binary(min_size=len(sample), max_size=len(sample)) | st.binary(max_size=140))
    with contextlib.suppress(LayoutError):
        layout.decode_any(raw)


# --------------------------------------------------------------------------- specific


def test_wrong_length_and_bad_values() -> None:
    from sscard.cards.purse import Ef0015, TxnRecord

    with pytest.raises(LayoutError, match="29 bytes, expected 30"):
        Ef0015.decode(bytes(29))
    rec = TxnRecord._test_vectors[0][1]
    with pytest.raises(LayoutError, match="field amount"):
        dataclasses.replace(rec, amount=1 << 32).encode()
    bad_date = bytearray(TxnRecord._test_vectors[0][0])
    bad_date[16:20] = bytes.fromhex("20241399")
    with pytest.raises(LayoutError, match="field time"):
        TxnRecord.decode(bytes(bad_date))


def test_gbk_unencodable_name_is_a_layout_error() -> None:
    from sscard.cards.ssse import item_by_tag

    name = item_by_tag(0xEF06, 0x09)
    with pytest.raises(LayoutError):
        name.encode("😀")
    with pytest.raises(LayoutError):
        name.encode("张" * 16)  # 32 bytes > 30


def test_composite_header_is_checked() -> None:
    from sscard.cards.purse import CompositeRecord

    raw = bytearray(CompositeRecord._test_vectors[0][0])
    raw[2] = 0x7C
    with pytest.raises(LayoutError, match="27 xx 7D"):
        CompositeRecord.decode(bytes(raw))


def test_simulator_handlers_speak_through_the_layouts() -> None:
    """The purse applet and the PSAM decode every command body and encode every answer
    with a layout of sscard.cards: no slice of ``cmd.data``, no integer packed by hand,
    no TLV built beside EpFci/PpseFci. A layout change therefore reaches both sides."""
    import inspect
    import re

    from sscard.simulators import psam, purse_applet

    hand = re.compile(r"cmd\.data\[|data\[\d|\.to_bytes\(|int\.from_bytes|Tlv[.(]|bytes\(\[")
    for module in (purse_applet, psam):
        found = [
            line.strip()
            for line in inspect.getsource(module).splitlines()
            if hand.search(line) and not line.lstrip().startswith(("#", '"'))
        ]
        assert found == [], f"{module.__name__} slices bytes by hand: {found}"
    # Every instruction of both applets is in a module that imports its layouts.
    assert {"InitData", "DebitData", "CreditData", "ProveData", "EpFci"} <= set(vars(purse_applet))
    assert {"SamPurchaseInitData", "SamCreditData", "SamKeyInitData", "SamCipherData"} <= set(
        vars(psam)
    )
