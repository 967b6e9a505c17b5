"""Per-row checks of an upload, vectorised: fields, date-time, TAC (one code per row).

Why one function for both engines: DuckDB's engine calls it on big slices of the
uploads' Arrow table (:func:`sscard.clearing.engines.check_table`), Spark inside
``mapInArrow``, the plain-Python baseline not at all (it loops over
:func:`sscard.crypto.purse.purchase_tac`); so DuckDB and Spark cannot disagree on
a check. Everything is numpy over whole Arrow columns: hex and BCD decoding by
lookup table, date validation by arithmetic, and the TAC by
:class:`~sscard.clearing.keys.TacVerifier` (batched DES/SM4 over every row).

TAC input (§P4.4; clearing.md §P5): amount4 ‖ type1 ‖ terminal6 ‖
terminal seq4 ‖ date4 ‖ time3, 22 bytes, padded ``80 00..`` to 24 (3DES) or 32
(SM4) bytes.

Codes (schema.CHECK_*): 0 ok; 2 invalid field (02); 7 bad date-time (07); then,
for a normal row, 1 TAC bad (01) or 9 no key for the issuer/version (09); for a
grey row, 11 when the 805A TAC it kept verifies as its own (grey rule 1), else 0
(or 9 when its issuer is unknown).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sscard.clearing.keys import BAD, NO_KEY, OK, TacVerifier
from sscard.clearing.schema import (
    CHECK_BAD_TIME,
    CHECK_INVALID,
    CHECK_NO_KEY,
    CHECK_OK,
    CHECK_PROOF_OK,
    CHECK_TAC_BAD,
)

#: The columns the check reads.
CHECK_COLUMNS = (
    "issuer_id",
    "city_code",
    "asn",
    "card_ctr",
    "amount",
    "tx_type",
    "term_id",
    "term_seq",
    "tx_time",
    "tac",
    "grey",
    "key_ver",
    "alg_id",
    "proof_tac",
)

_HEX = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789ABCDEF"):
    _HEX[_c] = _i
_DIGIT = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789"):
    _DIGIT[_c] = _i
_DAYS = np.array([0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def _column(data: pa.RecordBatch | pa.Table, name: str) -> pa.Array:
    col = data.column(name)
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    return col


def _chars(col: pa.Array, width: int, lut: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-width text as (n, width) nibbles/digits and a per-row validity mask.

    Rows that are null, of another byte length or hold a character outside ``lut``
    are invalid (their values are zeros)."""
    n = len(col)
    if not pa.types.is_string(col.type):  # large_string (Spark), string_view, null
        col = col.cast(pa.string())
    ok = pc.fill_null(pc.equal(pc.binary_length(col), width), False)
    fixed = pc.if_else(ok, col, pa.scalar("0" * width, pa.string()))
    if isinstance(fixed, pa.ChunkedArray):
        fixed = fixed.combine_chunks()
    offsets = np.frombuffer(fixed.buffers()[1], dtype=np.int32)[fixed.offset : fixed.offset + 1]
    start = int(offsets[0]) if len(offsets) else 0
    raw = np.frombuffer(fixed.buffers()[2], dtype=np.uint8) if n else np.zeros(0, np.uint8)
    values = lut[raw[start : start + n * width]].reshape(n, width)
    valid = ok.to_numpy(zero_copy_only=False) & (values != 255).all(axis=1)
    values[~valid] = 0
    return values, valid


def _hex_bytes(nibbles: np.ndarray) -> np.ndarray:
    out: np.ndarray = (nibbles[:, 0::2] << 4) | nibbles[:, 1::2]
    return out


def _ints(col: pa.Array, fill: int = -1) -> np.ndarray:
    return np.asarray(pc.fill_null(col.cast(pa.int64()), fill).to_numpy(zero_copy_only=False))


def _valid_datetime(d: np.ndarray) -> np.ndarray:
    """(n, 14) digits YYYYMMDDhhmmss -> is a real calendar date-time."""
    d = d.astype(np.int32)
    year = d[:, 0] * 1000 + d[:, 1] * 100 + d[:, 2] * 10 + d[:, 3]
    month = d[:, 4] * 10 + d[:, 5]
    day = d[:, 6] * 10 + d[:, 7]
    hour, minute, second = (
        d[:, 8] * 10 + d[:, 9],
        d[:, 10] * 10 + d[:, 11],
        d[:, 12] * 10 + d[:, 13],
    )
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_ok = (month >= 1) & (month <= 12)
    max_day = _DAYS[np.clip(month, 0, 12)] - ((month == 2) & ~leap)
    ok: np.ndarray = (
        (year >= 2000) & month_ok & (day >= 1) & (day <= max_day)
        & (hour < 24) & (minute < 60) & (second < 60)
    )  # fmt: skip
    return ok


