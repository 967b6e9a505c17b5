"""pytest plugin: a private pcscd with the vsmartcard-vpcd driver, and virtual readers.

Loaded from tests/conftest.py with ``pytest_plugins = ["pcsc_harness"]``. The
daemon and the slots come from the shipped plugin (``sscard.pytest_plugin``:
``sscard_pcscd``, ``sscard_reader``, ``sscard_reader2``); here they keep their names:

- ``pcscd`` (session): ``sscard.simulators.pcscd.PrivatePcscd`` with its own
  reader.conf.d (readers "sscard test VPCD 00 00"/"00 01", ports 40000/40001),
  ready when its log says "daemon ready", stopped by pid, no socket left behind
  (reference §N2). Skipped, with the reason, only when
  pcscd, libifdvpcd.so or pyscard is missing, or another pcscd already owns the
  host's single socket.
- ``vreader`` / ``vreader2``: the two vpcd slots; ``insert(card)``/``eject()``
  return once pcscd *saw* the change (SCardGetStatusChange, never a blind sleep).
- ``pcscd_control``: stop/kill/start the daemon (monitor survival tests).

Also the small test cards used by the terminal tests (``TestCard``: T=0 or T=1
behaviour, 61xx/6Cxx, an endless-61xx instruction, a blocking instruction).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from sscard.pytest_plugin import CHANNEL_ID, FRIENDLY_NAME, INSERT_TIMEOUT, VirtualReader
from sscard.simulators.pcscd import PrivatePcscd

__all__ = ["CHANNEL_ID", "FRIENDLY_NAME", "INSERT_TIMEOUT", "VirtualReader"]

SELECT_AID = bytes.fromhex("A000000632010105")
T0_ATR = bytes.fromhex("3B6D0000" + "0081" + "543101" + "8660" + "331100000048")  # reference §C5
T1_ATR = bytes.fromhex("3B80800101")  # reference §N3.2: pcscd picks T=1
RECORD = bytes.fromhex("0110330300D15600000599110145FFFFFFFF")  # reference §C6, EF05 rec 01

PIN = bytes.fromhex("123456")
INS_ECHO = 0xEE
INS_LOOP = 0xE0  # answers 61 01 forever (OpenSC #1731)
INS_BLOCK = 0xE2  # blocks until TestCard.release is set (card removed mid-APDU)


@dataclass
class TestCard:
    """A card that behaves like a T=0 or T=1 card at the APDU level.

    T=0 mode (ATR without TD1, so T=0 only): a command with response data answers
    ``61 xx`` and keeps the data for GET RESPONSE, which answers ``6C xx`` when
    asked for more than it holds. Both modes answer READ RECORD with a wrong Le
    with ``6C xx``, like the cards in reference §C2.
    """

    __test__ = False  # not a pytest test class

    t0: bool = True
    pending: bytes = b""
    looping: bool = False
    release: threading.Event = field(default_factory=threading.Event)
    received: list[bytes] = field(default_factory=list)
    powered: int = 0

    @property
    def atr(self) -> bytes:
        return T0_ATR if self.t0 else T1_ATR

    def power_on(self) -> bytes:
        self.powered += 1
        self.pending, self.looping = b"", False
        return self.atr

    def power_off(self) -> None:
        self.pending, self.looping = b"", False

    def reset(self) -> bytes:
        return self.power_on()

    def _reply(self, data: bytes) -> bytes:
        if self.t0 and data:
            self.pending = data
            return bytes([0x61, len(data) & 0xFF])
        return data + b"\x90\x00"

    def execute(self, apdu: bytes) -> bytes:
        self.received.append(apdu)
        if len(apdu) < 4:
            return b"\x67\x00"
        ins = apdu[1]
        lc = apdu[4] if len(apdu) > 5 else 0
        data = apdu[5 : 5 + lc]
        le = apdu[4] if len(apdu) == 5 else (apdu[5 + lc] if len(apdu) > 5 + lc else None)
        if ins == 0xC0:  # GET RESPONSE
            if self.looping:
                return b"\x00\x61\x01"
            if not self.pending:
                return b"\x69\x85"
            want = le or 256
            if want > len(self.pending):
                return bytes([0x6C, len(self.pending)])
            chunk, self.pending = self.pending[:want], self.pending[want:]
            return chunk + (bytes([0x61, len(self.pending)]) if self.pending else b"\x90\x00")
        self.pending = b""
        if ins == 0xA4:
            if data != SELECT_AID:
                return b"\x6a\x82"
            fci = b"\x84" + bytes([len(data)]) + data
            return self._reply(b"\x6f" + bytes([len(fci)]) + fci)
        if ins == 0x20:  # VERIFY, PIN 123456 (reference part C profile default)
            return b"\x90\x00" if data == PIN else b"\x63\xc2"
        if ins == INS_ECHO:
            return self._reply(data)
        if ins == 0xB2:
            if le is None or le == 0 or le != len(RECORD):
                return bytes([0x6C, len(RECORD)])
            return RECORD + b"\x90\x00"  # case 2: direct even in T=0 once Le is right
        if ins == INS_LOOP:
            self.looping = True
            return b"\x61\x01"
        if ins == INS_BLOCK:
            self.release.wait(10)
            return b"\x90\x00"
        return b"\x6d\x00"


# The private pcscd and its vpcd slots are the sscard pytest plugin's
# (sscard/pytest_plugin.py, shipped for users); the project's tests use them
# under their historical names.


@pytest.fixture(scope="session")
def pcscd(sscard_pcscd: PrivatePcscd) -> PrivatePcscd:
    return sscard_pcscd


@pytest.fixture
def vreader(sscard_reader: VirtualReader) -> VirtualReader:
    """Slot 0 ("sscard test VPCD 00 00"), empty at start and at the end."""
    return sscard_reader


@pytest.fixture
def vreader2(sscard_reader2: VirtualReader) -> VirtualReader:
    """Slot 1 ("sscard test VPCD 00 01"), e.g. for a PSAM."""
    return sscard_reader2


@dataclass
class PcscdControl:
    daemon: PrivatePcscd

    def kill(self) -> None:
        self.daemon.kill()

    def stop(self) -> None:
        self.daemon.stop()

    def start(self) -> None:
        self.daemon.start()


@pytest.fixture
def pcscd_control(pcscd: PrivatePcscd) -> Iterator[PcscdControl]:
    """Stop/kill/start the session pcscd; it is running again after the test."""
    yield PcscdControl(pcscd)
    if not pcscd.is_running():
        pcscd.start()
