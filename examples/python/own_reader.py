"""Bring your own reader: a contactless module on a UART, as many bus validators have.

sscard talks to every reader through :class:`sscard.terminals.Transport`: five
members move bytes (``connected``, ``connect``, ``disconnect``, ``reconnect``,
``transmit``); everything protocol-level (T=0 GET RESPONSE, 6Cxx, chaining,
tracing, redaction) lives once in :class:`~sscard.terminals.Connection` above it.

For a contactless (ISO/IEC 14443-4) card there is no ATR on the wire; set the one
PC/SC synthesises (PC/SC Part 3 §3.1.3.2.3.1: ``3B 8n 80 01`` + the ATS historical
bytes + TCK) and the protocol ``"T=1"`` (block transport, no 61xx/6Cxx dance), so
code that looks at ATR and protocol behaves as with a PC/SC contactless reader.

Here the "module" is a thread speaking a tiny length-prefixed frame protocol over
a socket pair, with a simulated card behind it; on a validator it is your serial
port and your module's command set. Run: ``python examples/python/own_reader.py``.
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
from functools import reduce

from sscard.applets.transit import Purse
from sscard.card_interface import SimulatedCard
from sscard.simulators.card import build_card
from sscard.simulators.profile import new_card
from sscard.terminals import Connection, NoCard, NotConnected, Transport
from sscard.terminals.atr import parse_atr

ACTIVATE, APDU = 0x01, 0x02  # the module's commands (yours will differ)


def contactless_atr(historical: bytes) -> bytes:
    """PC/SC Part 3 §3.1.3.2.3.1: the ATR a PC/SC reader shows for an ISO 14443-4 card."""
    body = bytes([0x80 | len(historical), 0x80, 0x01]) + historical
    return b"\x3b" + body + bytes([reduce(lambda a, b: a ^ b, body, 0)])


def _frame(sock: socket.socket, kind: int, payload: bytes) -> None:
    sock.sendall(struct.pack(">BH", kind, len(payload)) + payload)


def _read_frame(sock: socket.socket) -> tuple[int, bytes]:
    head = sock.recv(3, socket.MSG_WAITALL)
    kind, size = struct.unpack(">BH", head)
    return kind, sock.recv(size, socket.MSG_WAITALL) if size else b""


class UartModuleTransport(Transport):
    """A contactless reader module behind a byte stream (a serial port on a real bus)."""

    name = "uart contactless module"

    def __init__(self, link: socket.socket) -> None:
        super().__init__(supports_extended=False)
        self._link = link

    @property
    def connected(self) -> bool:
        return bool(self._atr)

    def connect(self) -> None:
        _frame(self._link, ACTIVATE, b"")
        _, ats_historical = _read_frame(self._link)
        if not ats_historical:
            raise NoCard("no card in the field", "感应区内无卡")
        self._atr, self._protocol = contactless_atr(ats_historical), "T=1"

    def disconnect(self) -> None:
        self._atr, self._protocol = b"", None

    def reconnect(self, reset: bool = False) -> None:
        self.disconnect()
        self.connect()

    def transmit(self, apdu: bytes) -> bytes:
        if not self.connected:
            raise NotConnected()
        _frame(self._link, APDU, apdu)
        return _read_frame(self._link)[1]


def module_firmware(link: socket.socket, card: SimulatedCard) -> None:
    """Stands in for the module: activates the card, relays APDUs."""
    historical = parse_atr(card.power_on()).historical
    while True:
        try:
            kind, payload = _read_frame(link)
        except (OSError, struct.error):
            return
        _frame(link, kind, historical if kind == ACTIVATE else card.execute(payload))


def main() -> int:
    ours, theirs = socket.socketpair()
    card = build_card(new_card("anhui", seed=5, balance=2_345))
    threading.Thread(target=module_firmware, args=(theirs, card), daemon=True).start()
    with Connection(UartModuleTransport(ours)) as conn:
        purse = Purse(conn)
        purse.select()
        balance = purse.balance()
        print(f"ATR {conn.transport.atr.hex().upper()}  {conn.transport.protocol}")
        print(f"balance {balance / 100:.2f} CNY")
    ours.close()
    return 0 if balance == 2_345 else 1


if __name__ == "__main__":
    sys.exit(main())
