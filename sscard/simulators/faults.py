"""Fault injection for the simulated card: tearing (power loss) and a slow card.

Why: a transit validator must survive a card pulled away mid-transaction
(reference §P7, tearing recovery). A tear loses the response; whether the
card's state change survived depends on *when* power went: before the commit
point (nothing persisted) or after it (the debit happened, the answer was lost).

The card OS calls :meth:`Faults.tear_for` once per APDU and honours the answer
at its commit point (``CardOS.commit``). After a tear the card is unpowered:
``execute`` raises :class:`CardTorn` until ``power_on``/``reset``. A transport
translates :class:`CardTorn` into its "card removed" error. A counterfeit card
(right data, wrong IRK) is a profile matter, not a fault (see ``simulators.card``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from sscard.simulators.base import CardTorn

__all__ = ["CardTorn", "Faults", "Tear", "TearPoint", "ins_is"]


class TearPoint(Enum):
    BEFORE_COMMIT = "before"  # nothing persisted, response lost
    AFTER_COMMIT = "after"  # state committed (and saved), response lost


@dataclass
class Tear:
    """One planned tear. Give ``nth`` (1-based count of APDUs since the plan was
    installed, see :meth:`Faults.arm`) or ``when`` (a predicate on the raw
    command), or both (both must hold). ``once`` disarms it after it fires."""

    point: TearPoint = TearPoint.AFTER_COMMIT
    nth: int | None = None
    when: Callable[[bytes], bool] | None = None
    once: bool = True
    fired: int = 0

    def matches(self, index: int, apdu: bytes) -> bool:
        if self.once and self.fired:
            return False
        if self.nth is not None and index != self.nth:
            return False
        return self.when is None or bool(self.when(apdu))


@dataclass
class Faults:
    """The fault plan of one card; tests mutate it freely between APDUs.

    ``latency`` seconds are slept before every APDU (a slow card).
    """

    tears: list[Tear] = field(default_factory=list)
    latency: float = 0.0
    count: int = 0  # APDUs seen since arm()

    def arm(self, *tears: Tear) -> Faults:
        """Replace the planned tears and restart the APDU count."""
        self.tears = list(tears)
        self.count = 0
        return self

    def tear_after(self, nth: int, point: TearPoint = TearPoint.AFTER_COMMIT) -> Faults:
        """Shorthand: tear the ``nth`` APDU from now."""
        return self.arm(Tear(point, nth=nth))

    def tear_on(
        self, when: Callable[[bytes], bool], point: TearPoint = TearPoint.AFTER_COMMIT
    ) -> Faults:
        """Shorthand: tear the first APDU for which ``when(apdu)`` is true."""
        return self.arm(Tear(point, when=when))

    @property
    def active(self) -> bool:
        return bool(self.latency) or any(not (t.once and t.fired) for t in self.tears)

    def tear_for(self, apdu: bytes) -> TearPoint | None:
        """Count this APDU; the tear point planned for it, if any."""
        self.count += 1
        for tear in self.tears:
            if tear.matches(self.count, apdu):
                tear.fired += 1
                return tear.point
        return None


def ins_is(ins: int, cla: int | None = None) -> Callable[[bytes], bool]:
    """Predicate for :class:`Tear`: the command has this INS (and CLA)."""

    def pred(apdu: bytes) -> bool:
        return len(apdu) >= 4 and apdu[1] == ins and (cla is None or apdu[0] == cla)

    return pred
