"""Fee-item files (CSV or JSON) for the 2204 upload, with positioned errors.

A desk prepares the visit's fee lines in a spreadsheet or exports them from
HIS. Column names are the 2204 ``feedetail`` field names (docs/reference.md part M
§M1.2). Required: ``feedetl_sn``, ``med_list_codg``, ``medins_list_codg``,
``cnt``, ``pric``; ``det_item_fee_sumamt`` is computed as cnt × pric when
blank, else checked against it. Optional: ``medins_list_name``,
``fee_ocur_time`` (``yyyy-MM-dd HH:mm:ss``), ``chrg_bchno``, ``rxno``,
``rx_circ_flag``, ``bilg_dept_codg``, ``bilg_dept_name``, ``bilg_dr_codg``,
``bilg_dr_name``, ``hosp_appr_flag``. Unknown columns are errors (typos would
otherwise be dropped silently).

JSON: a list of objects with the same keys. Errors name the line (and the
column for CSV) so the file can be fixed without guessing.

Encoding: UTF-8 with or without a BOM, else GB18030 (a superset of GBK), which
is what Excel on Chinese Windows writes for "CSV (逗号分隔)".
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sscard.files import read_bytes
from sscard.services.insurance.errors import InvalidAmount, InvalidRequest
from sscard.services.insurance.models import FeeItem
from sscard.services.insurance.money import CENT

REQUIRED = ("feedetl_sn", "med_list_codg", "medins_list_codg", "cnt", "pric")
OPTIONAL = (
    "det_item_fee_sumamt",
    "medins_list_name",
    "fee_ocur_time",
    "chrg_bchno",
    "rxno",
    "rx_circ_flag",
    "bilg_dept_codg",
    "bilg_dept_name",
    "bilg_dr_codg",
    "bilg_dr_name",
    "hosp_appr_flag",
)


class FeeFileError(InvalidRequest):
    """A fee file is malformed; ``line`` / ``column`` are 1-based (0 = unknown)."""

    def __init__(self, name: str, line: int, column: int, field: str, en: str, zh: str) -> None:
        self.line, self.column, self.field = line, column, field
        where_en = f"{name} line {line}" + (f", column {column}" if column else "")
        where_zh = f"{name} 第{line}行" + (f"第{column}列" if column else "")
        label = f" ({field})" if field else ""
        label_zh = f"（{field}）" if field else ""
        super().__init__(f"{where_en}{label}: {en}", f"{where_zh}{label_zh}：{zh}")


def _item(values: dict[str, str], where: Any, seen: set[str]) -> FeeItem:
    """Build one item; ``where(field, en, zh)`` makes a positioned error."""
    sn = values.get("feedetl_sn", "").strip()
    if sn in seen:
        raise where("feedetl_sn", f"feedetl_sn {sn} repeated", f"明细流水号 {sn} 重复")
    seen.add(sn)
    missing = [name for name in REQUIRED if not values.get(name, "").strip()]
    if missing:
        raise where(missing[0], "required value missing", "缺少必填值")
    stamp = values.get("fee_ocur_time", "").strip()
    if stamp:
        try:
            datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S")
        except ValueError:
            raise where(
                "fee_ocur_time", "expected yyyy-MM-dd HH:mm:ss", "应为 yyyy-MM-dd HH:mm:ss"
            ) from None
    total = values.get("det_item_fee_sumamt", "").strip()
    if not total:
        try:
            product = Decimal(values["cnt"].strip()) * Decimal(values["pric"].strip())
            total = str(product.quantize(CENT, rounding=ROUND_HALF_UP))
        except InvalidOperation:
            total = "0"  # the FeeItem check names the bad field
    kwargs: dict[str, Any] = {k: v.strip() for k, v in values.items()}
    kwargs["det_item_fee_sumamt"] = total
    try:
        return FeeItem(**kwargs)
    except InvalidAmount as exc:
        raise where(
            exc.field, exc.message_en.split(": ", 1)[-1], exc.message_zh.split("：", 1)[-1]
        ) from None
    except InvalidRequest as exc:
        raise where("", exc.message_en, exc.message_zh) from None


def _check_columns(name: str, line: int, columns: list[str]) -> None:
    known = set(REQUIRED) | set(OPTIONAL)
    for index, column in enumerate(columns, start=1):
        if column not in known:
            raise FeeFileError(name, line, index, column, "unknown column", "未知列")
    for required in REQUIRED:
        if required not in columns:
            raise FeeFileError(name, line, 0, required, "required column missing", "缺少必需列")


def _from_csv(name: str, text: str) -> list[FeeItem]:
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise FeeFileError(name, 1, 0, "", "empty file", "文件为空") from None
    _check_columns(name, 1, header)
    items: list[FeeItem] = []
    seen: set[str] = set()
    try:
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                raise FeeFileError(
                    name, line, min(len(cells), len(header)) + 1, "",
                    f"{len(cells)} cells, header has {len(header)}",
                    f"有{len(cells)}个单元格，表头为{len(header)}个",
                )  # fmt: skip

            def where(field: str, en: str, zh: str, line: int = line) -> FeeFileError:
                col = header.index(field) + 1 if field in header else 0
                return FeeFileError(name, line, col, field, en, zh)

            items.append(_item(dict(zip(header, cells, strict=True)), where, seen))
    except csv.Error as exc:
        raise FeeFileError(
            name, reader.line_num, 0, "", f"CSV syntax: {exc}", "CSV 格式错误"
        ) from None
    return items


def _from_json(name: str, text: str) -> list[FeeItem]:
    """Top-level array, decoded item by item to know each item's line."""
    decoder = json.JSONDecoder(parse_float=Decimal)
    pos = len(text) - len(text.lstrip())
    try:
        if text[pos : pos + 1] != "[":
            raise json.JSONDecodeError("expected a list of fee items '['", text, pos)
        pos += 1
        raw: list[tuple[int, Any]] = []
        while True:
            pos += len(text[pos:]) - len(text[pos:].lstrip())
            if text[pos : pos + 1] == "]":
                break
            if raw:
                if text[pos : pos + 1] != ",":
                    raise json.JSONDecodeError("expected ',' or ']'", text, pos)
                pos += 1
                pos += len(text[pos:]) - len(text[pos:].lstrip())
            value, end = decoder.raw_decode(text, pos)
            raw.append((text.count("\n", 0, pos) + 1, value))
            pos = end
    except json.JSONDecodeError as exc:
        raise FeeFileError(
            name, exc.lineno, exc.colno, "", f"JSON syntax: {exc.msg}", "JSON 格式错误"
        ) from None
    except (RecursionError, ValueError):  # hostile input: 100k-deep nesting, 5000-digit int
        raise FeeFileError(
            name, 0, 0, "", "JSON nested too deep or a number too long", "JSON 嵌套过深或数字过长"
        ) from None
    items = []
    seen: set[str] = set()
    for line, value in raw:
        if not isinstance(value, dict):
            raise FeeFileError(name, line, 0, "", "each item must be an object", "每项须为对象")
        _check_columns(name, line, [str(k) for k in value])
        values = {str(k): "" if v is None else str(v) for k, v in value.items()}

        def where(field: str, en: str, zh: str, line: int = line) -> FeeFileError:
            return FeeFileError(name, line, 0, field, en, zh)

        items.append(_item(values, where, seen))
    return items


