"""Master-key sets for the simulators: a JSON file, never part of a card image.

A key set (``"schema": "sscard-keys/1"``, top-level ``"warning": "TEST KEYS - NOT
FOR PRODUCTION"``) holds issuer *master* keys, one per name and algorithm family:

* ``ssse`` — IRK, PUK, STK, UK, RKSSSE; card key = Div(Div(MK, card ID bytes 0-7),
  card ID bytes 8-15) (reference part C, "sscard profile": key diversification);
* ``purse`` — MPK (purchase), MLK (load), MTK (TAC); card key DPK/DLK/DTK =
  Div(Div(MK, issuer ID = EF0015[0..7]), ASN right 8 B = EF0015[12..19])
  (reference §P4.1 and profile "PSAM diversification"). MLK is also the
  *load host's DLK master*: the host derives each card's DLK from it to check
  MAC1 and compute MAC2 (§P4.4).

``3des`` keys serve DES-family cards (SSSE flag 01, purse algorithm 00); ``sm4``
keys serve SM4 cards (flag 03, algorithm 04). :meth:`KeySet.card_key` derives a
card key with the crypto module; the simulator calls it on demand.

The default set in ``sscard/data/test-keys.json`` is fixed so tests and demos agree;
:func:`generate_key_set` makes a fresh one.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

from sscard.simulators.profile import (
    ProfileError,
    SchemaMismatch,
    atomic_write_text,
    parse_json_text,
    read_json_file,
)

KEYS_SCHEMA = "sscard-keys/1"
TEST_KEYS_WARNING = "TEST KEYS - NOT FOR PRODUCTION"

Family = Literal["3des", "sm4"]
FAMILIES: tuple[Family, ...] = ("3des", "sm4")

SSSE_KEY_NAMES = ("IRK", "PUK", "STK", "UK", "RKSSSE")
PURSE_KEY_NAMES = ("MPK", "MLK", "MTK")

#: Derivation rule names (what :meth:`KeySet.card_key` applies).
SSSE_DERIVATION = "sscard-ssse-card-id-2level"
PURSE_DERIVATION = "sscard-purse-issuer-asn-2level"

#: Purse card key derived from each purse master.
PURSE_CARD_KEY = {"MPK": "DPK", "MLK": "DLK", "MTK": "DTK"}


class KeyNotInSet(ProfileError):
    """A master key the key set does not hold (the name is safe to show; the key is not)."""


@dataclass(frozen=True)
class KeyGroup:
    """Master keys of one application, by algorithm family and name (16 B each)."""

    derivation: str
    keys: dict[str, dict[str, bytes]] = field(repr=False)  # family -> name -> key

    def master(self, name: str, family: Family | str) -> bytes:
        """The 16-B master ``name`` of ``family`` (``"3des"`` or ``"sm4"``)."""
        try:
            return self.keys[family][name]
        except KeyError:
            raise KeyNotInSet(
                f"no {family} master key {name!r} in the key set",
                f"密钥集中没有{family}主密钥{name}",
            ) from None

    def names(self) -> list[str]:
        return sorted({n for fam in self.keys.values() for n in fam})


@dataclass(frozen=True)
class KeySet:
    """Master keys for the SSSE and the purse, plus the purse key version and index."""

    ssse: KeyGroup
    purse: KeyGroup
    purse_key_version: int = 1
    purse_key_index: int = 1
    description: str = ""

    # ------------------------------------------------------------------ derivation

    def ssse_card_key(self, name: str, card_id: bytes, algorithm_flag: int) -> bytes:
        """A card's SSSE key (IRK, PUK, STK, UK, RKSSSE) from its 16-B card ID code."""
        from sscard.crypto import ssse as ssse_crypto

        _check_derivation(self.ssse, SSSE_DERIVATION)
        family: Family = "sm4" if algorithm_flag == 0x03 else "3des"
        return ssse_crypto.card_key(self.ssse.master(name, family), card_id, algorithm_flag)

    def purse_card_key(
        self, master_name: str, issuer_id: bytes, asn8: bytes, algorithm_id: int
    ) -> bytes:
        """A card's DPK/DLK/DTK from master MPK/MLK/MTK, issuer ID and ASN right 8 B."""
        from sscard.crypto import purse as purse_crypto

        _check_derivation(self.purse, PURSE_DERIVATION)
        family: Family = "sm4" if algorithm_id == 0x04 else "3des"
        master = self.purse.master(master_name, family)
        return purse_crypto.diversify2(master, issuer_id, asn8, algorithm_id)

    def load_host_dlk_master(self, family: Family | str) -> bytes:
        """The master the load host derives DLK from (= purse MLK)."""
        return self.purse.master("MLK", family)

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        def group(g: KeyGroup) -> dict[str, Any]:
            out: dict[str, Any] = {"derivation": g.derivation}
            for fam in FAMILIES:
                if fam in g.keys:
                    out[fam] = {n: k.hex().upper() for n, k in sorted(g.keys[fam].items())}
            return out

        return {
            "schema": KEYS_SCHEMA,
            "warning": TEST_KEYS_WARNING,
            "description": self.description,
            "ssse": group(self.ssse),
            "purse": {
                **group(self.purse),
                "key_version": self.purse_key_version,
                "key_index": self.purse_key_index,
            },
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KeySet:
        if data.get("schema") != KEYS_SCHEMA:
            raise SchemaMismatch(data.get("schema"), KEYS_SCHEMA)
        if data.get("warning") != TEST_KEYS_WARNING:
            raise ProfileError(
                f'key file must carry "warning": "{TEST_KEYS_WARNING}"',
                f"密钥文件须带有测试密钥警告“{TEST_KEYS_WARNING}”",
            )
        purse = data.get("purse")
        version = purse.get("key_version", 1) if isinstance(purse, dict) else 1
        index = purse.get("key_index", 1) if isinstance(purse, dict) else 1
        if not (isinstance(version, int) and isinstance(index, int)):
            raise ProfileError(
                "purse key_version/key_index must be integers", "钱包密钥版本/索引须为整数"
            )
        description = data.get("description", "")
        return cls(
            ssse=_group_from(data.get("ssse"), "ssse", SSSE_KEY_NAMES),
            purse=_group_from(purse, "purse", PURSE_KEY_NAMES),
            purse_key_version=version,
            purse_key_index=index,
            description=description if isinstance(description, str) else "",
        )

    @classmethod
    def from_json(cls, text: str) -> KeySet:
        return cls.from_dict(parse_json_text(text, KEYS_SCHEMA))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> KeySet:
        return cls.from_dict(read_json_file(path, KEYS_SCHEMA))

    def save(self, path: str | os.PathLike[str]) -> None:
        atomic_write_text(path, self.to_json())


def _check_derivation(group: KeyGroup, expected: str) -> None:
    if group.derivation != expected:
        raise ProfileError(
            f"key derivation {group.derivation!r} is not supported (expected {expected!r})",
            f"不支持的密钥派生规则{group.derivation!r}",
        )


def _group_from(data: Any, where: str, required: tuple[str, ...]) -> KeyGroup:
    if not isinstance(data, dict) or not isinstance(data.get("derivation"), str):
        raise ProfileError(f"{where}: needs a derivation and keys", f"{where}：缺少派生规则或密钥")
    keys: dict[str, dict[str, bytes]] = {}
    for fam in FAMILIES:
        entries = data.get(fam)
        if entries is None:
            continue
        if not isinstance(entries, dict):
            raise ProfileError(f"{where}.{fam}: expected an object", f"{where}.{fam}：应为对象")
        keys[fam] = {}
        for name, value in entries.items():
            try:
                key = bytes.fromhex(value) if isinstance(value, str) else b""
            except ValueError:
                key = b""
            if len(key) != 16:
                raise ProfileError(
                    f"{where}.{fam}.{name}: must be 32 hex digits (16 bytes)",
                    f"{where}.{fam}.{name}：须为32位十六进制（16字节）",
                )
            keys[fam][name] = key
        missing = [n for n in required if n not in keys[fam]]
        if missing:
            raise ProfileError(
                f"{where}.{fam}: missing {', '.join(missing)}",
                f"{where}.{fam}：缺少{'、'.join(missing)}",
            )
    if not keys:
        raise ProfileError(f"{where}: no 3des or sm4 keys", f"{where}：没有3des或sm4密钥")
    return KeyGroup(data["derivation"], keys)


def generate_key_set(seed: int | None = None, description: str = "") -> KeySet:
    """Fresh random master keys for both families (deterministic with ``seed``).

    Without a seed the keys come from the OS CSPRNG; they are still test keys.
    """
    rng: random.Random = random.Random(seed) if seed is not None else random.SystemRandom()

    def fams(names: tuple[str, ...]) -> dict[str, dict[str, bytes]]:
        return {fam: {n: rng.randbytes(16) for n in names} for fam in FAMILIES}

    return KeySet(
        ssse=KeyGroup(SSSE_DERIVATION, fams(SSSE_KEY_NAMES)),
        purse=KeyGroup(PURSE_DERIVATION, fams(PURSE_KEY_NAMES)),
        description=description or "generated test keys",
    )


def default_key_set() -> KeySet:
    """The fixed test key set shipped as ``sscard/data/test-keys.json``."""
    text = resources.files("sscard").joinpath("data/test-keys.json").read_text(encoding="utf-8")
    return KeySet.from_json(text)
