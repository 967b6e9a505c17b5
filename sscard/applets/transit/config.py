"""Validator configuration from a TOML file (stdlib ``tomllib``).

One file per validator (examples/validator-metro.toml, examples/validator-bus.toml)::

    [validator]
    terminal_id = "SH-M2-0205-G03"   # the journal's terminal name (not the PSAM number)
    mode = "metro"                   # "flat" | "metro" | "bus-segment"
    gate = "entry"                   # metro: "entry" | "exit"; bus-segment: "auto"
    purchase = "composite"           # flat mode only: "composite" (1E type 06) | "simple"
    city_code = "2000"               # T-Union city code of this network (EF 0015 bytes 2-3)
    institution_id = "02021000FFFFFFFF"
    operator = "0002"                # 2-B operator code
    line = 2
    station = 5
    gate_id = "G0205-03"             # <= 8 ASCII characters (1A vehicle field)
    fare = 200                       # flat mode, fen
    fare_table = "fares-metro.csv"   # metro / bus-segment; relative to this file
    max_trip_minutes = 240           # an older open entry is a missed tap-out

    [checks]
    algorithms = ["3des", "sm4"]     # card algorithm IDs 00 / 04 (profile); others refused
    categories = [1, 2, 3, 4, 5]     # EF 0017 byte 10 accepted
    blacklist = "blacklist.txt"      # optional; sscard-blacklist/1
    trustlist = "trustlist.txt"      # optional; default: the four provinces + T-Union

    [discounts]                      # percent off, by EF 0017 category name
    student = 50
    elderly = 100

    [transfer]
    window_minutes = 90
    discount = 100                   # fen

    [journal]
    path = "validator-metro.db"      # relative to this file
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sscard.applets.transit.errors import TransitConfigError
from sscard.applets.transit.fares import CATEGORY_NAMES, FarePolicy, FareTable, Station
from sscard.cards.ids import CardCategory, Industry, PurseAlgorithmId
from sscard.files import parse_toml, read_text

Mode = Literal["flat", "metro", "bus-segment"]
Gate = Literal["entry", "exit", "auto"]
PurchaseKind = Literal["composite", "simple"]

_ALGORITHMS = {"3des": PurseAlgorithmId.TDES, "sm4": PurseAlgorithmId.SM4}


@dataclass(frozen=True, kw_only=True)
class ValidatorConfig:
    """Everything a :class:`~sscard.applets.transit.validator.Validator` needs to know."""

    terminal_id: str
    mode: Mode = "flat"
    gate: Gate = "auto"
    purchase: PurchaseKind = "composite"
    city_code: str = "0000"
    institution_id: bytes = bytes(8)
    operator: bytes = bytes(2)
    line: int = 0
    station: int = 0
    gate_id: str = ""
    industry: int = Industry.BUS
    fare: int = 0
    fare_table: FareTable | None = None
    max_trip_minutes: int = 240
    algorithms: frozenset[int] = frozenset(_ALGORITHMS.values())
    categories: frozenset[int] = frozenset(CardCategory)
    blacklist_path: Path | None = None
    trustlist_path: Path | None = None
    policy: FarePolicy = field(default_factory=FarePolicy)
    journal_path: Path = Path("validator.db")

    def __post_init__(self) -> None:
        if self.mode not in ("flat", "metro", "bus-segment"):
            raise _bad(
                "validator.mode",
                "must be flat, metro or bus-segment",
                "应为 flat、metro 或 bus-segment",
            )
        if self.gate not in ("entry", "exit", "auto"):
            raise _bad("validator.gate", "must be entry, exit or auto", "应为 entry、exit 或 auto")
        if self.purchase not in ("composite", "simple"):
            raise _bad("validator.purchase", "composite or simple", "应为 composite 或 simple")
        if self.mode != "flat" and self.purchase != "composite":
            raise _bad(
                "validator.purchase",
                "entry/exit modes need composite purchases",
                "进出站模式需要复合消费",
            )
        if self.mode == "metro" and self.gate == "auto":
            raise _bad(
                "validator.gate", "a metro gate is entry or exit", "地铁闸机应为 entry 或 exit"
            )
        if self.mode != "flat" and self.fare_table is None:
            raise _bad(
                "validator.fare_table",
                "metro and bus-segment modes need a fare table",
                "地铁和分段计费模式需要票价表",
            )
        if len(self.city_code) != 4 or not _is_hex(self.city_code):
            raise _bad("validator.city_code", "must be 4 hex digits", "应为4位十六进制数字")
        if len(self.gate_id) > 8 or not self.gate_id.isascii():
            raise _bad("validator.gate_id", "at most 8 ASCII characters", "最多8个ASCII字符")
        Station(self.line, self.station)  # range check
        if not 0 <= self.fare <= 0xFFFFFFFF:
            raise _bad("validator.fare", "out of range", "超出范围")

    @property
    def here(self) -> Station:
        return Station(self.line, self.station)

    @property
    def entry_exit(self) -> bool:
        return self.mode in ("metro", "bus-segment")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ValidatorConfig:
        p = Path(path)
        try:
            data = parse_toml(read_text(p))  # bounded reader (sscard.files)
        except OSError as exc:
            raise TransitConfigError(
                f"cannot read {p.name}: {exc.strerror}", f"无法读取配置文件{p.name}"
            ) from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise TransitConfigError(
                f"{p.name} is not valid TOML", f"{p.name}不是有效的TOML"
            ) from exc
        return cls.from_dict(data, base=p.parent)

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: Path = Path()) -> ValidatorConfig:
        """Build from parsed TOML; relative paths are taken from ``base``."""
        v = _table(data, "validator")
        checks = _table(data, "checks", required=False)
        transfer = _table(data, "transfer", required=False)
        discounts = _table(data, "discounts", required=False)
        journal = _table(data, "journal", required=False)
        known = {"validator", "checks", "transfer", "discounts", "journal"}
        if set(data) - known:
            raise _bad(sorted(set(data) - known)[0], "unknown section", "未知的配置节")

        def path(value: Any, where: str) -> Path:
            if not isinstance(value, str) or not value:
                raise _bad(where, "expected a file path", "应为文件路径")
            q = Path(value)
            return q if q.is_absolute() else base / q

        mode = _get(v, "mode", str, "flat")
        table_path = v.get("fare_table")
        table = FareTable.load(path(table_path, "validator.fare_table")) if table_path else None
        industry_name = _get(v, "industry", str, "metro" if mode == "metro" else "bus")
        try:
            industry = Industry[industry_name.upper().replace("-", "_")]
        except KeyError:
            raise _bad("validator.industry", "unknown industry", "未知的行业") from None
        algos = _get(checks, "algorithms", list, list(_ALGORITHMS))
        if any(a not in _ALGORITHMS for a in algos):
            raise _bad("checks.algorithms", "use 3des and/or sm4", "应为 3des 和/或 sm4")
        percent: dict[int, int] = {}
        for name, value in discounts.items():
            if name not in CATEGORY_NAMES:
                raise _bad(
                    f"discounts.{name}",
                    f"category is one of {', '.join(CATEGORY_NAMES)}",
                    f"类别应为 {', '.join(CATEGORY_NAMES)}",
                )
            if not isinstance(value, int) or not 0 <= value <= 100:
                raise _bad(f"discounts.{name}", "percent 0-100", "百分比应为0-100")
            percent[int(CATEGORY_NAMES[name])] = value
        cats = _get(checks, "categories", list, [int(c) for c in CardCategory])
        if any(not isinstance(c, int) or not 0 <= c <= 255 for c in cats):
            raise _bad("checks.categories", "category numbers 0-255", "类别编号应为0-255")
        try:
            institution = bytes.fromhex(_get(v, "institution_id", str, "00" * 8))
            operator = bytes.fromhex(_get(v, "operator", str, "0000"))
        except ValueError:
            raise _bad("validator.institution_id/operator", "not hex", "不是十六进制") from None
        if len(institution) != 8 or len(operator) != 2:
            raise _bad("validator.institution_id/operator", "8 and 2 bytes", "应为8字节和2字节")
        return cls(
            terminal_id=_get(v, "terminal_id", str),
            mode=mode,  # checked in __post_init__
            gate=_get(v, "gate", str, "auto"),
            purchase=_get(v, "purchase", str, "composite"),
            city_code=_get(v, "city_code", str, "0000").upper(),
            institution_id=institution,
            operator=operator,
            line=_get(v, "line", int, 0),
            station=_get(v, "station", int, 0),
            gate_id=_get(v, "gate_id", str, ""),
            industry=int(industry),
            fare=_get(v, "fare", int, 0),
            fare_table=table,
            max_trip_minutes=_get(v, "max_trip_minutes", int, 240),
            algorithms=frozenset(int(_ALGORITHMS[a]) for a in algos),
            categories=frozenset(cats),
            blacklist_path=path(checks["blacklist"], "checks.blacklist")
            if "blacklist" in checks
            else None,
            trustlist_path=path(checks["trustlist"], "checks.trustlist")
            if "trustlist" in checks
            else None,
            policy=FarePolicy(
                discount_percent=percent,
                transfer_window_minutes=_get(transfer, "window_minutes", int, 0),
                transfer_discount=_get(transfer, "discount", int, 0),
            ),
            journal_path=path(journal.get("path", "validator.db"), "journal.path"),
        )


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True


def _bad(where: str, what_en: str, what_zh: str) -> TransitConfigError:
    return TransitConfigError(f"{where}: {what_en}", f"配置项{where}错误：{what_zh}")


def _table(data: dict[str, Any], name: str, *, required: bool = True) -> dict[str, Any]:
    value = data.get(name)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise _bad(
            name,
            "missing section" if value is None else "expected a table",
            "缺少配置节" if value is None else "应为表",
        )
    return value


_MISSING = object()


def _get(section: dict[str, Any], key: str, tp: type, default: Any = _MISSING) -> Any:
    value = section.get(key, default)
    if value is _MISSING:
        raise _bad(key, "required", "必填")
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise _bad(key, f"expected {tp.__name__}", f"类型应为{tp.__name__}")
    return value
