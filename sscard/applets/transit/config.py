"""Validator configuration from a TOML file (stdlib ``tomllib``).

One file per validator (examples/validator-metro.toml, examples/validator-bus.toml)::

    [validator]
    terminal_id = "SH-M2-0205-G03"   # the journal's terminal name
    psam_terminal_id = "290000020503" # this validator's PSAM (EF 16); another PSAM is refused
    mode = "metro"                   # "flat" | "metro" | "bus-segment"
    gate = "entry"                   # metro: "entry" | "exit"; bus-segment: "auto"
    purchase = "composite"           # flat mode only: "composite" (1E type 06) | "simple"
    city_code = "2900"               # T-Union city code (GB/T 13497) of this network
    institution_id = "02022900FFFFFFFF"  # bytes 2-3 = city_code (default 0101 city FFFFFFFF)
    operator = "0002"                # 2-B operator code
    line = 2
    station = 5
    gate_id = "G0205-03"             # <= 8 ASCII characters (1A vehicle field)
    fare = 200                       # flat mode: required, fen (0 = free rides, explicitly)
    fare_table = "fares-metro.csv"   # metro / bus-segment; relative to this file
    max_trip_minutes = 240           # an older open entry is a missed tap-out
    repeat_tap_seconds = 60          # flat/bus-segment: same card again -> "already paid"

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

Why so strict: a typo must never become a free ride. An unknown key or section, a
value of the wrong type, a flat validator without a fare, a city code outside the
T-Union table (§P5.8): each is one bilingual error naming the file,
the key and its TOML line, before anything is opened or written (exit status 2).
:class:`ValidatorConfig` checks its own field types, so a vendor building it in code
gets the same clear error at construction instead of refused taps later.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sscard.applets.transit.errors import TransitConfigError
from sscard.applets.transit.fares import CATEGORY_NAMES, FarePolicy, FareTable, Station
from sscard.applets.transit.textfile import read_config_file
from sscard.cards.cities import city as tunion_city
from sscard.cards.ids import CardCategory, Industry, PurseAlgorithmId
from sscard.files import parse_toml
from sscard.sqlite import state_dir

Mode = Literal["flat", "metro", "bus-segment"]
Gate = Literal["entry", "exit", "auto"]
PurchaseKind = Literal["composite", "simple"]

_ALGORITHMS = {"3des": PurseAlgorithmId.TDES, "sm4": PurseAlgorithmId.SM4}

#: Every key of every section (``discounts`` takes category names, checked apart).
_KEYS: dict[str, frozenset[str]] = {
    "validator": frozenset({
        "terminal_id", "psam_terminal_id", "mode", "gate", "purchase", "city_code",
        "institution_id", "operator", "industry", "line", "station", "gate_id", "fare",
        "fare_table", "max_trip_minutes", "repeat_tap_seconds",
    }),
    "checks": frozenset({"algorithms", "categories", "blacklist", "trustlist"}),
    "discounts": frozenset(CATEGORY_NAMES),
    "transfer": frozenset({"window_minutes", "discount"}),
    "journal": frozenset({"path"}),
}  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class ValidatorConfig:
    """Everything a :class:`~sscard.applets.transit.validator.Validator` needs to know.

    ``fare`` is required in flat mode (``0`` only when meant); ``institution_id``
    defaults to ``01 01 <city_code> FF FF FF FF`` and must carry ``city_code`` in
    bytes 2-3, where T-Union Master reads a trip's city (§P5.8).
    """

    terminal_id: str
    city_code: str
    psam_terminal_id: bytes | None = None
    mode: Mode = "flat"
    gate: Gate = "auto"
    purchase: PurchaseKind = "composite"
    institution_id: bytes = b""
    operator: bytes = bytes(2)
    line: int = 0
    station: int = 0
    gate_id: str = ""
    industry: int = Industry.BUS
    fare: int | None = None
    fare_table: FareTable | None = None
    max_trip_minutes: int = 240
    repeat_tap_seconds: int = 60
    algorithms: frozenset[int] = frozenset(_ALGORITHMS.values())
    categories: frozenset[int] = frozenset(CardCategory)
    blacklist_path: Path | None = None
    trustlist_path: Path | None = None
    policy: FarePolicy = field(default_factory=FarePolicy)
    #: Where the journal lives. ``None``: ``validator-<PSAM terminal no.>.db`` in the
    #: state directory (``$SSCARD_STATE_DIR``, default ~/.local/state/sscard), never
    #: the current directory; a path given here is used as given.
    journal_path: Path = None  # type: ignore[assignment]  # set in __post_init__

    def __post_init__(self) -> None:
        if self.journal_path is None:
            ident = (
                self.psam_terminal_id.hex().upper()
                if isinstance(self.psam_terminal_id, bytes)
                else "".join(c if c.isalnum() else "_" for c in str(self.terminal_id))
            )
            name = f"validator-{ident}.db"
            object.__setattr__(self, "journal_path", state_dir() / name)
        self._check_types()
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
        if self.mode == "flat" and self.fare is None:
            raise _bad(
                "validator.fare",
                "a flat validator needs a fare (fen; write 0 for free rides)",
                "单一票价模式须设置票价（分；免费请写0）",
            )
        if len(self.city_code) != 4 or tunion_city(self.city_code) is None:
            raise _bad(
                "validator.city_code",
                f"{self.city_code!r} is not a T-Union city code (GB/T 13497, e.g. 2900 Shanghai)",
                f"{self.city_code!r}不是交通联合城市代码（GB/T 13497，如上海2900）",
            )
        object.__setattr__(self, "city_code", self.city_code.upper())
        if not self.institution_id:
            object.__setattr__(
                self, "institution_id", bytes.fromhex(f"0101{self.city_code}FFFFFFFF")
            )
        if len(self.institution_id) != 8:
            raise _bad("validator.institution_id", "must be 8 bytes", "应为8字节")
        if self.institution_id[2:4].hex().upper() != self.city_code:
            raise _bad(
                "validator.institution_id",
                f"bytes 2-3 must be the city code {self.city_code} (readers take the trip's"
                " city from there)",
                f"第3-4字节应为城市代码{self.city_code}",
            )
        if len(self.operator) != 2:
            raise _bad("validator.operator", "must be 2 bytes", "应为2字节")
        if self.psam_terminal_id is not None and len(self.psam_terminal_id) != 6:
            raise _bad("validator.psam_terminal_id", "must be 6 bytes", "应为6字节")
        if len(self.gate_id) > 8 or not self.gate_id.isascii():
            raise _bad("validator.gate_id", "at most 8 ASCII characters", "最多8个ASCII字符")
        Station(self.line, self.station)  # range check
        if self.fare is not None and not 0 <= self.fare <= 0xFFFFFFFF:
            raise _bad("validator.fare", "out of range", "超出范围")
        if self.industry not in set(Industry):
            raise _bad("validator.industry", "unknown industry code", "未知的行业代码")
        if self.max_trip_minutes <= 0:
            raise _bad("validator.max_trip_minutes", "must be positive", "应为正数")
        if self.repeat_tap_seconds < 0:
            raise _bad(
                "validator.repeat_tap_seconds", "must be 0 (off) or more", "应为0（关闭）或正数"
            )
        if not self.algorithms <= set(PurseAlgorithmId):
            raise _bad("checks.algorithms", "algorithm IDs 00 or 04", "算法标识应为00或04")
        if any(not 0 <= c <= 255 for c in self.categories):
            raise _bad("checks.categories", "category numbers 0-255", "类别编号应为0-255")

    def _check_types(self) -> None:
        """Each field's type, before any value check (a str for bytes fails here)."""
        opt_path = (Path, type(None))
        for name, types, what in (
            ("terminal_id", str, "a string"),
            ("city_code", str, "a string of 4 digits"),
            ("psam_terminal_id", (bytes, type(None)), "6 bytes"),
            ("mode", str, "a string"),
            ("gate", str, "a string"),
            ("purchase", str, "a string"),
            ("institution_id", bytes, "8 bytes"),
            ("operator", bytes, "2 bytes"),
            ("line", int, "an integer"),
            ("station", int, "an integer"),
            ("gate_id", str, "a string"),
            ("industry", int, "an Industry code, e.g. Industry.BUS"),
            ("fare", (int, type(None)), "an integer number of fen"),
            ("fare_table", (FareTable, type(None)), "a FareTable"),
            ("max_trip_minutes", int, "an integer"),
            ("repeat_tap_seconds", int, "an integer"),
            ("algorithms", frozenset, "a frozenset of algorithm IDs"),
            ("categories", frozenset, "a frozenset of category numbers"),
            ("blacklist_path", opt_path, "a Path"),
            ("trustlist_path", opt_path, "a Path"),
            ("policy", FarePolicy, "a FarePolicy"),
            ("journal_path", Path, "a Path"),
        ):
            value = getattr(self, name)
            if not isinstance(value, types) or isinstance(value, bool):
                raise _bad(
                    f"{_section_of(name)}.{name}",
                    f"expected {what}, got {type(value).__name__}",
                    f"类型应为{what}，实为{type(value).__name__}",
                )
        for name in ("algorithms", "categories"):
            values = getattr(self, name)
            if any(not isinstance(v, int) or isinstance(v, bool) for v in values):
                raise _bad(f"checks.{name}", "expected integers", "应为整数")

    @property
    def here(self) -> Station:
        return Station(self.line, self.station)

    @property
    def entry_exit(self) -> bool:
        return self.mode in ("metro", "bus-segment")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ValidatorConfig:
        """Read and check a validator TOML; errors name the file, the key and its line."""
        p = Path(path)
        text = read_config_file(p, "validator configuration", "验票机配置文件")
        try:
            data = parse_toml(text)  # bounded nesting (sscard.files)
        except tomllib.TOMLDecodeError as exc:
            raise TransitConfigError(
                f"{p.name} is not valid TOML ({exc})", f"{p.name}不是有效的TOML"
            ) from None
        try:
            return cls.from_dict(data, base=p.parent)
        except TransitConfigError as exc:
            if exc.where is None:
                raise
            # A missing key has no line of its own: point at its section.
            line = _line_of(text, exc.where) or _line_of(text, exc.where.partition(".")[0])
            at_en = f"{p.name} line {line}" if line else p.name
            at_zh = f"{p.name}第{line}行" if line else p.name
            raise TransitConfigError(
                f"{at_en}: {exc.message_en}", f"{at_zh}：{exc.message_zh}"
            ) from None

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: Path = Path()) -> ValidatorConfig:
        """Build from parsed TOML; relative paths are taken from ``base``."""
        for section, value in data.items():
            if section not in _KEYS:
                raise _unknown(section, _KEYS)
            if not isinstance(value, dict):
                raise _bad(section, "expected a table", "应为表")
            if section != "discounts":
                for key in value:
                    if key not in _KEYS[section]:
                        raise _unknown(f"{section}.{key}", {k: 0 for k in _KEYS[section]})
        v = _table(data, "validator")
        checks = _table(data, "checks", required=False)
        transfer = _table(data, "transfer", required=False)
        discounts = _table(data, "discounts", required=False)
        journal = _table(data, "journal", required=False)

        def path(value: Any, where: str) -> Path:
            """A file the validator reads: relative to the configuration's folder."""
            if not isinstance(value, str) or not value:
                raise _bad(where, "expected a file path", "应为文件路径")
            q = Path(value)
            return q if q.is_absolute() else base / q

        def output_path(value: Any, where: str) -> Path:
            """A file the validator writes: relative to the state directory, never beside
            the configuration (it may sit in a read-only or installed folder)."""
            if not isinstance(value, str) or not value:
                raise _bad(where, "expected a file path", "应为文件路径")
            q = Path(value).expanduser()
            return q if q.is_absolute() else state_dir() / q

        mode = _get(v, "validator.mode", str, "flat")
        table_path = v.get("fare_table")
        table = None
        if table_path is not None:
            where = path(table_path, "validator.fare_table")
            text = read_config_file(where, "fare table", "票价表")
            try:
                table = FareTable.parse(text, str(where))
            except TransitConfigError as exc:
                raise _bad(
                    "validator.fare_table", f"{where.name}: {exc.message_en}", exc.message_zh
                ) from None
        industry_name = _get(v, "validator.industry", str, "metro" if mode == "metro" else "bus")
        try:
            industry = Industry[industry_name.upper().replace("-", "_")]
        except KeyError:
            raise _bad("validator.industry", "unknown industry", "未知的行业") from None
        algos = _get(checks, "checks.algorithms", list, list(_ALGORITHMS))
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
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100:
                raise _bad(f"discounts.{name}", "percent 0-100", "百分比应为0-100")
            percent[int(CATEGORY_NAMES[name])] = value
        cats = _get(checks, "checks.categories", list, [int(c) for c in CardCategory])
        if any(not isinstance(c, int) or isinstance(c, bool) for c in cats):
            raise _bad("checks.categories", "category numbers 0-255", "类别编号应为0-255")
        return cls(
            terminal_id=_get(v, "validator.terminal_id", str),
            psam_terminal_id=_hex(v, "validator.psam_terminal_id", 6),
            mode=mode,  # checked in __post_init__
            gate=_get(v, "validator.gate", str, "auto"),
            purchase=_get(v, "validator.purchase", str, "composite"),
            city_code=_get(v, "validator.city_code", str),
            institution_id=_hex(v, "validator.institution_id", 8, b""),
            operator=_hex(v, "validator.operator", 2, bytes(2)),
            line=_get(v, "validator.line", int, 0),
            station=_get(v, "validator.station", int, 0),
            gate_id=_get(v, "validator.gate_id", str, ""),
            industry=int(industry),
            fare=_get(v, "validator.fare", int, None),
            fare_table=table,
            max_trip_minutes=_get(v, "validator.max_trip_minutes", int, 240),
            repeat_tap_seconds=_get(v, "validator.repeat_tap_seconds", int, 60),
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
                transfer_window_minutes=_get(transfer, "transfer.window_minutes", int, 0),
                transfer_discount=_get(transfer, "transfer.discount", int, 0),
            ),
            **(
                {"journal_path": output_path(journal["path"], "journal.path")}
                if "path" in journal
                else {}
            ),
        )


