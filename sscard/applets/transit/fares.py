"""Fares: the station-to-station table, category discounts, transfer discount.

Why separate from the validator: fares are the operator's business rules and change
more often than the card protocol; this module is pure (no APDUs), so it is tested
with plain numbers. Amounts are fen (int) throughout.

Fare table file (sscard format, CSV): a station is ``line-stop`` (the line and stop
bytes of the composite record, reference §P5.4 / profile "Metro composite
record"); row = entry station, column = exit station, cell = fare in fen::

    # comment lines start with '#'
    from\\to,2-5,2-10,16-17
    2-5,300,400,600
    2-10,400,300,500
    16-17,600,500,300

The *flagged* fare written at entry (1A bytes 54-57) is the highest fare from the
entry station (its row): what a missed tap-out costs (§P5.5 "Missed tap-off").
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from sscard.applets.transit.errors import TransitConfigError
from sscard.applets.transit.textfile import read_config_file
from sscard.cards.ids import CardCategory


@dataclass(frozen=True, order=True)
class Station:
    """A stop on a line, as the composite record stores it (line 2 B, stop 1 B)."""

    line: int
    stop: int

    def __post_init__(self) -> None:
        if not (0 <= self.line <= 0xFFFF and 0 <= self.stop <= 0xFF):
            raise TransitConfigError(
                "station must be line 0-65535, stop 0-255", "站点应为线路0-65535、站号0-255"
            )

    @classmethod
    def parse(cls, text: str) -> Station:
        """``"2-5"`` -> line 2, stop 5."""
        line, sep, stop = text.strip().partition("-")
        if not sep or not line.isdigit() or not stop.isdigit():
            raise TransitConfigError(
                f"station {text!r} is not line-stop", f"站点{text!r}应为“线路-站号”"
            )
        return cls(int(line), int(stop))

    def __str__(self) -> str:
        return f"{self.line}-{self.stop}"


@dataclass(frozen=True)
class FareTable:
    """Entry station -> exit station -> fare (fen)."""

    fares: Mapping[Station, Mapping[Station, int]]
    source: str = ""

    def fare(self, entry: Station, exit_: Station) -> int | None:
        """The table fare, or None when either station is not in the table."""
        row = self.fares.get(entry)
        return None if row is None else row.get(exit_)

    def max_from(self, entry: Station) -> int:
        """The flagged fare of an entry at ``entry`` (its row's maximum; else the table's)."""
        row = self.fares.get(entry)
        return max(row.values()) if row else self.max_fare

    @property
    def max_fare(self) -> int:
        return max((max(r.values()) for r in self.fares.values() if r), default=0)

    @classmethod
    def parse(cls, text: str, source: str = "") -> FareTable:
        lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        rows = list(csv.reader(io.StringIO("\n".join(lines))))
        if len(rows) < 2 or len(rows[0]) < 2:
            raise TransitConfigError("fare table is empty", "票价表为空")
        exits = [Station.parse(c) for c in rows[0][1:]]
        fares: dict[Station, Mapping[Station, int]] = {}
        for n, row in enumerate(rows[1:], start=2):
            if len(row) != len(exits) + 1:
                raise TransitConfigError(
                    f"fare table row {n} has {len(row) - 1} fares, expected {len(exits)}",
                    f"票价表第{n}行票价数量错误",
                )
            try:
                values = [int(c) for c in row[1:]]
            except ValueError:
                raise TransitConfigError(
                    f"fare table row {n}: fares are whole fen", f"票价表第{n}行：票价应为整数分"
                ) from None
            if any(not 0 <= v <= 0xFFFFFFFF for v in values):
                raise TransitConfigError(f"fare table row {n}: fare out of range", "票价超出范围")
            fares[Station.parse(row[0])] = MappingProxyType(dict(zip(exits, values, strict=True)))
        return cls(MappingProxyType(fares), source)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> FareTable:
        """Read a fare table file (through ``textfile.read_config_file``, the one reader)."""
        return cls.parse(read_config_file(path, "fare table", "票价表"), str(path))


#: Category names usable in ``[discounts]`` of the validator TOML (EF 0017 byte 10).
CATEGORY_NAMES: Mapping[str, CardCategory] = MappingProxyType(
    {c.name.lower(): c for c in CardCategory}
)


@dataclass(frozen=True)
class FarePolicy:
    """Discounts: percent off by card category; a fixed amount off within a transfer window."""

    discount_percent: Mapping[int, int] = field(default_factory=dict)
    transfer_window_minutes: int = 0  # 0: no transfer discount
    transfer_discount: int = 0  # fen off the second leg


@dataclass(frozen=True)
class Fare:
    """One computed fare. ``amount`` = base - category discount - transfer discount, >= 0."""

    base: int
    category_discount: int = 0
    transfer_discount: int = 0
    penalty: bool = False

    @property
    def amount(self) -> int:
        return max(self.base - self.category_discount - self.transfer_discount, 0)

    @property
    def discount(self) -> int:
        return self.base - self.amount

    def as_dict(self) -> dict[str, int | bool]:
        return {
            "base": self.base,
            "category_discount": self.category_discount,
            "transfer_discount": self.transfer_discount,
            "penalty": self.penalty,
            "amount": self.amount,
        }


def compute_fare(base: int, category: int, policy: FarePolicy, *, transfer: bool) -> Fare:
    """Category discount first (percent, rounded down in the passenger's favour: the
    discount is rounded up), then the transfer discount; never below zero."""
    pct = policy.discount_percent.get(category, 0)
    category_discount = -(-base * pct // 100)
    transfer_discount = policy.transfer_discount if transfer else 0
    return Fare(base, min(category_discount, base), transfer_discount)


def penalty_fare(flagged: int) -> Fare:
    """A missed tap-out: the flagged maximum fare, no discount (§P5.5: "full fare")."""
    return Fare(flagged, penalty=True)
