"""Decode/encode cost of the card layouts (sscard.cards.layout), and construct beside them.

Why: the layouts are on the host path of every tap (a composite tap decodes or encodes
about 23 of them, terminal and simulator together), and the host CPU budget per tap is
2 ms (1 % of the 400 ms of DB31/T 239-2020). The design once chose *construct* (as
pySim does) for the byte codec; the construct rows measure that alternative with the
same fields and the same adapters (BCD date-time, hex strings, padded text) under the
same dataclass facade. They run only where construct is installed (it is not an sscard
dependency): ``pip install 'construct>=2.10.70,<2.11'``.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from benchmarks.timing import median, row, samples_us
from sscard.apdu.codec import bcd_datetime, parse_bcd_datetime
from sscard.cards.layout import Layout
from sscard.cards.purse import CompositeRecord, DebitData, TxnRecord

_CASES: tuple[type[Layout], ...] = (TxnRecord, DebitData, CompositeRecord)


def _vector(layout: type[Layout]) -> bytes:
    return layout._test_vectors[0][0]


def _construct_struct(layout: type[Layout]) -> Any:
    """The construct Struct equivalent of ``layout`` (same codecs, same order)."""
    import construct as c

    from sscard.cards import layout as lay

    class _DateTime(c.Adapter):  # type: ignore[misc]
        def _decode(self, obj: bytes, ctx: Any, path: Any) -> datetime | None:
            if self.optional and obj in (bytes(7), b"\xff" * 7):  # type: ignore[attr-defined]
                return None
            return parse_bcd_datetime(obj)

        def _encode(self, obj: datetime | None, ctx: Any, path: Any) -> bytes:
            return bytes(7) if obj is None else bcd_datetime(obj)

    class _Hex(c.Adapter):  # type: ignore[misc]
        def _decode(self, obj: bytes, ctx: Any, path: Any) -> str:
            return obj.hex().upper()

        def _encode(self, obj: str, ctx: Any, path: Any) -> bytes:
            return bytes.fromhex(obj)

    def field(codec: Any) -> Any:
        if isinstance(codec, lay.Uint):
            return c.BytesInteger(codec.size)
        if isinstance(codec, lay.Raw):
            return c.Bytes(codec.size)
        if isinstance(codec, lay.Hex):
            return _Hex(c.Bytes(codec.size))
        if isinstance(codec, lay.Text):
            return c.PaddedString(codec.size, codec.encoding)
        if isinstance(codec, lay.DateTime):
            adapter = _DateTime(c.Bytes(7))
            adapter.optional = codec.optional
            return adapter
        raise TypeError(codec)

    return c.Struct(*(name / field(codec) for name, codec, _ in layout._codecs()))


def run() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    try:
        import construct  # noqa: F401
    except ImportError:
        construct_ok = False
    else:
        construct_ok = True
    for layout in _CASES:
        raw = _vector(layout)
        value = layout.decode(raw)
        dec = median(samples_us(lambda: layout.decode(raw), count=3000))  # noqa: B023
        enc = median(samples_us(value.encode, count=3000))
        base_dec = base_enc = None
        if construct_ok:
            struct = _construct_struct(layout)
            names = [f.name for f in dataclasses.fields(layout)]

            def c_decode(struct: Any = struct, names: list[str] = names) -> Any:
                parsed = struct.parse(raw)  # noqa: B023
                return layout(**{n: parsed[n] for n in names})  # noqa: B023

            c_value = {f: getattr(value, f) for f in names}
            assert struct.build(c_value) == raw and c_decode() == value
            base_dec = median(samples_us(c_decode, count=3000))
            base_enc = median(samples_us(lambda: struct.build(c_value), count=3000))  # noqa: B023
        size = layout.size()
        rows.append(row(f"decode {layout.__name__} ({size} B)", "us", dec,
                        "construct", base_dec, target="informative"))  # fmt: skip
        rows.append(row(f"encode {layout.__name__} ({size} B)", "us", enc,
                        "construct", base_enc, target="informative"))  # fmt: skip
    return rows
