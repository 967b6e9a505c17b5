"""Beijing time (UTC+8): the one clock of everything written to a card, a PSAM or a journal.

Why: T-Union cards store local date-times without a zone, and every outside reader
(Metrodroid ``ChinaTransitData`` with ``MetroTimeZone.BEIJING``, T-Union Master,
clearing) reads them as Beijing time, so a validator on a UTC host must still write
+08:00 digits: into 8054/8070/80DC, the EF 18/1E/1A records and the TAC input
(§P5.8 "Time"). Fare rules (transfer window, missed tap-out, repeat
taps, card validity dates) compare those card times, so they use the same clock.

China has had one time zone and no daylight saving since 1992, so a fixed offset is
exact for every date a card can hold, and no tz database is needed (embedded images
often lack one).

Convention in the transit code: a **naive** ``datetime`` is a Beijing wall-clock time
(what the card holds); an **aware** one is an instant. :func:`wall` turns either into
card digits; :func:`instant` and :func:`isoformat` turn card digits into an
unambiguous instant (the journal stores ISO 8601 with ``+08:00``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone

#: UTC+8, China Standard Time.
BEIJING = timezone(timedelta(hours=8), "UTC+08:00")

#: What validators and loads take as ``clock``: returns an aware instant, or a naive
#: datetime that is already Beijing wall-clock time (tests inject fixed ones).
Clock = Callable[[], datetime]


def now() -> datetime:
    """The current instant, in Beijing time (aware), whatever ``TZ`` says."""
    return datetime.now(BEIJING)


def today() -> date:
    """Today's date in Beijing (card validity dates, issue dates)."""
    return now().date()


def wall(dt: datetime) -> datetime:
    """Beijing wall-clock digits (naive, whole seconds) for a card, PSAM or fare rule.

    An aware ``dt`` is converted to UTC+8; a naive one is taken as Beijing time already.
    """
    if dt.tzinfo is not None:
        dt = dt.astimezone(BEIJING).replace(tzinfo=None)
    return dt.replace(microsecond=0)


def card_now(clock: Clock = now) -> datetime:
    """:func:`wall` of ``clock()``: the date-time a tap or load writes."""
    return wall(clock())


def instant(dt: datetime) -> datetime:
    """The aware instant of Beijing wall-clock ``dt`` (an aware ``dt`` is kept, in UTC+8)."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=BEIJING)
    return dt.astimezone(BEIJING)


def isoformat(dt: datetime) -> str:
    """ISO 8601 with the offset, e.g. ``2025-03-01T08:15:00+08:00`` (journal, JSON)."""
    return instant(dt).isoformat()


def parse_instant(text: str) -> datetime:
    """Read back :func:`isoformat` (any ISO 8601 with an offset); a text without an
    offset is Beijing wall-clock time. Raises ``ValueError`` for anything else."""
    return instant(datetime.fromisoformat(text))


def beijing_now() -> datetime:
    """Now as naive Beijing wall-clock time, microseconds kept: what the medical-insurance
    envelope and its replies carry (msgid, ``inf_time``, ``setl_time``, ``refmsg_time``,
    §M1.1), whatever ``TZ`` says."""
    return now().replace(tzinfo=None)
