"""Fee-item files for 2204 (CSV / JSON) and their positioned errors."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from sscard.services.insurance import FeeFileError, load_fee_items

HEADER = "feedetl_sn,med_list_codg,medins_list_codg,medins_list_name,cnt,pric,det_item_fee_sumamt"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_with_computed_and_given_totals(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "visit.csv",
        f"{HEADER}\n1,XA01,H-1,阿莫西林,2,12.5,25.00\n\n2,B02,H-2,检查,1,80,\n",
    )
    items = load_fee_items(path)
    assert [i.feedetl_sn for i in items] == ["1", "2"]
    assert items[0].det_item_fee_sumamt == Decimal("25.00") and items[0].cnt == Decimal("2")
    assert items[1].det_item_fee_sumamt == Decimal("80.00")  # cnt × pric
    assert items[0].medins_list_name == "阿莫西林"


def test_json_items(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "visit.json",
        '[\n {"feedetl_sn": "1", "med_list_codg": "XA01", "medins_list_codg": "H-1",'
        ' "cnt": 3, "pric": 1.10, "fee_ocur_time": "2025-03-01 10:00:00"}\n]\n',
    )
    (item,) = load_fee_items(path)
    assert item.det_item_fee_sumamt == Decimal("3.30")
    assert item.fee_ocur_time == "2025-03-01 10:00:00"


@pytest.mark.parametrize(
    ("text", "line", "column", "field", "words"),
    [
        (f"{HEADER}\n1,XA01,H-1,x,2,abc,\n", 2, 6, "pric", "not a number"),
        (f"{HEADER}\n1,XA01,H-1,x,1,5,5.00\n2,XA01,H-1,x,-1,5,\n", 3, 5, "cnt", "positive"),
        (f"{HEADER}\n1,XA01,H-1,x,2,5,11.00\n", 2, 7, "det_item_fee_sumamt", "cnt × pric"),
        (f"{HEADER}\n1,XA01,H-1,x,2,5,10.001\n", 2, 7, "det_item_fee_sumamt", "2 decimal"),
        (f"{HEADER}\n1,,H-1,x,2,5,\n", 2, 2, "med_list_codg", "missing"),
        (f"{HEADER}\n1,XA01,H-1,x,1,5,\n1,XA02,H-2,y,1,5,\n", 3, 1, "feedetl_sn", "repeated"),
        (f"{HEADER}\n1,XA01,H-1,x,1\n", 2, 6, "", "5 cells"),
        (f"{HEADER},pirce\n", 1, 8, "pirce", "unknown column"),
        ("feedetl_sn,med_list_codg,cnt,pric\n", 1, 0, "medins_list_codg", "column missing"),
        (f"{HEADER}\n1,XA01,H-1,x,1,5,99999999\n", 2, 7, "det_item_fee_sumamt", "limit"),
    ],
)
def test_csv_errors_name_line_and_column(
    tmp_path: Path, text: str, line: int, column: int, field: str, words: str
) -> None:
    with pytest.raises(FeeFileError) as err:
        load_fee_items(write(tmp_path, "visit.csv", text))
    assert (err.value.line, err.value.column, err.value.field) == (line, column, field)
    assert words in err.value.message_en
    assert f"line {line}" in err.value.message_en and f"第{line}行" in err.value.message_zh


def test_csv_bad_time_format(tmp_path: Path) -> None:
    text = (
        "feedetl_sn,med_list_codg,medins_list_codg,cnt,pric,fee_ocur_time\n1,A,H,1,1,01/03/2025\n"
    )
    with pytest.raises(FeeFileError, match="yyyy-MM-dd") as err:
        load_fee_items(write(tmp_path, "v.csv", text))
    assert (err.value.line, err.value.column) == (2, 6)


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('[\n {"feedetl_sn": "1",\n  "cnt": }\n]', 3, "JSON syntax"),
        ('{"items": []}', 1, "expected a list"),
        ('[\n {"feedetl_sn": "1", "med_list_codg": "A", "medins_list_codg": "H", "cnt": 1,'
         ' "pric": 2},\n {"feedetl_sn": "2", "med_list_codg": "A", "medins_list_codg": "H",'
         ' "cnt": 1, "pric": "x"}\n]', 3, "not a number"),
        ('[\n 42\n]', 2, "object"),
        ("[]", 1, "no fee items"),
    ],
)  # fmt: skip
def test_json_errors_name_the_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    with pytest.raises(FeeFileError) as err:
        load_fee_items(write(tmp_path, "visit.json", text))
    assert err.value.line == line and words in err.value.message_en


def test_other_files(tmp_path: Path) -> None:
    with pytest.raises(FeeFileError, match="not found"):
        load_fee_items(tmp_path / "missing.csv")
    with pytest.raises(FeeFileError, match=r"\.csv or \.json"):
        load_fee_items(write(tmp_path, "visit.txt", "x"))
    bad = tmp_path / "latin.csv"
    bad.write_bytes(HEADER.encode() + b"\n1,A,H,caf\xe9,1,1,\n")
    with pytest.raises(FeeFileError, match="UTF-8") as err:
        load_fee_items(bad)
    assert err.value.line == 2
    with pytest.raises(FeeFileError, match="empty"):
        load_fee_items(write(tmp_path, "empty.csv", ""))
