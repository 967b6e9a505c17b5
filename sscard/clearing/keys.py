"""Issuer TAC keys for clearing, behind two small protocols an HSM can take over.

Why protocols: only the issuer's key holder can check a TAC (§K5); in
production that is an HSM or the issuer's front processor (J1 sends ~2,500 rows
per call and gets a code per row). So the clearing job never touches a key
directly: it asks a :class:`TacVerifier` for a code per row (0 ok, 1 TAC bad,
9 no key). :class:`MasterKeyVerifier` is the software one: it asks an
:class:`IssuerKeyProvider` for the issuer's TAC master key (MTK) and derives each
card's DTK = Div(Div(MTK, issuer ID), ASN right 8 B) (§P4.1 and
profile "PSAM diversification"), batched: one ECB call per issuer for all its
cards' keys, then the CBC-MACs of every row as array operations
(:mod:`sscard.crypto.des_batch`, :mod:`sscard.crypto.sm4_batch`; §K9).

Key file (``--keys``): ``sscard-issuer-keys/1`` lists issuers by ID with their
key version and MTK per algorithm family; a simulator key set (``sscard-keys/1``,
e.g. sscard/data/test-keys.json) is also accepted and then serves every issuer
(the simulator derives every card from one master set). Keys never appear in a
repr, a log or an error.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from sscard.clearing.errors import IssuerKeysError

ISSUER_KEYS_SCHEMA = "sscard-issuer-keys/1"
TEST_KEYS_WARNING = "TEST KEYS - NOT FOR PRODUCTION"
DERIVATION = "sscard-purse-issuer-asn-2level"

#: Algorithm-ID byte -> key family (docs/reference.md part P profile: 00 3DES, 04 SM4).
FAMILY_OF_ALG = {0: "3des", 4: "sm4"}
#: Verifier answers per row.
OK, BAD, NO_KEY = 0, 1, 9


class IssuerKeyProvider(Protocol):
    """Where TAC master keys come from (a key file here; a key store elsewhere)."""

    def knows(self, issuer_id: str) -> bool:
        """True if this provider has any TAC key for the issuer (16 hex, upper case)."""
        ...

    def tac_master(self, issuer_id: str, family: str, key_version: int | None) -> bytes | None:
        """The issuer's 16-byte MTK for ``family`` ("3des"/"sm4") and key version, or
        None (unknown issuer, family or version; ``key_version`` None: any)."""
        ...


class TacVerifier(Protocol):
    """Checks purchase TACs in bulk: what an HSM or an issuer front processor offers."""

    def knows(self, issuer_id: str) -> bool: ...

    def verify(
        self,
        issuers: list[str],
        issuer_idx: np.ndarray,
        alg_ids: np.ndarray,
        key_versions: np.ndarray,
        asn8: np.ndarray,
        messages: np.ndarray,
        tacs: np.ndarray,
    ) -> np.ndarray:
        """One int8 code per row: 0 ok, 1 TAC bad, 9 no key.

        ``issuers[issuer_idx[i]]`` is row i's issuer ID (16 hex); ``alg_ids`` and
        ``key_versions``: int16, -1 where the row does not say (then every family is
        tried); ``asn8``: (n, 8) uint8, the ASN's right 8 bytes; ``messages``:
        (n, 32) uint8, the 22-byte TAC input padded ``80 00..`` (its first 24 bytes
        are the 3DES MAC input, all 32 the SM4 one); ``tacs``: (n, 4) uint8.
        """
        ...


# --------------------------------------------------------------------------- key files


@dataclass(frozen=True)
class IssuerKeys:
    """Key-file contents: per issuer ID (or ``*`` for any), key version and MTKs."""

    issuers: dict[str, tuple[int, dict[str, bytes]]] = field(repr=False)
    description: str = ""

    def knows(self, issuer_id: str) -> bool:
        return issuer_id in self.issuers or "*" in self.issuers

    def tac_master(self, issuer_id: str, family: str, key_version: int | None) -> bytes | None:
        entry = self.issuers.get(issuer_id) or self.issuers.get("*")
        if entry is None:
            return None
        version, masters = entry
        if key_version is not None and key_version != version:
            return None
        return masters.get(family)

    def __repr__(self) -> str:
        return f"<IssuerKeys issuers={len(self.issuers)} keys=<redacted>>"

    def to_json(self) -> str:
        return (
            json.dumps(
                {
                    "schema": ISSUER_KEYS_SCHEMA,
                    "warning": TEST_KEYS_WARNING,
                    "description": self.description,
                    "derivation": DERIVATION,
                    "issuers": {
                        issuer: {
                            "key_version": version,
                            **{fam: key.hex().upper() for fam, key in sorted(masters.items())},
                        }
                        for issuer, (version, masters) in sorted(self.issuers.items())
                    },
                },
                indent=2,
            )
            + "\n"
        )

    @classmethod
    def for_issuers(
        cls, issuer_ids: Iterable[str], masters: Mapping[str, bytes], key_version: int
    ) -> IssuerKeys:
        """The same masters for each listed issuer (how the simulator's cards are made)."""
        return cls(
            {i: (key_version, dict(masters)) for i in sorted(set(issuer_ids))},
            "TEST issuer keys from the sscard simulator key set",
        )

    @classmethod
    def load(cls, path: str | Path) -> IssuerKeys:
        name = Path(path).name
        from sscard.files import parse_json, read_text

        try:
            data = parse_json(read_text(path))
        except OSError as exc:
            raise IssuerKeysError(
                f"cannot read the key file {name}: {exc.strerror}", f"无法读取密钥文件{name}"
            ) from None
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise IssuerKeysError(
                f"the key file {name} is not JSON", f"密钥文件{name}不是JSON"
            ) from None
        if not isinstance(data, dict):
            raise IssuerKeysError(f"{name}: not a key file", f"{name}不是密钥文件")
        if data.get("schema") == "sscard-keys/1":
            return cls._from_key_set(data, name)
        if data.get("schema") != ISSUER_KEYS_SCHEMA:
            raise IssuerKeysError(
                f"{name}: schema is {data.get('schema')!r}, expected {ISSUER_KEYS_SCHEMA!r}",
                f"{name}的格式为{data.get('schema')!r}，应为{ISSUER_KEYS_SCHEMA!r}",
            )
        if data.get("derivation", DERIVATION) != DERIVATION:
            raise IssuerKeysError(
                f"{name}: key derivation {data.get('derivation')!r} is not supported",
                f"{name}：不支持的密钥派生规则",
            )
        issuers = data.get("issuers")
        if not isinstance(issuers, dict) or not issuers:
            raise IssuerKeysError(f"{name}: no issuers", f"{name}：没有发卡机构")
        out: dict[str, tuple[int, dict[str, bytes]]] = {}
        for issuer, entry in issuers.items():
            if issuer != "*" and not _is_hex(issuer, 16):
                raise IssuerKeysError(
                    f"{name}: issuer ID {issuer!r} is not 16 upper-case hex digits",
                    f"{name}：发卡机构标识{issuer!r}不是16位大写十六进制",
                )
            if not isinstance(entry, dict):
                raise IssuerKeysError(
                    f"{name}: issuer {issuer}: not an object", f"{name}：格式错误"
                )
            version = entry.get("key_version", 1)
            if not isinstance(version, int) or not 0 <= version <= 255:
                raise IssuerKeysError(
                    f"{name}: issuer {issuer}: key_version must be 0-255",
                    f"{name}：发卡机构{issuer}的密钥版本应为0-255",
                )
            masters = {fam: _key(entry.get(fam), name, issuer) for fam in ("3des", "sm4")}
            present = {fam: k for fam, k in masters.items() if k is not None}
            if not present:
                raise IssuerKeysError(
                    f"{name}: issuer {issuer}: no 3des or sm4 TAC master key",
                    f"{name}：发卡机构{issuer}没有TAC主密钥",
                )
            out[issuer] = (version, present)
        description = data.get("description", "")
        return cls(out, description if isinstance(description, str) else "")

    @classmethod
    def _from_key_set(cls, data: dict[str, Any], name: str) -> IssuerKeys:
        from sscard.errors import SscardError
        from sscard.simulators.keys import KeySet

        try:
            key_set = KeySet.from_dict(data)
        except SscardError as exc:
            raise IssuerKeysError(
                f"{name}: {exc.message_en}", f"{name}：{exc.message_zh}"
            ) from None
        masters: dict[str, bytes] = {}
        for family in ("3des", "sm4"):
            try:
                masters[family] = key_set.purse.master("MTK", family)
            except SscardError:
                continue
        if not masters:
            raise IssuerKeysError(f"{name}: no purse MTK", f"{name}：没有钱包TAC主密钥")
        return cls({"*": (key_set.purse_key_version, masters)}, key_set.description)


def _is_hex(text: object, width: int) -> bool:
    return (
        isinstance(text, str) and len(text) == width and all(c in "0123456789ABCDEF" for c in text)
    )


def _key(value: object, name: str, issuer: str) -> bytes | None:
    if value is None:
        return None
    if not _is_hex(value, 32):
        raise IssuerKeysError(
            f"{name}: issuer {issuer}: a master key must be 32 upper-case hex digits",
            f"{name}：发卡机构{issuer}的主密钥应为32位大写十六进制",
        )
    assert isinstance(value, str)
    return bytes.fromhex(value)


# --------------------------------------------------------------------------- software verifier


def _ecb(key: bytes, family: str) -> Any:
    """An ECB encryptor's ``update``: 3DES for 8/16-byte keys (expanded to 24), or SM4."""
    if family == "sm4":
        return Cipher(algorithms.SM4(key), modes.ECB()).encryptor().update
    full = key * 3 if len(key) == 8 else key + key[:8]
    return Cipher(TripleDES(full), modes.ECB()).encryptor().update


def _diversify_many(master: bytes, factors: np.ndarray, family: str) -> np.ndarray:
    """Div(MK, D) for many 8-byte factors at once: one ECB call over every D ‖ ~D (§P4.1)."""
    blocks = np.concatenate([factors, factors ^ 0xFF], axis=1)
    out = _ecb(master, family)(np.ascontiguousarray(blocks).tobytes())
    return np.frombuffer(out, dtype=np.uint8).reshape(-1, 16)


def card_tac_keys(master: bytes, issuer_id: str, cards: np.ndarray, family: str) -> np.ndarray:
    """Each card's TAC key from the issuer's MTK: DTK = Div(Div(MTK, issuer ID), ASN
    right 8 B) (§P4.1), then 3DES: DTK_left XOR DTK_right ((k, 8)
    uint8, the single-DES TAC key, §P4.4); SM4: the DTK itself ((k, 16) uint8).
    ``cards``: (k,) uint64, the ASNs' right 8 bytes; two ECB calls in all."""
    issuer = np.frombuffer(bytes.fromhex(issuer_id), np.uint8).reshape(1, 8)
    level1 = _diversify_many(master, issuer, family)[0].tobytes()
    factors = np.ascontiguousarray(cards.astype(">u8")).view(np.uint8).reshape(-1, 8)
    dtk = _diversify_many(level1, factors, family)
    return dtk if family == "sm4" else dtk[:, :8] ^ dtk[:, 8:]


def cbc_mac_rows(
    keys: np.ndarray, key_index: np.ndarray, messages: np.ndarray, family: str
) -> np.ndarray:
    """PBOC MAC (ICV 0, leftmost 4 B) of each row of ``messages`` ((n, 32) padded
    input: 3 DES blocks or 2 SM4 blocks) under ``keys[key_index[i]]``: (k, 8) uint8
    single-DES keys (the 3DES purse's TAC key) or (k, 16) SM4 keys. All rows and keys
    at once (:mod:`sscard.crypto.des_batch`, :mod:`sscard.crypto.sm4_batch`)."""
    n = len(messages)
    index = np.asarray(key_index, dtype=np.intp)
    if family == "sm4":
        from sscard.crypto.sm4_batch import sm4_cbc_encrypt_last

        last = sm4_cbc_encrypt_last(np.ascontiguousarray(keys), index, messages[:, :32])
        return np.ascontiguousarray(last[:, :4])
    from sscard.crypto.des_batch import des_cbc_encrypt_last

    key_words = np.ascontiguousarray(keys).view(">u8").reshape(-1).astype(np.uint64)
    words = np.ascontiguousarray(messages[:, :24]).view(">u8").reshape(n, 3).astype(np.uint64)
    chain = des_cbc_encrypt_last(key_words, index, words)
    return chain.astype(">u8").view(np.uint8).reshape(n, 8)[:, :4]


def cbc_mac_grouped(
    keys: list[bytes], starts: np.ndarray, messages: np.ndarray, family: str
) -> np.ndarray:
    """PBOC MAC (ICV 0, leftmost 4 B) of each row, rows sorted by key: ``keys[i]``
    serves rows ``starts[i]`` to ``starts[i+1]`` (the last to the end). Single-DES
    and SM4 keys run vectorised (:func:`cbc_mac_rows`); 16-byte 3DES keys get one
    pyca ECB encryptor each and, per CBC step, one ``update`` over all their rows."""
    n = len(messages)
    lengths = np.diff(np.append(np.asarray(starts, dtype=np.int64), n))
    key_index = np.repeat(np.arange(len(keys)), lengths)
    if family == "sm4" or (keys and all(len(k) == 8 for k in keys)):
        width = 16 if family == "sm4" else 8
        table = np.frombuffer(b"".join(keys), np.uint8).reshape(-1, width)
        return cbc_mac_rows(table, key_index, messages, family)
    bs, steps = 8, 3
    blocks = messages[:, : bs * steps].reshape(n, steps, bs)
    updates = [_ecb(k, family) for k in keys]
    bounds = [*(int(s) * bs for s in starts), n * bs]
    chain = np.zeros((n, bs), dtype=np.uint8)
    for step in range(steps):
        data = np.ascontiguousarray(chain ^ blocks[:, step, :]).tobytes()
        out = b"".join(update(data[bounds[i] : bounds[i + 1]]) for i, update in enumerate(updates))
        chain = np.frombuffer(out, dtype=np.uint8).reshape(n, bs)
    return chain[:, :4]


class MasterKeyVerifier:
    """Software :class:`TacVerifier` from an :class:`IssuerKeyProvider` (module docstring).

    Per call, per algorithm family and (issuer, key version): the distinct cards' TAC
    keys derived in one batch (:func:`card_tac_keys`; 3DES: DTK_left XOR DTK_right,
    8 B; SM4: the DTK, 16 B; §P4.4 and profile "SM4 TAC"), then one
    vectorised CBC-MAC over every row of the family (:func:`cbc_mac_rows`). Nothing
    is cached, so the object is just its provider: Spark ships it to its workers.
    """

    def __init__(self, provider: IssuerKeyProvider) -> None:
        self.provider = provider

    def __repr__(self) -> str:
        return "<MasterKeyVerifier keys=<redacted>>"

    def knows(self, issuer_id: str) -> bool:
        return self.provider.knows(issuer_id)

    def verify(
        self,
        issuers: list[str],
        issuer_idx: np.ndarray,
        alg_ids: np.ndarray,
        key_versions: np.ndarray,
        asn8: np.ndarray,
        messages: np.ndarray,
        tacs: np.ndarray,
    ) -> np.ndarray:
        n = len(issuer_idx)
        result = np.full(n, NO_KEY, dtype=np.int8)
        if n == 0:
            return result
        card = np.ascontiguousarray(asn8).view(">u8").reshape(n).astype(np.uint64)
        for family, alg in (("3des", 0), ("sm4", 4)):
            # Rows of this family, and rows that do not say which (try every family).
            rows = np.nonzero((alg_ids == alg) | ((alg_ids == -1) & (result != OK)))[0]
            if len(rows) == 0:
                continue
            # (issuer, key version) groups: a handful; -1 (not recorded) sorts first.
            group = issuer_idx[rows].astype(np.int64) * 512 + key_versions[rows] + 1
            parts_rows, parts_keys, parts_index = [], [], []
            n_keys = 0
            for g in np.unique(group).tolist():
                sel = rows[group == g]
                issuer, version = issuers[g // 512], g % 512 - 1
                master = self.provider.tac_master(issuer, family, None if version < 0 else version)
                if master is None:
                    continue  # no key: the rows stay NO_KEY (unless already OK)
                cards, inverse = np.unique(card[sel], return_inverse=True)
                parts_keys.append(card_tac_keys(master, issuer, cards, family))
                parts_rows.append(sel)
                parts_index.append(inverse.reshape(-1) + n_keys)
                n_keys += len(cards)
            if not parts_rows:
                continue
            sel = np.concatenate(parts_rows)
            key_index = np.concatenate(parts_index)
            order = np.argsort(key_index, kind="stable")  # a card's rows together: locality
            sel, key_index = sel[order], key_index[order]
            macs = cbc_mac_rows(np.concatenate(parts_keys), key_index, messages[sel], family)
            good = (macs == tacs[sel]).all(axis=1)
            # A row already matched under another family stays OK.
            result[sel] = np.where(good | (result[sel] == OK), OK, BAD)
        return result
