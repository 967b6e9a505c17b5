"""Issuer TAC keys for clearing, behind two small protocols an HSM can take over.

Why protocols: only the issuer's key holder can check a TAC (clearing.md §5); in
production that is an HSM or the issuer's front processor (J1 sends ~2,500 rows
per call and gets a code per row). So the clearing job never touches a key
directly: it asks a :class:`TacVerifier` for a code per row (0 ok, 1 TAC bad,
9 no key). :class:`MasterKeyVerifier` is the software one: it asks an
:class:`IssuerKeyProvider` for the issuer's TAC master key (MTK) and derives each
card's DTK = Div(Div(MTK, issuer ID), ASN right 8 B) (transit-purse.md §4.1 and
profile "PSAM diversification"), batched: one ECB call per issuer for all its
cards, one cached TAC key per card, and one ECB call per card and CBC step for all
that card's taps (clearing.md §9).

Key file (``--keys``): ``sscard-issuer-keys/1`` lists issuers by ID with their
key version and MTK per algorithm family; a simulator key set (``sscard-keys/1``,
e.g. sscard/data/test-keys.json) is also accepted and then serves every issuer
(the simulator derives every card from one master set). Keys never appear in a
repr, a log or an error.
"""

from __future__ import annotations

import itertools
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

#: Algorithm-ID byte -> key family (transit-purse.md profile: 00 3DES, 04 SM4).
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
    """Div(MK, D) for many 8-byte factors at once: one ECB call over every D ‖ ~D (§4.1)."""
    blocks = np.concatenate([factors, factors ^ 0xFF], axis=1)
    out = _ecb(master, family)(np.ascontiguousarray(blocks).tobytes())
    return np.frombuffer(out, dtype=np.uint8).reshape(-1, 16)


def cbc_mac_grouped(
    keys: list[bytes], starts: np.ndarray, messages: np.ndarray, family: str
) -> np.ndarray:
    """PBOC MAC (ICV 0, leftmost 4 B) of each row, rows sorted by key.

    ``keys[i]`` serves rows ``starts[i]`` to ``starts[i+1]`` (exclusive; the last to
    the end); ``messages`` is (n, 32) padded input. Single-DES keys (the 3DES purse's
    TAC key) run in :mod:`sscard.crypto.des_batch`, all keys at once. Other keys
    (SM4) get one ECB encryptor each, and per CBC step one ``update`` over all that
    key's rows: ECB encrypts blocks independently, so a card's taps share the call
    (clearing.md §9).
    """
    n = len(messages)
    if family != "sm4" and keys and all(len(k) == 8 for k in keys):
        return _des_cbc_mac(keys, starts, messages)
    bs, steps = (16, 2) if family == "sm4" else (8, 3)
    blocks = messages[:, : bs * steps].reshape(n, steps, bs)
    updates = [_ecb(k, family) for k in keys]
    bounds = [*(int(s) * bs for s in starts), n * bs]
    chain = np.zeros((n, bs), dtype=np.uint8)
    for step in range(steps):
        data = np.ascontiguousarray(chain ^ blocks[:, step, :]).tobytes()
        out = b"".join(update(data[bounds[i] : bounds[i + 1]]) for i, update in enumerate(updates))
        chain = np.frombuffer(out, dtype=np.uint8).reshape(n, bs)
    return chain[:, :4]


def _des_cbc_mac(keys: list[bytes], starts: np.ndarray, messages: np.ndarray) -> np.ndarray:
    """Single-DES CBC-MAC over 3 blocks of every row, keys vectorised (des_batch)."""
    from sscard.crypto.des_batch import des_encrypt_blocks, des_key_schedule

    n = len(messages)
    key_words = np.frombuffer(b"".join(keys), dtype=">u8").astype(np.uint64)
    round_keys = des_key_schedule(key_words)
    lengths = np.diff(np.append(np.asarray(starts, dtype=np.int64), n))
    key_index = np.repeat(np.arange(len(keys)), lengths)
    words = np.ascontiguousarray(messages[:, :24]).view(">u8").reshape(n, 3).astype(np.uint64)
    chain = np.zeros(n, dtype=np.uint64)
    for step in range(3):
        chain = des_encrypt_blocks(chain ^ words[:, step], round_keys, key_index)
    return chain.astype(">u8").view(np.uint8).reshape(n, 8)[:, :4]


