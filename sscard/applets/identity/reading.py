"""The card side of a check, reduced to a plain :class:`CardReading`.

:func:`read_card` drives an :class:`~sscard.applets.ssse.SsseReader` (SELECT SSSE,
EF05, internal authentication, EF06, PIN: reference §C1.4, §C1.5, §C3.4, §C3.8) and
turns card answers that *are* check outcomes (blocked, counterfeit, wrong PIN) into
fields, so the policy logic in :mod:`.check` is testable without a card.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from sscard.applets.identity.policy import ScenarioPolicy
from sscard.cards.layout import LayoutError
from sscard.cards.ssse import Ef05, Ef06

if TYPE_CHECKING:
    from sscard.applets.ssse import SsseReader

PinOutcome = Literal["ok", "wrong", "locked", "missing", "initial", "format"]


@dataclass(frozen=True)
class CardReading:
    """What the terminal got from the card; ``None`` where a step was not run.

    ``app`` is the SELECT outcome (``ok``, ``blocked`` for 6A81/9303, ``absent``
    for a card without SSSE). ``genuine`` is the internal-authentication result;
    ``auth_error``/``holder_error`` are reason codes when a step could not run.
    """

    app: Literal["ok", "blocked", "absent"] = "ok"
    ef05: Ef05 | None = None
    ef06: Ef06 | None = field(default=None, repr=False)
    genuine: bool | None = None
    auth_error: str | None = None
    holder_error: str | None = None
    pin: PinOutcome | None = None
    pin_tries_left: int | None = None


def read_card(
    reader: SsseReader, scenario: ScenarioPolicy, *, pin: str | None = None
) -> CardReading:
    """Run the card side of ``scenario`` through an :class:`SsseReader`.

    Order: SELECT SSSE, EF05, internal authentication (if the policy asks), EF06
    (3rd gen: external authentication with RKSSSE, reference §C1.5), PIN. Card
    answers that are outcomes of a check (blocked 6A81/9303, counterfeit, wrong PIN)
    become fields; transport errors propagate.
    """
    from sscard.applets import ssse

    try:
        reader.select()
        return _read_selected(reader, scenario, pin)
    except ssse.SsseBlocked:
        return CardReading(app="blocked")
    except ssse.WrongCardType:
        return CardReading(app="absent")


def _read_selected(reader: SsseReader, scenario: ScenarioPolicy, pin: str | None) -> CardReading:
    from sscard.apdu import errors as sw
    from sscard.applets import ssse
    from sscard.applets.keyprovider import PsamError

    try:
        ef05 = reader.read_issuer().ef05
    except (sw.CardError, LayoutError):
        return CardReading(holder_error="unreadable")
    reading = CardReading(ef05=ef05)
    if scenario.internal_auth:
        try:
            reader.authenticate()
            reading = replace(reading, genuine=True)
        except ssse.IllegalCard:
            reading = replace(reading, genuine=False)
        except PsamError:  # includes KeysRequired
            reading = replace(reading, auth_error="no_keys")
    try:
        reading = replace(reading, ef06=reader.read_holder().ef06)
    except PsamError:
        reading = replace(reading, holder_error="no_keys")
    except (sw.CardError, LayoutError) as exc:
        if isinstance(exc, ssse.SsseBlocked):
            raise
        reading = replace(reading, holder_error="unreadable")
    if scenario.pin:
        reading = replace(reading, **_verify_pin(reader, pin))
    return reading


def _verify_pin(reader: SsseReader, pin: str | None) -> dict[str, Any]:
    from sscard.apdu import errors as sw
    from sscard.applets import ssse

    if pin is None:
        return {"pin": "missing"}
    try:
        reader.verify_pin(pin)
    except ssse.PinFormatError:
        return {"pin": "format"}
    except sw.PinIncorrect as exc:
        return {"pin": "wrong", "pin_tries_left": exc.tries_left}
    except sw.AuthMethodBlocked:
        return {"pin": "locked", "pin_tries_left": 0}
    except ssse.InitialPinNotAllowed:
        return {"pin": "initial"}
    return {"pin": "ok"}