def tac_messages(
    amount: np.ndarray,
    tx_type: np.ndarray,
    term: np.ndarray,
    seq: np.ndarray,
    time_digits: np.ndarray,
) -> np.ndarray:
    """(n, 32) padded TAC inputs from numeric columns, terminal bytes and time digits."""
    n = len(amount)
    msg = np.zeros((n, 32), dtype=np.uint8)
    msg[:, 0:4] = (amount.astype(">u4")).view(np.uint8).reshape(n, 4)
    msg[:, 4] = tx_type.astype(np.uint8)
    msg[:, 5:11] = term
    msg[:, 11:15] = (seq.astype(">u4")).view(np.uint8).reshape(n, 4)
    msg[:, 15:22] = (time_digits[:, 0::2] << 4) | time_digits[:, 1::2]
    msg[:, 22] = 0x80
    return msg


def check_rows(data: pa.RecordBatch | pa.Table, verifier: TacVerifier) -> np.ndarray:
    """One check code (int16) per row of ``data`` (module docstring)."""
    n = data.num_rows
    codes = np.full(n, CHECK_OK, dtype=np.int16)
    if n == 0:
        return codes
    col: dict[str, Any] = {c: _column(data, c) for c in CHECK_COLUMNS}
    issuer, issuer_ok = _chars(col["issuer_id"], 16, _HEX)
    city, city_ok = _chars(col["city_code"], 4, _HEX)
    asn, asn_ok = _chars(col["asn"], 20, _HEX)
    term, term_ok = _chars(col["term_id"], 12, _HEX)
    tac, tac_ok = _chars(col["tac"], 8, _HEX)
    proof, proof_ok = _chars(col["proof_tac"], 8, _HEX)
    time_digits, time_ok = _chars(col["tx_time"], 14, _DIGIT)
    grey = np.asarray(pc.fill_null(col["grey"], False).to_numpy(zero_copy_only=False))
    ctr, amount, tx_type = _ints(col["card_ctr"]), _ints(col["amount"]), _ints(col["tx_type"])
    seq, alg, ver = _ints(col["term_seq"]), _ints(col["alg_id"]), _ints(col["key_ver"])
    valid = (
        issuer_ok & city_ok & asn_ok & term_ok
        & (city == issuer[:, 4:8]).all(axis=1)
        & (ctr >= 0) & (ctr <= 0xFFFF)
        & (amount >= 0) & (amount <= 0xFFFFFFFF)
        & ((tx_type == 6) | (tx_type == 9))
        & (seq >= 0) & (seq <= 0xFFFFFFFF)
        & ((alg == -1) | (alg == 0) | (alg == 4))
        & (ver >= -1) & (ver <= 0xFF)
        & (grey | tac_ok)
    )  # fmt: skip
    time_valid = time_ok.copy()
    time_valid[time_ok] = _valid_datetime(time_digits[time_ok])
    codes[~valid] = CHECK_INVALID
    codes[valid & ~time_valid] = CHECK_BAD_TIME
    todo = np.nonzero(valid & time_valid)[0]
    if len(todo) == 0:
        return codes
    # The issuer as a dictionary index (a handful of issuers, many rows).
    encoded = pc.dictionary_encode(col["issuer_id"].take(pa.array(todo)))
    issuers = [str(x) for x in encoded.dictionary.to_pylist()]
    idx = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int32)
    known = np.array([verifier.knows(i) for i in issuers], dtype=bool)[idx]
    is_grey = grey[todo]
    # Normal rows: their own TAC; grey rows: the 805A TAC they kept, when there is one.
    checked_tac = np.where(is_grey[:, None], proof[todo], tac[todo])
    want = known & (~is_grey | proof_ok[todo])
    msg = tac_messages(
        amount[todo], tx_type[todo], _hex_bytes(term[todo]), seq[todo], time_digits[todo]
    )
    answer = np.full(len(todo), NO_KEY, dtype=np.int8)
    sel = np.nonzero(want)[0]
    if len(sel):
        answer[sel] = verifier.verify(
            issuers,
            idx[sel],
            alg[todo][sel].astype(np.int16),
            ver[todo][sel].astype(np.int16),
            _hex_bytes(asn[todo][sel])[:, 2:10],
            msg[sel],
            _hex_bytes(checked_tac[sel]),
        )
    out = np.where(
        ~known,
        CHECK_NO_KEY,
        np.where(
            is_grey,
            np.where(want & (answer == OK), CHECK_PROOF_OK, CHECK_OK),
            np.where(answer == OK, CHECK_OK, np.where(answer == BAD, CHECK_TAC_BAD, CHECK_NO_KEY)),
        ),
    )
    codes[todo] = out
    return codes