def _section_of(name: str) -> str:
    if name in ("algorithms", "categories"):
        return "checks"
    if name in ("blacklist_path", "trustlist_path"):
        return "checks"
    return {"policy": "transfer", "journal_path": "journal"}.get(name, "validator")


def _bad(where: str, what_en: str, what_zh: str) -> TransitConfigError:
    """An error about the key ``where`` (``section.key``); :meth:`ValidatorConfig.load`
    adds the file name and the key's TOML line."""
    exc = TransitConfigError(f"{where}: {what_en}", f"配置项{where}错误：{what_zh}")
    exc.where = where
    return exc


def _unknown(where: str, known: dict[str, Any]) -> TransitConfigError:
    name = where.rpartition(".")[2]
    close = difflib.get_close_matches(name, list(known), n=1)
    hint_en = f" (did you mean {close[0]!r}?)" if close else ""
    hint_zh = f"（是否应为{close[0]}？）" if close else ""
    what = "section" if "." not in where else "key"
    exc = TransitConfigError(
        f"unknown {what} {where!r}{hint_en}",
        f"未知的配置{'节' if what == 'section' else '项'}“{where}”{hint_zh}",
    )
    exc.where = where
    return exc


def _line_of(text: str, where: str) -> int | None:
    """The 1-based TOML line of ``section.key`` (or of ``[section]``); None if not found."""
    section, _, key = where.partition(".")
    current = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        header = re.match(r"^\[\s*([^\]\s]+)\s*\]", line)
        if header:
            current = header[1].strip("\"'")
            if not key and current == section:
                return number
            continue
        assignment = re.match(r"""^(["']?)([A-Za-z0-9_-]+)\1\s*=""", line)
        if key and current == section and assignment and assignment[2] == key:
            return number
    return None


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


def _get(section: dict[str, Any], where: str, tp: type, default: Any = _MISSING) -> Any:
    key = where.rpartition(".")[2]
    value = section.get(key, default)
    if value is _MISSING:
        raise _bad(where, "required", "必填")
    if value is default and default is not _MISSING:
        return value
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise _bad(
            where, f"expected {tp.__name__}, got {type(value).__name__}", f"类型应为{tp.__name__}"
        )
    return value


def _hex(section: dict[str, Any], where: str, size: int, default: Any = _MISSING) -> Any:
    """A ``size``-byte value written as hex text."""
    text = _get(section, where, str, default)
    if text is default and default is not _MISSING:
        return default
    try:
        value = bytes.fromhex(text)
    except ValueError:
        raise _bad(where, f"{size} bytes as hex", f"应为{size}字节十六进制") from None
    if len(value) != size:
        raise _bad(where, f"{size} bytes as hex", f"应为{size}字节十六进制")
    return value
