"""APDU encode + decode per second against a naive list-of-int codec (pyscard style)."""

from __future__ import annotations

from typing import Any

from benchmarks.timing import rate, row
from sscard.apdu import Command, Response

RAW = bytes.fromhex("805003020B0100000064000000000001") + b"\x0f"
RESP = bytes.fromhex("0000271000010000000100112233449000")


def _naive_roundtrip() -> None:
    """The pattern the anchors warn about: APDUs as list[int], parsed by hand."""
    apdu = list(RAW)
    lc = apdu[4]
    header, data, le = apdu[:4], apdu[5 : 5 + lc], apdu[5 + lc :]
    rebuilt = bytes([*header, len(data), *data, *le])
    assert rebuilt == RAW
    resp = list(RESP)
    _ = (resp[:-2], resp[-2] << 8 | resp[-1])


def _sscard_roundtrip() -> None:
    cmd = Command.parse(RAW)
    assert bytes(cmd) == RAW
    Response.parse(RESP)


def run() -> list[dict[str, Any]]:
    ours = rate(_sscard_roundtrip)
    naive = rate(_naive_roundtrip)
    return [
        row(
            "APDU parse+build+response parse",
            "ops/s",
            ours,
            "naive list[int] codec",
            naive,
            target="informative (validation costs)",
        )
    ]
