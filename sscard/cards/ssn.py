"""The social security number: the 18-character citizen ID number (GB 11643-1999).

The SSN in EF06 rec 08 is the holder's citizen ID number (reference §C1.5):
6-digit region (GB/T 2260), birth date YYYYMMDD, 3-digit sequence whose parity
is the sex (odd = male), and a check character computed with ISO 7064 MOD 11-2
(``X`` stands for 10).
"""

from __future__ import annotations

from datetime import date

from sscard.errors import SscardError

# Weights 2^(17-i) mod 11 for positions 0..16 (ISO 7064 MOD 11-2).
_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
_CHECK = "10X98765432"  # check character for (sum mod 11) = 0..10

SEX_MALE = "1"  # GB 2261 codes, as in EF06 rec 0A
SEX_FEMALE = "2"


class InvalidSsn(SscardError):
    """An SSN that is malformed or fails the check digit (the number is never shown)."""

    code = -23  # illegal input (reference §C4.5)
    message_en = "invalid social security number"
    message_zh = "社会保障号码无效"


def check_digit(first17: str) -> str:
    """The GB 11643 check character of the first 17 digits."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise InvalidSsn("need 17 digits to compute the check digit", "计算校验码需要17位数字")
    total = sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


def _birth(ssn: str) -> date | None:
    try:
        return date(int(ssn[6:10]), int(ssn[10:12]), int(ssn[12:14]))
    except ValueError:
        return None


def validate_ssn(ssn: str) -> str:
    """Return the SSN normalised (upper-case ``X``) or raise :class:`InvalidSsn`.

    Checks: 18 characters, 17 digits then a digit or X, a real birth date, and the
    check digit. The region code is not checked against GB/T 2260 (old codes stay valid
    on old IDs).
    """
    s = ssn.strip().upper()
    if len(s) != 18 or not s[:17].isascii() or not s[:17].isdigit():
        raise InvalidSsn(
            "SSN must be 17 digits and a check character", "社会保障号码应为17位数字加校验位"
        )
    if _birth(s) is None:
        raise InvalidSsn("SSN has no valid birth date", "社会保障号码中的出生日期无效")
    if check_digit(s[:17]) != s[17]:
        raise InvalidSsn("SSN check digit is wrong", "社会保障号码校验位错误")
    return s


def is_valid_ssn(ssn: str) -> bool:
    try:
        validate_ssn(ssn)
    except InvalidSsn:
        return False
    return True


def birth_date_of(ssn: str) -> date:
    """Birth date encoded in a valid SSN."""
    s = validate_ssn(ssn)
    birth = _birth(s)
    assert birth is not None  # validate_ssn checked it
    return birth


def sex_of(ssn: str) -> str:
    """GB 2261 sex code of a valid SSN: '1' male (odd sequence digit), '2' female."""
    s = validate_ssn(ssn)
    return SEX_MALE if int(s[16]) % 2 else SEX_FEMALE


def make_ssn(region: str, birth: date, sequence: int) -> str:
    """Build a valid SSN from a 6-digit region, a birth date and a sequence 0-999."""
    if not 0 <= sequence <= 999:
        raise InvalidSsn("sequence must be 0-999", "顺序码应为0-999")
    first17 = f"{region}{birth:%Y%m%d}{sequence:03d}"
    return first17 + check_digit(first17)
