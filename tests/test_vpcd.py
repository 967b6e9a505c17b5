"""The vpcd bridge: wire protocol against a fake vpcd server, and latency through pcscd."""

from __future__ import annotations

import socket
import statistics
import time
from collections.abc import Iterator

import pytest
from pcsc_harness import T1_ATR, TestCard, VirtualReader

from sscard.simulators.base import EchoCard
from sscard.simulators.vpcd import VpcdBridge


class FakeVpcd:
    """The server side of the vpcd protocol (reference §N3.2), for one client."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(5)
        self.port = self.server.getsockname()[1]
        self.conn: socket.socket | None = None

    def accept(self) -> None:
        self.drop()
        self.conn, _ = self.server.accept()
        self.conn.settimeout(5)

    def send(self, payload: bytes) -> None:
        assert self.conn is not None
        # Like vpcd: length and body in two writes.
        self.conn.sendall(len(payload).to_bytes(2, "big"))
        self.conn.sendall(payload)

    def recv(self) -> bytes:
        assert self.conn is not None
        head = self.conn.recv(2, socket.MSG_WAITALL)
        return self.conn.recv(int.from_bytes(head, "big"), socket.MSG_WAITALL)

    def drop(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def close(self) -> None:
        self.drop()
        self.server.close()


@pytest.fixture
def fake_vpcd() -> Iterator[FakeVpcd]:
    server = FakeVpcd()
    yield server
    server.close()


def test_control_bytes_and_apdus(fake_vpcd: FakeVpcd) -> None:
    card = TestCard(t0=False)
    with VpcdBridge(card, port=fake_vpcd.port) as bridge:
        fake_vpcd.accept()
        fake_vpcd.send(b"\x01")  # power on: no reply
        fake_vpcd.send(b"\x04")  # get ATR
        assert fake_vpcd.recv() == T1_ATR
        fake_vpcd.send(bytes.fromhex("00EE000003AABBCC00"))
        assert fake_vpcd.recv() == bytes.fromhex("AABBCC9000")
        fake_vpcd.send(b"\x02")  # reset: no reply
        fake_vpcd.send(b"\x00")  # power off
        fake_vpcd.send(b"\x04")
        assert fake_vpcd.recv() == T1_ATR
        assert card.powered == 2 and bridge.apdus == 1


def test_reconnects_after_the_server_drops_it(fake_vpcd: FakeVpcd) -> None:
    with VpcdBridge(EchoCard(), port=fake_vpcd.port) as bridge:
        fake_vpcd.accept()
        fake_vpcd.drop()  # pcscd restarted
        fake_vpcd.accept()
        fake_vpcd.send(b"\x04")
        assert fake_vpcd.recv() == EchoCard.ATR
        assert bridge.connections == 2


def test_eject_closes_and_insert_reconnects(fake_vpcd: FakeVpcd) -> None:
    with VpcdBridge(EchoCard(), port=fake_vpcd.port) as bridge:
        fake_vpcd.accept()
        bridge.eject()
        assert fake_vpcd.conn is not None
        assert fake_vpcd.conn.recv(2) == b""  # pcscd sees the socket close = card out
        bridge.insert(TestCard(t0=False))
        fake_vpcd.accept()
        fake_vpcd.send(b"\x04")
        assert fake_vpcd.recv() == T1_ATR


def test_stop_returns_promptly_without_a_server() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed below: nothing listens there
    bridge = VpcdBridge(EchoCard(), port=port).start()
    time.sleep(0.1)
    started = time.monotonic()
    bridge.stop()
    assert time.monotonic() - started < 1.0 and not bridge.connected


def _median_apdu_ms(reader: VirtualReader, n: int) -> float:
    from smartcard import scard

    rc, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    rc, card, proto = scard.SCardConnect(
        ctx, reader.name, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T1
    )
    assert rc == 0
    apdu = list(bytes.fromhex("00EE0000040102030400"))
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        rc, _resp = scard.SCardTransmit(card, proto, apdu)
        samples.append(time.perf_counter() - start)
        assert rc == 0
    scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
    scard.SCardReleaseContext(ctx)
    return statistics.median(samples) * 1000


@pytest.mark.pcsc
def test_quickack_avoids_the_40ms_stall(
    vreader: VirtualReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    vreader.insert(TestCard(t0=False))
    fast = _median_apdu_ms(vreader, 50)
    assert fast < 5.0, f"median {fast:.2f} ms per APDU with TCP_QUICKACK"
    vreader.eject()
    vreader.bridge.quickack = False  # what VICC_NOQUICKACK=1 sets
    vreader.insert(TestCard(t0=False))
    slow = _median_apdu_ms(vreader, 8)
    assert slow > 20.0, f"expected the delayed-ACK stall, got {slow:.2f} ms"


def test_env_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VICC_NOQUICKACK", "1")
    assert VpcdBridge(EchoCard()).quickack is False
    monkeypatch.delenv("VICC_NOQUICKACK")
    assert VpcdBridge(EchoCard()).quickack is True


# --------------------------------------------------------------------------- hardening


def test_a_half_frame_drops_the_link_after_the_frame_timeout(
    fake_vpcd: FakeVpcd, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A frame that stops half-way no longer blocks the bridge until the rest arrives."""
    from sscard.simulators import vpcd

    monkeypatch.setattr(vpcd, "FRAME_TIMEOUT", 0.3)
    monkeypatch.setattr(vpcd, "TEAR_ABSENCE", 0.0)
    with VpcdBridge(EchoCard(), port=fake_vpcd.port) as bridge:
        fake_vpcd.accept()
        time.sleep(0.5)  # idle between frames is fine: no limit there
        fake_vpcd.send(b"\x04")
        assert fake_vpcd.recv() == EchoCard.ATR
        assert fake_vpcd.conn is not None
        fake_vpcd.conn.sendall(b"\x00")  # one byte of the length, then nothing
        started = time.monotonic()
        assert fake_vpcd.conn.recv(2) == b""  # the bridge closed the link
        assert 0.25 < time.monotonic() - started < 3
        fake_vpcd.accept()  # it reconnected
        fake_vpcd.send(b"\x04")
        assert fake_vpcd.recv() == EchoCard.ATR
        assert fake_vpcd.conn is not None
        fake_vpcd.conn.sendall(b"\x00\x05\x00\xee")  # the length, then half the APDU
        assert fake_vpcd.conn.recv(2) == b""
        assert bridge.stalled_frames == 2 and bridge.connections >= 2


def test_an_apdu_after_power_off_is_not_answered(fake_vpcd: FakeVpcd) -> None:
    from sscard.simulators import vpcd

    card = EchoCard()
    with VpcdBridge(card, port=fake_vpcd.port) as bridge:
        fake_vpcd.accept()
        fake_vpcd.send(bytes.fromhex("00EE000001AA"))
        assert fake_vpcd.recv() == bytes.fromhex("AA9000")
        fake_vpcd.send(b"\x00")  # power off
        fake_vpcd.send(bytes.fromhex("00EE000001AA"))
        assert fake_vpcd.conn is not None
        assert fake_vpcd.conn.recv(2) == b""  # mute: the link drops, no answer
        assert bridge.unpowered_apdus == 1
        time.sleep(vpcd.TEAR_ABSENCE)
        fake_vpcd.accept()
        fake_vpcd.send(b"\x01")  # power on again: answers again
        fake_vpcd.send(bytes.fromhex("00EE000001BB"))
        assert fake_vpcd.recv() == bytes.fromhex("BB9000")
