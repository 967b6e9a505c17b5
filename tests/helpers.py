"""Small helpers several test modules share: raw APDUs to a simulated card, a connection.

Imported as ``helpers`` (tests/ is on sys.path, as for pcsc_harness). Only plumbing
lives here; every assertion about card behaviour stays in the test that makes it.
"""

from __future__ import annotations

from typing import Any

from sscard.apdu import Response
from sscard.simulators.base import SimulatedCard
from sscard.terminals import Connection, SimulatorTransport


def _raw(apdu: str | bytes) -> bytes:
    return bytes.fromhex(apdu.replace(" ", "")) if isinstance(apdu, str) else apdu


def run(card: SimulatedCard, apdu: str | bytes) -> tuple[bytes, int]:
    """Send one APDU (hex, spaces allowed, or bytes); return (data, SW as an int)."""
    answer = card.execute(_raw(apdu))
    assert len(answer) >= 2
    return answer[:-2], int.from_bytes(answer[-2:], "big")


def ok(card: SimulatedCard, apdu: str | bytes) -> bytes:
    """Send one APDU that must answer 9000; return its data."""
    data, sw = run(card, apdu)
    assert sw == 0x9000, f"{sw:04X}"
    return data


def tx(card: SimulatedCard, apdu: str | bytes) -> Response:
    """Send one APDU; return the parsed response."""
    return Response.parse(card.execute(_raw(apdu)))


def connect(card: object, **kwargs: Any) -> Connection:
    """A connected :class:`Connection` to ``card`` in an in-process simulator slot."""
    return Connection(SimulatorTransport(card), **kwargs).connect()  # type: ignore[arg-type]
