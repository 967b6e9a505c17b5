"""What a privacy test looks for in output, traces and files: the holder's personal data
in every spelling a leak could take, and the keys behind a simulated card.

Shared by the privacy scans (every CLI command, the at-rest scan, the identity checks);
each adds what its own surface can leak on top of these.
"""

from __future__ import annotations

import dataclasses
import json

from sscard.simulators.keys import FAMILIES, PURSE_CARD_KEY, SSSE_KEY_NAMES, default_key_set
from sscard.simulators.profile import CardProfile, PinState, new_card

#: A distinctive name, so only a leak can put it in a scan.
NAME, NAME_EXT = "欧阳明月", "·测试"


def named_card(
    province: str, seed: int, *, pin: str | None = None, balance: int = 10_000
) -> CardProfile:
    """A simulated card whose holder is :data:`NAME` (also in the purse's EF 0016, which
    holds the holder's name too, §P1.3); ``pin`` replaces the card's PIN."""
    profile = new_card(province, seed=seed, balance=balance)
    ef06 = dataclasses.replace(profile.ssse.ef06, name=NAME, name_ext=NAME_EXT)
    ssse = dataclasses.replace(profile.ssse, ef06=ef06)
    if pin is not None:
        ssse = dataclasses.replace(ssse, pin=PinState(pin=pin))
    purse = profile.purse
    if purse is not None:
        ef0016 = dataclasses.replace(purse.ef0016, holder_name=ef06.full_name)
        purse = dataclasses.replace(purse, ef0016=ef0016)
    return dataclasses.replace(profile, ssse=ssse, purse=purse)


def holder_spellings(profile: CardProfile) -> dict[str, bytes]:
    """SSN, name and full name: UTF-8 and GBK, raw, hex and HEX, and JSON-escaped."""
    ef06 = profile.ssse.ef06
    out: dict[str, bytes] = {}
    for label, text in (("ssn", ef06.ssn), ("name", ef06.name), ("full name", ef06.full_name)):
        for enc in ("utf-8", "gbk"):
            raw = text.encode(enc)
            out[f"{label} {enc}"] = raw
            out[f"{label} {enc} hex"] = raw.hex().encode()
            out[f"{label} {enc} HEX"] = raw.hex().upper().encode()
        out[f"{label} json"] = json.dumps(text)[1:-1].encode()
    return out


def card_keys(profile: CardProfile) -> dict[str, bytes]:
    """The TEST key set's master keys and this card's diversified SSSE and purse keys."""
    keys = default_key_set()
    out: dict[str, bytes] = {}
    for group_name, group in (("ssse", keys.ssse), ("purse", keys.purse)):
        for family in FAMILIES:
            for name, key in group.keys.get(family, {}).items():
                out[f"{group_name} {family} master {name}"] = key
    s = profile.ssse
    card_id = s.ef05.card_id.encode()
    for name in SSSE_KEY_NAMES:
        out[f"card {name}"] = keys.ssse_card_key(name, card_id, s.algorithm_flag)
    p = profile.purse
    if p is not None:
        raw15 = p.ef0015.encode()
        for master, card_name in PURSE_CARD_KEY.items():
            out[f"card {card_name}"] = keys.purse_card_key(
                master, raw15[0:8], raw15[12:20], p.algorithm_id
            )
    return out
