"""Amounts: ``decimal.Decimal`` with 2 places, checked before anything is sent.

The platform's amounts are decimal(16,2) (§M1.3). On the
wire they are JSON numbers, as in the public HIS code; every amount we send
has at most 15 significant digits, so the float that ``json`` writes
round-trips exactly, and replies are parsed with ``parse_float=Decimal``.
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from sscard.services.insurance.errors import InvalidAmount

CENT = Decimal("0.01")
RATIO = Decimal("0.0001")
ZERO = Decimal("0.00")
#: Sanity limit for one amount (sscard profile): a desk never settles a
#: million CNY in one outpatient visit; beyond this it is a typing error.
MAX_AMOUNT = Decimal("1000000.00")

AmountLike = Decimal | int | str


def money(value: AmountLike, field: str = "amount", *, limit: Decimal = MAX_AMOUNT) -> Decimal:
    """Validate an amount we are about to send; raise :class:`InvalidAmount`.

    Floats are refused (0.1 is not 0.10); more than 2 places is refused rather
    than silently rounded; negative, NaN and amounts over ``limit`` are refused.
    """
    if isinstance(value, bool | float):
        raise InvalidAmount(
            field, "use Decimal, int or str, not float", "请使用 Decimal、整数或字符串"
        )
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidAmount(field, "not a number", "不是数字") from None
    if not amount.is_finite():
        raise InvalidAmount(field, "not a finite number", "不是有限数值")
    if amount != amount.quantize(CENT, rounding=ROUND_HALF_UP):
        raise InvalidAmount(field, "more than 2 decimal places", "超过两位小数")
    if amount < 0:
        raise InvalidAmount(field, "negative", "不能为负数")
    if amount > limit:
        raise InvalidAmount(field, f"over the limit {limit}", f"超过上限 {limit}")
    return amount.quantize(CENT)


def quantity(value: AmountLike, field: str, *, places: int = 6, positive: bool = False) -> Decimal:
    """A count or unit price (decimal(16,6) on the platform): finite, not negative."""
    if isinstance(value, bool | float):
        raise InvalidAmount(
            field, "use Decimal, int or str, not float", "请使用 Decimal、整数或字符串"
        )
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidAmount(field, "not a number", "不是数字") from None
    if not number.is_finite() or number.as_tuple().exponent < -places:  # type: ignore[operator]
        raise InvalidAmount(field, f"not a number with at most {places} places", "数值格式无效")
    if number < 0 or (positive and number == 0):
        raise InvalidAmount(field, "must be positive", "须为正数")
    if number > MAX_AMOUNT:
        raise InvalidAmount(field, f"over the limit {MAX_AMOUNT}", f"超过上限 {MAX_AMOUNT}")
    return number


def wire_money(value: Any) -> Decimal:
    """An amount as received (may be negative, e.g. a 2208 reply); 0 when absent."""
    if value is None or value == "":
        return ZERO
    try:
        return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None


def wire_quantity(value: Any) -> Decimal:
    """A quantity or unit price as returned (cnt 16,4; pric 16,6): not rounded to cents."""
    if value is None or value == "":
        return Decimal("0")
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None


def wire_ratio(value: Any) -> Decimal:
    """A decimal(5,4) ratio such as ``pool_prop_selfpay``."""
    if value is None or value == "":
        return Decimal("0.0000")
    try:
        return Decimal(str(value)).quantize(RATIO, rounding=ROUND_HALF_UP)
    except InvalidOperation:
        raise ValueError(f"not a ratio: {value!r}") from None


def to_cents(amount: Decimal) -> int:
    """Integer cents, how both SQLite ledgers store money (exact sums in SQL)."""
    return int((amount * 100).to_integral_value(rounding=ROUND_HALF_UP))


def from_cents(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(CENT)


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return float(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps(obj: Any) -> str:
    """JSON with Decimal amounts written as numbers."""
    return json.dumps(obj, ensure_ascii=False, default=_default, separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    """JSON with numbers that have a fraction parsed as Decimal."""
    return json.loads(text, parse_float=Decimal)
