"""Encoding a journal's clearing batch: CSV, JSON lines and the typed Parquet upload.

Why a module of its own: :meth:`sscard.services.journal.Journal.export_unsent`
owns *which* rows go out and the durable, acknowledged batch (temp file, fsync,
rename, sha256); this module owns *how* a batch looks, so a new format does not
touch the journal's state machine. Every format takes the same line dicts
(``journal.CLEARING_FIELDS``, plus the validator's ``acquirer_id``/``operator_id``
for Parquet).

* **Parquet**: one row per completed or grey tap in the clearing
  house's input schema (:func:`sscard.clearing.schema.input_schema`,
  docs/clearing.md), typed: integers for money and counters, upper-case hex text,
  ``tx_time`` as the TAC's ``YYYYMMDDhhmmss`` Beijing digits. ``file_id`` is the
  batch id, ``upload_date`` the Beijing date of the export.
* **CSV**: flat columns, no JSON inside a cell (the fare details become
  ``fare_*`` columns) and one time convention: every time is ISO 8601 with its
  offset, card data in Beijing time (``+08:00``, §P5.8) and
  ``created_at`` converted to ``+08:00`` as well, so no column is naive or UTC.
* **JSON lines**: the same times; ``fare`` stays a nested object.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")

#: Fare details as CSV columns (validator.py ``details``; fares.Fare.as_dict), always
#: present; any other key of a batch's fare details follows as ``fare_<key>``, sorted.
FARE_FIELDS = (
    "mode",
    "kind",
    "category",
    "transfer",
    "entry_station",
    "base",
    "category_discount",
    "transfer_discount",
    "penalty",
)
#: Columns holding a date-time (journal names; the tearing rows add prev_datetime).
_TIME_FIELDS = ("txn_datetime", "prev_datetime")


def beijing_wall(text: str) -> datetime:
    """A stored journal time as naive Beijing wall-clock time.

    Accepts the 14 digits ``YYYYMMDDhhmmss`` (Beijing, as on the card) and ISO 8601
    with an offset (converted to UTC+8); a naive ISO text is taken as Beijing.
    """
    if len(text) == 14 and text.isdigit():
        return datetime.strptime(text, "%Y%m%d%H%M%S")
    value = datetime.fromisoformat(text)
    if value.tzinfo is not None:
        value = value.astimezone(BEIJING).replace(tzinfo=None)
    return value


def iso_beijing(text: str | None) -> str | None:
    """A stored time as ISO 8601 with ``+08:00`` (None stays None)."""
    if text is None:
        return None
    return beijing_wall(text).replace(tzinfo=BEIJING).isoformat()


def iso_instant(text: str | None) -> str | None:
    """An ISO 8601 instant (``created_at``, stored in UTC) shown in ``+08:00``."""
    if text is None:
        return None
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(BEIJING).isoformat(timespec="milliseconds")


def _timed(line: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(line)
    for name in _TIME_FIELDS:
        if name in out:
            out[name] = iso_beijing(out[name])
    if "created_at" in out:
        out["created_at"] = iso_instant(out["created_at"])
    return out


def csv_fields(fields: Sequence[str], extra_fare: Sequence[str] = ()) -> list[str]:
    """The CSV header: the clearing fields with ``fare`` replaced by ``fare_*`` columns."""
    fare = [*FARE_FIELDS, *sorted(set(extra_fare) - set(FARE_FIELDS))]
    out: list[str] = []
    for name in fields:
        out.extend(f"fare_{k}" for k in fare) if name == "fare" else out.append(name)
    return out


def _flat(value: Any) -> Any:
    """A fare detail as one CSV cell: scalars as they are, anything nested as text."""
    return value if value is None or isinstance(value, str | int | float) else str(value)


def _cell(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    return "" if value is None else value


def encode_csv(lines: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> bytes:
    """UTF-8 CSV, LF, header; flat cells only (module docstring)."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    extra = {k for line in lines for k in (line.get("fare") or {})}
    header = csv_fields(fields, sorted(extra))
    writer.writerow(header)
    for line in lines:
        row = _timed(line)
        fare = row.pop("fare", None) or {}
        row.update({f"fare_{k}": _flat(v) for k, v in fare.items()})
        writer.writerow([_cell(row.get(name)) for name in header])
    return text.getvalue().encode("utf-8")


def encode_jsonl(lines: Sequence[Mapping[str, Any]]) -> bytes:
    """One JSON object per line, the same time convention as the CSV."""
    return "".join(json.dumps(_timed(line), ensure_ascii=False) + "\n" for line in lines).encode()


def batch_upload_date(batch_id: str) -> date:
    """The Beijing date of a batch: its id starts with the UTC export time ``%Y%m%dT%H%M%SZ``."""
    created = datetime.strptime(batch_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return created.astimezone(BEIJING).date()


def _hex_int(value: Any) -> int | None:
    if value is None:
        return None
    return int(value, 16) if isinstance(value, str) else int(value)


def parquet_rows(lines: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Journal clearing lines as columns of the clearing input schema."""
    from sscard.clearing.schema import INPUT_NAMES

    cols: dict[str, list[Any]] = {name: [] for name in INPUT_NAMES}
    for n, line in enumerate(lines, start=1):
        grey = bool(line.get("grey") or 0)
        prev_time = line.get("prev_datetime")
        row = {
            "file_id": line["batch_id"],
            "line_no": n,
            "upload_date": batch_upload_date(line["batch_id"]),
            "acquirer_id": line.get("acquirer_id", ""),
            "operator_id": line.get("operator_id", ""),
            "terminal_name": line["terminal_id"],
            "line": line.get("line") or "",
            "vehicle": line.get("station") or "",
            "issuer_id": line["issuer_id"],
            "city_code": line["issuer_id"][4:8],
            "asn": line["asn"],
            "card_ctr": line["card_counter"],
            "bal_before": line["balance_before"],
            "bal_after": line.get("balance_after"),
            "amount": line["amount"],
            "tx_type": _hex_int(line["txn_type"]),
            "term_id": line["psam_terminal_id"],
            "term_seq": line["terminal_seq"],
            "tx_time": beijing_wall(line["txn_datetime"]).strftime("%Y%m%d%H%M%S"),
            "tac": line.get("tac"),
            "grey": grey,
            "key_ver": line.get("key_version"),
            "alg_id": line.get("algorithm_id"),
            "prev_ctr": line.get("prev_counter"),
            "prev_type": _hex_int(line.get("prev_type")),
            "prev_amount": line.get("prev_amount"),
            "prev_term": line.get("prev_terminal"),
            "prev_time": None
            if prev_time is None
            else beijing_wall(prev_time).strftime("%Y%m%d%H%M%S"),
            "proof_tac": line.get("proof_tac"),
            "journal_state": "uncertain" if grey else "completed",
            "tap_id": line.get("id"),
        }
        for name in INPUT_NAMES:
            cols[name].append(row[name])
    return cols


def encode_parquet(lines: Sequence[Mapping[str, Any]]) -> bytes:
    """The batch as one Parquet file in the clearing input schema (zstd, one row group)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sscard.clearing.schema import input_schema

    table = pa.table(parquet_rows(lines), schema=input_schema())
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def encode(fmt: str, lines: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> bytes:
    """The file content of a clearing batch in ``fmt`` (csv, jsonl, parquet)."""
    if fmt == "csv":
        return encode_csv(lines, fields)
    if fmt == "parquet":
        return encode_parquet(lines)
    return encode_jsonl(lines)
