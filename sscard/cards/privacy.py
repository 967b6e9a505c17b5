"""Masking of personal data for display, logs and traces (one implementation for all).

The house rule: full names, SSNs,
PINs and keys never appear unredacted; redaction is on by default and the CLI's
``--no-redact`` turns it off. Masks keep enough to recognise a card at the counter:
the surname and last character of a name, the region and last four of an SSN.

One policy for every output path (regulation Art. 18): with default
options no command, in no output format (table, ``--json``, iReadCardBas), shows a
full SSN, name, birth date, card number, card identification code, purse ASN, PIN
or key; tests/test_privacy_all_commands.py runs every command to check it.

============================  ==========================  =========================
field                         masked as                   function
============================  ==========================  =========================
name                          欧**明                       :func:`mask_name`
SSN                           3412**********3183           :func:`mask_ssn`
birth date                    1959-**-**                   :func:`mask_date`
card number (EF05 07)         U8****874                    :func:`mask_card_number`
card id code (EF05 01)        341200****...****200F        :func:`mask_card_id`
purse ASN (EF 0015)           0230…2714                    :func:`mask_asn`
e-SSC holder reference        A1B2****...                  :func:`mask_holder_ref`
PIN, key                      <6 chars redacted>           :func:`mask_secret`
============================  ==========================  =========================
"""

from __future__ import annotations

MASK = "*"


def mask_middle(text: str, head: int, tail: int) -> str:
    """Keep ``head`` leading and ``tail`` trailing characters; mask the rest.

    A text too short to keep anything hidden is masked entirely except its first
    character (or fully, if it has one character).
    """
    n = len(text)
    if n == 0:
        return ""
    if head + tail >= n:
        return text[:1] + MASK * (n - 1) if n > 1 else MASK
    return text[:head] + MASK * (n - head - tail) + text[n - tail :]


def mask_name(name: str) -> str:
    """张三 -> 张*, 张小三 -> 张*三, 欧阳小明 -> 欧**明."""
    name = name.strip()
    if len(name) <= 2:
        return mask_middle(name, 1, 0) if name else ""
    return mask_middle(name, 1, 1)


def mask_ssn(ssn: str) -> str:
    """11010519491231002X -> 1101**********002X (region prefix and last four kept)."""
    return mask_middle(ssn, 4, 4)


def mask_card_number(number: str) -> str:
    """Card number or ASN: first two and last three kept (X00000019 -> X0****019)."""
    return mask_middle(number, 2, 3)


def mask_asn(asn: str) -> str:
    """Purse application serial number (20 digits, reference part P EF 0015): 4 + 4 kept.

    02300891843872252714 -> 0230…2714 (the transit commands' established form).
    """
    return f"{asn[:4]}…{asn[-4:]}" if len(asn) > 8 else mask_middle(asn, 1, 0)


def mask_card_id(card_id_code: bytes | str) -> str:
    """Card identification code (32 hex, reference §C1.4): region (6) and last 4 kept.

    330100D156000005011BA293AA4B9E55 -> 330100**********************9E55; the RID in
    the middle is public, but masking it too keeps one rule for the whole code.
    """
    text = card_id_code.hex().upper() if isinstance(card_id_code, bytes) else card_id_code
    return mask_middle(text, 6, 4)


def mask_holder_ref(holder_ref: bytes | str) -> str:
    """e-SSC holder reference: 4 hex kept to tell two codes apart, never more.

    Verifiers never show it whole, not even with ``--no-redact``: it is the issuer's
    key to the holder, to be forwarded online, not read at a terminal.
    """
    text = holder_ref.hex().upper() if isinstance(holder_ref, bytes) else holder_ref
    return text[:4] + MASK * max(0, len(text) - 4)


def mask_date(value: str) -> str:
    """A birth date (ISO or YYYYMMDD): the year only. 1959-03-07 -> 1959-**-**."""
    return value[:4] + "-**-**" if value else value


def mask_secret(value: str | bytes) -> str:
    """Keys, PINs, MAC keys: nothing but the length."""
    return f"<{len(value)} {'bytes' if isinstance(value, bytes) else 'chars'} redacted>"