def _decode(name: str, raw: bytes) -> str:
    """UTF-8 (BOM or not), else GB18030/GBK; the line of the first bad byte otherwise."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as utf8:
        try:
            return raw.decode("gb18030")
        except UnicodeDecodeError:
            line = raw[: utf8.start].count(b"\n") + 1
            raise FeeFileError(
                name, line, 0, "", "not UTF-8 or GBK text", "不是 UTF-8 或 GBK 文本"
            ) from None


def load_fee_items(path: str | Path) -> list[FeeItem]:
    """Read a visit's fee items from ``.csv`` or ``.json``; raise :class:`FeeFileError`."""
    path = Path(path)
    try:
        text = _decode(path.name, read_bytes(path))  # bounded reader (sscard.files)
    except FileNotFoundError:
        raise FeeFileError(path.name, 0, 0, "", "file not found", "文件不存在") from None
    suffix = path.suffix.lower()
    if suffix == ".csv":
        items = _from_csv(path.name, text)
    elif suffix == ".json":
        items = _from_json(path.name, text)
    else:
        raise FeeFileError(
            path.name, 0, 0, "", "use a .csv or .json file", "请使用 .csv 或 .json 文件"
        )
    if not items:
        raise FeeFileError(path.name, 1, 0, "", "no fee items", "无费用明细")
    return items
