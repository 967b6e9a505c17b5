"""The demo's two card slots: through a private pcscd when possible, in-process otherwise.

A validator or front desk has two readers: the card slot and the PSAM slot.
``Stage`` gives each scene exactly that, as ``Connection`` objects, so a scene is
the same code whether the bytes cross the real PC/SC stack (pcscd + the
vsmartcard-vpcd driver + our vpcd bridge) or stay in the process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sscard.errors import SscardError
from sscard.simulators.base import SimulatedCard
from sscard.terminals import Connection, SimulatorTransport


@dataclass
class Stage:
    """Card slot 0 and PSAM slot 1, via ``pcscd`` or ``in-process``."""

    via: str = "in-process"
    _pcscd: object | None = None
    _bridges: list[object] = field(default_factory=list)
    _transports: list[SimulatorTransport] = field(default_factory=list)
    reason: str = ""

    def present(self, card: SimulatedCard, slot: int = 0) -> Connection:
        """Put ``card`` in ``slot`` and return a connected Connection to it."""
        if self._pcscd is None:
            transport = SimulatorTransport(card, name=f"sscard in-process {slot:02d}")
            conn = Connection(transport)
            conn.connect()
            return conn
        from sscard.simulators.pcscd import PrivatePcscd
        from sscard.terminals.pcsc import PcscTransport, wait_for_card

        assert isinstance(self._pcscd, PrivatePcscd)
        bridge = self._bridges[slot]
        bridge.insert(card)  # type: ignore[attr-defined]
        name = self._pcscd.reader_names[slot]
        if not wait_for_card(name, present=True, timeout=5.0):
            raise SscardError(
                f"pcscd did not see the card in {name}", f"pcscd 未检测到卡片：{name}"
            )
        conn = Connection(PcscTransport(name))
        conn.connect()
        return conn

    def remove(self, slot: int = 0) -> None:
        """Take the card out of ``slot`` (pcscd sees the removal)."""
        if self._pcscd is None:
            return
        from sscard.simulators.pcscd import PrivatePcscd
        from sscard.terminals.pcsc import wait_for_card

        assert isinstance(self._pcscd, PrivatePcscd)
        self._bridges[slot].eject()  # type: ignore[attr-defined]
        wait_for_card(self._pcscd.reader_names[slot], present=False, timeout=5.0)


def _why_not_pcscd() -> str:
    if os.environ.get("SSCARD_DEMO_INPROCESS"):
        return "SSCARD_DEMO_INPROCESS is set"
    try:
        import smartcard  # noqa: F401
    except ImportError:
        return "pyscard is not installed"
    from sscard.simulators.pcscd import why_not_private

    return why_not_private()


@contextmanager
def open_stage(name: str = "sscard demo VPCD", channel_id: int = 0x9C50) -> Iterator[Stage]:
    """A Stage through a private pcscd if this host can run one, else in-process."""
    reason = _why_not_pcscd()
    if reason:
        yield Stage(reason=reason)
        return
    from sscard.simulators.pcscd import PrivatePcscd
    from sscard.simulators.vpcd import VpcdBridge

    daemon = PrivatePcscd(friendly_name=name, channel_id=channel_id)
    try:
        daemon.start()
    except SscardError as exc:
        yield Stage(reason=str(exc))
        return
    bridges = [VpcdBridge(port=port).start() for port in daemon.ports]
    try:
        yield Stage(via="pcscd", _pcscd=daemon, _bridges=list(bridges))
    finally:
        for bridge in bridges:
            bridge.stop()
        daemon.close()
