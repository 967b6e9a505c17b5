"""The clearing file: one typed row per tap a validator uploads (docs/reference.md part K, sscard profile).

Why one schema: the journal export (:mod:`sscard.services.clearing_export`), the
fleet generator (:mod:`sscard.simulators.fleet`) and the clearing job all read and
write exactly these columns, so an upload goes from a validator to the clearing
house without a mapping step. Column names follow the profile's input list
(``card_ctr``, ``term_id``, ``tx_time``...); hex values are upper-case text, never
BLOB, so they compare and group the same in DuckDB, Spark and Python; money is
integer fen (int64), never float or DECIMAL. docs/clearing.md documents each column.

Reason codes are J1's numbering where it exists plus the profile's 11-14
(§K4 and "Reason codes").
"""

from __future__ import annotations

from typing import Any

#: Column name, Arrow type name, nullable, meaning. Arrow types are built lazily
#: (:func:`input_schema`) so importing this module does not import pyarrow.
INPUT_COLUMNS: tuple[tuple[str, str, bool, str], ...] = (
    (
        "file_id",
        "string",
        False,
        "upload batch id (journal batch id); with line_no, the row's identity",
    ),
    ("line_no", "int32", False, "1-based row number within the batch"),
    (
        "upload_date",
        "date32",
        False,
        "Beijing date the batch was exported/uploaded: the clearing day",
    ),
    (
        "acquirer_id",
        "string",
        False,
        "acquiring operator's institution ID, 16 hex (city code in hex 4-7)",
    ),
    ("operator_id", "string", False, "operator code, 4 hex (validator configuration)"),
    ("terminal_name", "string", False, "validator name in its journal (not the PSAM number)"),
    ("line", "string", False, "line"),
    ("vehicle", "string", False, "station, gate or vehicle"),
    ("issuer_id", "string", False, "card issuer ID, EF 0015[0..7], 16 hex"),
    ("city_code", "string", False, "issuing city, issuer ID bytes 2-3, 4 digits (GB/T 13497)"),
    ("asn", "string", False, "card application serial number, EF 0015[10..19], 20 hex"),
    ("card_ctr", "int32", False, "card offline counter N as returned by 8050 (before the debit)"),
    ("bal_before", "int64", False, "balance before, fen"),
    ("bal_after", "int64", True, "balance after, fen (null on grey rows)"),
    ("amount", "int64", False, "amount, fen"),
    ("tx_type", "int16", False, "transaction type: 6 EP purchase, 9 composite purchase"),
    ("term_id", "string", False, "PSAM terminal number, 12 hex"),
    ("term_seq", "int64", False, "PSAM terminal transaction sequence (8070)"),
    ("tx_time", "string", False, "date-time of the tap, YYYYMMDDhhmmss Beijing time (TAC input)"),
    ("tac", "string", True, "TAC, 8 hex (null on grey rows)"),
    ("grey", "bool", False, "grey record (灰交易): the validator could not prove the debit"),
    ("key_ver", "int16", True, "card key version from 8050"),
    ("alg_id", "int16", True, "card algorithm ID from 8050: 0 3DES, 4 SM4 (null: not recorded)"),
    ("prev_ctr", "int32", True, "card's newest EF 0018 entry before this tap: counter"),
    ("prev_type", "int16", True, "... its transaction type"),
    ("prev_amount", "int64", True, "... its amount, fen"),
    ("prev_term", "string", True, "... its terminal, 12 hex"),
    ("prev_time", "string", True, "... its date-time, YYYYMMDDhhmmss"),
    ("proof_tac", "string", True, "grey rows: TAC of the card's 805A answer, kept unverified"),
    ("journal_state", "string", False, "journal state: completed or uncertain"),
    ("tap_id", "int64", True, "row id in the validator's journal"),
)

#: What the clearing job adds to each row of its accepted/rejected outputs.
RESULT_COLUMNS: tuple[tuple[str, str, bool, str], ...] = (
    ("reason", "string", False, "reason code (REASONS)"),
    ("settle_date", "date32", False, "clearing day the row is settled or refused on"),
    ("grey_rule", "int16", True, "grey rows: the rule that decided them (1-4, docs/clearing.md)"),
)

INPUT_NAMES = tuple(c[0] for c in INPUT_COLUMNS)
#: Columns that make a row "byte-identical" to another: everything but where it came from.
CONTENT_NAMES = tuple(n for n in INPUT_NAMES if n not in ("file_id", "line_no", "upload_date"))
#: The order of receipt: "keep the first received" (profile "Dedup").
RECEIPT_ORDER = ("upload_date", "file_id", "line_no")

#: Reason codes: (English, Chinese). Paid: 10 and 11.
REASONS: dict[str, tuple[str, str]] = {
    "10": ("paid", "正常（已结算）"),
    "11": ("grey confirmed, paid", "灰交易已确认扣款（已结算）"),
    "01": ("TAC error", "TAC错误"),
    "02": ("invalid field", "数据非法"),
    "03": ("duplicate", "重复记录"),
    "04": ("grey, pending", "灰交易待定"),
    "07": ("bad date-time", "时间格式错误"),
    "09": ("no key for issuer or key version", "无发卡机构密钥或密钥版本"),
    "12": ("grey void, not debited", "灰交易未扣款（作废）"),
    "13": ("conflicting duplicate", "冲突重复记录"),
    "14": ("grey expired", "灰交易过期拒付"),
}
PAID = frozenset({"10", "11"})
#: Not counted as refused in the settlement: an exact repeat is not a second transaction.
NOT_A_TRANSACTION = frozenset({"03"})
#: Grey rows older than this many days at the run's as-of date become 14.
GREY_EXPIRY_DAYS = 7

#: Per-row check codes the TAC/field check returns (the first reason it finds).
CHECK_OK, CHECK_TAC_BAD, CHECK_INVALID, CHECK_BAD_TIME, CHECK_NO_KEY, CHECK_PROOF_OK = (
    0, 1, 2, 7, 9, 11,
)  # fmt: skip


def _arrow_type(name: str) -> Any:
    import pyarrow as pa

    return {
        "string": pa.string(),
        "int16": pa.int16(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "bool": pa.bool_(),
        "date32": pa.date32(),
    }[name]


def input_schema() -> Any:
    """The Arrow schema of an upload file (``pyarrow.Schema``)."""
    import pyarrow as pa

    return pa.schema([pa.field(n, _arrow_type(t), nullable=nl) for n, t, nl, _ in INPUT_COLUMNS])


def result_schema() -> Any:
    """The Arrow schema of the accepted/rejected outputs: the input plus RESULT_COLUMNS."""
    import pyarrow as pa

    cols = INPUT_COLUMNS + RESULT_COLUMNS
    return pa.schema([pa.field(n, _arrow_type(t), nullable=nl) for n, t, nl, _ in cols])