class MasterKeyVerifier:
    """Software :class:`TacVerifier` from an :class:`IssuerKeyProvider` (module docstring).

    Caches each card's TAC key (3DES: DTK_left XOR DTK_right, 8 B; SM4: DTK, 16 B;
    transit-purse.md §4.4 and profile "SM4 TAC") for the life of the object; picklable
    (Spark ships it to its workers), the cache and ciphers are rebuilt there.
    """

    def __init__(self, provider: IssuerKeyProvider) -> None:
        self.provider = provider
        self._cache: dict[tuple[str, str, int, bytes], bytes | None] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"provider": self.provider}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.provider = state["provider"]
        self._cache = {}

    def __repr__(self) -> str:
        return "<MasterKeyVerifier keys=<redacted>>"

    def knows(self, issuer_id: str) -> bool:
        return self.provider.knows(issuer_id)

    def _card_keys(
        self, issuer: str, family: str, version: int, asns: list[bytes]
    ) -> list[bytes | None]:
        """TAC keys of these cards (right-8-byte ASNs), derived in one batch if not cached."""
        missing = sorted({a for a in asns if (issuer, family, version, a) not in self._cache})
        if missing:
            master = self.provider.tac_master(issuer, family, None if version < 0 else version)
            if master is None:
                for a in missing:
                    self._cache[issuer, family, version, a] = None
            else:
                level1 = _diversify_many(
                    master, np.frombuffer(bytes.fromhex(issuer), np.uint8).reshape(1, 8), family
                )[0].tobytes()
                factors = np.frombuffer(b"".join(missing), np.uint8).reshape(-1, 8)
                dtk = _diversify_many(level1, factors, family)
                tac_keys = dtk if family == "sm4" else dtk[:, :8] ^ dtk[:, 8:]
                for a, k in zip(missing, tac_keys, strict=True):
                    self._cache[issuer, family, version, a] = k.tobytes()
        return [self._cache[issuer, family, version, a] for a in asns]

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
            # Sort by (issuer, version, card): each card's rows become contiguous.
            rows = rows[np.lexsort((card[rows], key_versions[rows], issuer_idx[rows]))]
            iss, ver, crd = issuer_idx[rows], key_versions[rows], card[rows]
            change = np.ones(len(rows), dtype=bool)
            change[1:] = (iss[1:] != iss[:-1]) | (ver[1:] != ver[:-1]) | (crd[1:] != crd[:-1])
            starts = np.nonzero(change)[0]
            keys: list[bytes | None] = []
            s_iss, s_ver, s_crd = iss[starts], ver[starts], crd[starts]
            g_change = np.ones(len(starts), dtype=bool)
            g_change[1:] = (s_iss[1:] != s_iss[:-1]) | (s_ver[1:] != s_ver[:-1])
            g_starts = [*np.nonzero(g_change)[0].tolist(), len(starts)]
            for a, b in itertools.pairwise(g_starts):
                asns = [int(x).to_bytes(8, "big") for x in s_crd[a:b]]
                keys.extend(self._card_keys(issuers[s_iss[a]], family, int(s_ver[a]), asns))
            have_card = np.array([k is not None for k in keys], dtype=bool)
            if not have_card.any():
                continue
            lengths = np.diff(np.append(starts, len(rows)))
            have_row = np.repeat(have_card, lengths)
            rows_k = rows[have_row]
            kept = [k for k in keys if k is not None]
            starts_k = np.concatenate([[0], np.cumsum(lengths[have_card])[:-1]])
            macs = cbc_mac_grouped(kept, starts_k, messages[rows_k], family)
            good = (macs == tacs[rows_k]).all(axis=1)
            # A row already matched under another family stays OK.
            result[rows_k] = np.where(good | (result[rows_k] == OK), OK, BAD)
        return result
