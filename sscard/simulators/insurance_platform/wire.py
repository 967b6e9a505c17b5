"""JSON and money helpers of the simulated platform.

Kept apart from the client's (sscard.services.insurance.money) on purpose:
simulators import no terminal-side code (architecture.md, layers), so the
two sides of the wire only share the envelope format.
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")


def to_cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value(rounding=ROUND_HALF_UP))


def from_cents(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(CENT)


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return float(obj)  # <= 15 significant digits: exact round trip
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=_default, separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    return json.loads(text, parse_float=Decimal)
