"""The card image: what a simulated social security card holds, as a versioned JSON file.

A card image (``"schema": "sscard-card/1"``, never pickle: see shared/design/
lessons-from-anchors.md, "patterns to avoid" 3) carries the SSSE data (EF05/EF06
records, generation, algorithm flag, PIN and try counters, state, ATR historical
bytes), the T-Union purse (EF 0015/0016/0017, balance, counters, records 18/1E/1A/19),
opaque DF01 records and a ``counterfeit`` flag. It holds the *same* typed records
the terminal decodes (:mod:`sscard.cards`), so both sides share one model.

Keys are not in the card image: they live in a key-set file (:mod:`.keys`) and the
simulator derives each card's keys from the masters on demand.

:func:`new_card` generates a realistic card for one of the four delta provinces.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import tempfile
import types
import typing
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, cast

from sscard import clock
from sscard.cards.cities import city_of_region
from sscard.cards.ids import (
    INTEROP_NO,
    INTEROP_YES,
    SPEC_VERSION,
    AlgorithmFlag,
    CardCategory,
    PurseAlgorithmId,
    TxnType,
)
from sscard.cards.layout import Layout, LayoutError
from sscard.cards.purse import CompositeRecord, Ef0015, Ef0016, Ef0017, TripRecord, TxnRecord
from sscard.cards.regions import cities_of, province_by_key, region_of
from sscard.cards.ssn import SEX_FEMALE, SEX_MALE, make_ssn
from sscard.cards.ssse import AtrHistorical, CardIdCode, Ef05, Ef06
from sscard.errors import ConfigError
from sscard.files import parse_json, read_text

CARD_SCHEMA = "sscard-card/1"
CARD_STATES = ("ok", "expired", "blocked", "pin-locked")
#: ``new_card(OTHER_PROVINCE, region=...)``: a card issued outside the delta.
OTHER_PROVINCE = "other"
CardState = Literal["ok", "expired", "blocked", "pin-locked"]

#: Maximum purse balance, profile default 1000.00 CNY (docs/reference.md part P profile).
DEFAULT_MAX_BALANCE = 100_000
#: Simulator default PIN and tries (docs/reference.md part C profile "Default PIN").
DEFAULT_PIN = "123456"
DEFAULT_PIN_TRIES = 3
#: Cyclic file sizes of the simulated card.
TXN_RECORDS_MAX = 10


# =========================================================================== errors


class ProfileError(ConfigError):
    """A card image or key-set file that cannot be read or is inconsistent."""

    message_en = "bad card image or key file"
    message_zh = "卡映像或密钥文件错误"


class SchemaMismatch(ProfileError):
    """The file's ``schema`` is not the one this version of sscard reads."""

    message_en = "unsupported file schema"
    message_zh = "不支持的文件格式版本"

    def __init__(self, found: object, expected: str) -> None:
        if found is None:
            en, zh = "the file has no schema", "文件没有格式版本（schema）"
        else:
            shown = found if isinstance(found, str) and len(found) <= 40 else type(found).__name__
            en, zh = f"file schema is {shown!r}", f"文件格式版本为{shown!r}"
        super().__init__(f"{en}, expected {expected!r}", f"{zh}，应为{expected!r}")
        self.found = found
        self.expected = expected


# =========================================================================== JSON files


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` so that ``path`` holds either the old or the new content, never half.

    Temp file in the same directory, fsync, then ``os.replace`` (atomic on POSIX and
    Windows); the temp file is removed if anything fails.
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError, AttributeError):  # make the rename durable (POSIX)
        dir_fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def read_json_file(path: str | os.PathLike[str], schema: str) -> dict[str, Any]:
    """Load a JSON object and check its ``schema`` (typed errors, no traceback).

    Read through the bounded reader (regular file, size limit; sscard.files).
    """
    try:
        text = read_text(path)
    except OSError as exc:
        raise ProfileError(
            f"cannot read {Path(path).name}: {exc.strerror}", f"无法读取{Path(path).name}"
        ) from None
    except UnicodeDecodeError as exc:
        raise ProfileError(
            f"{Path(path).name} is not UTF-8 text (byte {exc.start})",
            f"{Path(path).name}不是UTF-8文本（第{exc.start}字节）",
        ) from None
    return parse_json_text(text, schema)


def parse_json_text(text: str, schema: str) -> dict[str, Any]:
    try:
        data = parse_json(text)  # bounded: nesting, integer length, no NaN (sscard.files)
    except json.JSONDecodeError as exc:
        why = f": {exc.msg}" if exc.pos == 0 and not exc.msg.startswith("Expecting") else ""
        raise ProfileError(
            f"not JSON (line {exc.lineno}){why}", f"不是JSON（第{exc.lineno}行）"
        ) from None
    if not isinstance(data, dict):
        raise ProfileError("top level is not a JSON object", "顶层不是JSON对象")
    if data.get("schema") != schema:
        raise SchemaMismatch(data.get("schema"), schema)
    return data


# --------------------------------------------------------------------------- generic mapping
# Dataclasses <-> JSON: bytes as upper-case hex, dates ISO 8601, CardIdCode as 32 hex,
# dict keys as strings. Driven by the type hints, so new fields need no extra code.

T = TypeVar("T")


def to_jsonable(value: Any) -> Any:
    if isinstance(value, CardIdCode):
        return value.hex
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init
        }
    if isinstance(value, bytes):
        return value.hex().upper()
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    return value


def _bad(where: str, what: str) -> ProfileError:
    return ProfileError(f"{where}: {what}", f"{where}：{what}")


def from_jsonable(tp: Any, value: Any, where: str = "$") -> Any:
    """Inverse of :func:`to_jsonable`, guided by the type ``tp``; ProfileError on mismatch."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return from_jsonable(arg, value, where)
            except ProfileError as exc:
                errors.append(exc)
        raise errors[0] if errors else _bad(where, "unexpected null")
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise _bad(where, "expected a list")
        return [from_jsonable(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        ktype, vtype = typing.get_args(tp)
        if not isinstance(value, dict):
            raise _bad(where, "expected an object")
        out = {}
        for k, v in value.items():
            try:
                key = int(k, 0) if ktype is int else k
            except ValueError:
                raise _bad(where, f"key {k!r} is not a number") from None
            out[key] = from_jsonable(vtype, v, f"{where}.{k}")
        return out
    if tp is CardIdCode:
        if not isinstance(value, str):
            raise _bad(where, "expected 32 hex digits")
        try:
            return CardIdCode.from_hex(value)
        except LayoutError:
            raise _bad(where, "not a card identification code") from None
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _load_dataclass(tp, value, where)
    if tp is bytes:
        if not isinstance(value, str):
            raise _bad(where, "expected hex")
        try:
            return bytes.fromhex(value)
        except ValueError:
            raise _bad(where, "not hex") from None
    if tp is datetime or tp is date:
        if not isinstance(value, str):
            raise _bad(where, "expected an ISO date")
        try:
            return tp.fromisoformat(value) if tp is datetime else date.fromisoformat(value)
        except ValueError:
            raise _bad(where, "not an ISO date") from None
    if tp is bool:
        if not isinstance(value, bool):
            raise _bad(where, "expected true/false")
        return value
    if tp is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _bad(where, "expected an integer")
        return value
    if tp is str or typing.get_origin(tp) is Literal:
        if not isinstance(value, str):
            raise _bad(where, "expected a string")
        if typing.get_origin(tp) is Literal and value not in typing.get_args(tp):
            raise _bad(where, f"must be one of {', '.join(typing.get_args(tp))}")
        return value
    raise _bad(where, f"unsupported type {tp!r}")  # a programming error, caught by tests


def _load_dataclass(cls: type[T], value: Any, where: str) -> T:
    if not isinstance(value, dict):
        raise _bad(where, "expected an object")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = set(value) - set(fields) - {"schema", "warning"}
    if unknown:
        raise _bad(where, f"unknown field {sorted(unknown)[0]!r}")
    kwargs = {}
    for name, f in fields.items():
        if name in value:
            kwargs[name] = from_jsonable(hints[name], value[name], f"{where}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise _bad(where, f"missing field {name!r}")
    try:
        return cls(**kwargs)
    except LayoutError as exc:
        raise _bad(where, exc.message_en) from None


# =========================================================================== the card image


@dataclass
class PinState:
    """The SSSE PIN: BCD digits, try counter (``63Cx``, then ``6983`` at 0)."""

    pin: str = field(default=DEFAULT_PIN, repr=False)
    tries_left: int = DEFAULT_PIN_TRIES
    max_tries: int = DEFAULT_PIN_TRIES
    #: Still the issuer's initial PIN (reader error −35: cannot transact with it).
    initial: bool = False

    @property
    def locked(self) -> bool:
        return self.tries_left <= 0


@dataclass
class SsseProfile:
    """The SSSE environment: EF05/EF06, security state and the ATR."""

    generation: int  # 2 or 3
    algorithm_flag: int  # AlgorithmFlag: 01 DES/3DES, 03 SM4
    ef05: Ef05
    ef06: Ef06
    atr_historical: AtrHistorical
    pin: PinState = field(default_factory=PinState)
    #: External-authentication tries (``63Cx``, ``6983`` at 0; docs/reference.md part C profile).
    ext_auth_tries_left: int = 3
    state: CardState = "ok"

    @property
    def atr(self) -> bytes:
        return self.atr_historical.atr


@dataclass
class PurseProof:
    """The last purchase's proof, kept so GET TRANSACTION PROVE (805A) answers after the
    card image is reloaded (§P5.7): counter N + 1, type, MAC2, TAC."""

    counter: int
    txn_type: int
    mac2: bytes = field(repr=False)
    tac: bytes = field(repr=False)


@dataclass
class PurseProfile:
    """The T-Union EP application (§P1, §P5)."""

    algorithm_id: int  # PurseAlgorithmId: 00 3DES, 04 SM4
    ef0015: Ef0015
    ef0016: Ef0016
    ef0017: Ef0017
    balance: int = 0  # fen
    online_counter: int = 0  # incremented by each load
    offline_counter: int = 0  # incremented by each purchase
    overdraft_limit: int = 0
    max_balance: int = DEFAULT_MAX_BALANCE
    key_version: int = 1
    key_index: int = 1
    blocked: bool = False
    #: EF 18, newest first (record 1 = most recent).
    txn_records: list[TxnRecord] = field(default_factory=list)
    #: EF 1E, newest first.
    trip_records: list[TripRecord] = field(default_factory=list)
    #: EF 1A by record ID (02 bus, 01 metro).
    composite_records: dict[int, CompositeRecord] = field(default_factory=dict)
    #: EF 19 by record ID: the same records on a local (non-interoperable) card
    #: (§P5.4). Empty by default, so older card images still load.
    local_composite_records: dict[int, CompositeRecord] = field(default_factory=dict)
    #: Overdraft in use (fen); the balance is then 0 (purse_applet: one signed value).
    overdraft_used: int = 0
    #: Use the published §P4.5 vector key instead of diversified keys (vector tests).
    vector_keys: bool = False
    #: What 805A answers for the last purchase; None before the first purchase.
    last_proof: PurseProof | None = None


@dataclass
class CardProfile:
    """One simulated card. ``df01`` maps an EF name (``"EF05"``) to record number -> value;
    the records are opaque TLVs with tag = record number (docs/reference.md part C profile)."""

    SCHEMA: ClassVar[str] = CARD_SCHEMA

    ssse: SsseProfile
    purse: PurseProfile | None = None
    df01: dict[str, dict[int, bytes]] = field(default_factory=dict)
    #: A card whose keys are not derived from the issuer's masters (internal auth fails).
    counterfeit: bool = False
    label: str = ""

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema": CARD_SCHEMA}
        out.update(to_jsonable(self))
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CardProfile:
        if data.get("schema") != CARD_SCHEMA:
            raise SchemaMismatch(data.get("schema"), CARD_SCHEMA)
        profile = _load_dataclass(cls, data, "card")
        profile.validate()
        return profile

    @classmethod
    def from_json(cls, text: str) -> CardProfile:
        return cls.from_dict(parse_json_text(text, CARD_SCHEMA))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CardProfile:
        return cls.from_dict(read_json_file(path, CARD_SCHEMA))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Atomic: a crash leaves the previous image intact."""
        self.validate()
        atomic_write_text(path, self.to_json())

    # ------------------------------------------------------------------ checks

    def validate(self) -> None:
        """Consistency checks a hand-edited image can fail (messages carry no personal data)."""
        s = self.ssse
        if s.state not in CARD_STATES:
            raise _bad("card.ssse.state", f"must be one of {', '.join(CARD_STATES)}")
        if s.generation not in (2, 3):
            raise _bad("card.ssse.generation", "must be 2 or 3")
        if s.algorithm_flag not in tuple(AlgorithmFlag):
            raise _bad("card.ssse.algorithm_flag", "must be 1, 2 or 3")
        pin = s.pin.pin
        if not (4 <= len(pin) <= 12 and pin.isascii() and pin.isdigit()):
            raise _bad("card.ssse.pin", "PIN must be 4-12 digits")
        if not 0 <= s.pin.tries_left <= s.pin.max_tries <= 15:
            raise _bad("card.ssse.pin", "tries_left must be 0..max_tries (max 15)")
        for item_file in (s.ef05, s.ef06):
            try:
                item_file.records()
            except LayoutError as exc:
                raise _bad("card.ssse", exc.message_en) from None
        _check_encodes("card.ssse", [s.atr_historical])
        p = self.purse
        if p is not None:
            if p.algorithm_id not in tuple(PurseAlgorithmId):
                raise _bad("card.purse.algorithm_id", "must be 0 (3DES) or 4 (SM4)")
            if not 0 <= p.balance <= p.max_balance:
                raise _bad("card.purse.balance", "must be 0..max_balance")
            if not 0 <= p.overdraft_used <= p.overdraft_limit or (p.overdraft_used and p.balance):
                raise _bad("card.purse.overdraft_used", "must be 0..overdraft_limit, balance 0")
            proof = p.last_proof
            if proof is not None and (
                not 0 <= proof.counter <= 0xFFFF
                or not 0 <= proof.txn_type <= 0xFF
                or len(proof.mac2) != 4
                or len(proof.tac) != 4
            ):
                raise _bad("card.purse.last_proof", "counter 2 B, type 1 B, MAC2 and TAC 4 B")
            for name in ("online_counter", "offline_counter"):
                if not 0 <= getattr(p, name) <= 0xFFFF:
                    raise _bad(f"card.purse.{name}", "must fit 2 bytes")
            _check_encodes(
                "card.purse",
                [
                    p.ef0015,
                    p.ef0016,
                    p.ef0017,
                    *p.txn_records,
                    *p.trip_records,
                    *p.composite_records.values(),
                    *p.local_composite_records.values(),
                ],
            )
            for name in ("composite_records", "local_composite_records"):
                records: dict[int, CompositeRecord] = getattr(p, name)
                if any(rec.record_id != rid for rid, rec in records.items()):
                    raise _bad(f"card.purse.{name}", "key differs from record_id")


def _check_encodes(where: str, layouts: list[Layout]) -> None:
    """Every record must encode with its shared layout (what the simulator will serve)."""
    for layout in layouts:
        try:
            layout.encode()
        except LayoutError as exc:
            raise _bad(where, exc.message_en) from None


# =========================================================================== generator

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹沈彭蒋陆钱"
_COMPOUND_SURNAMES = ("欧阳", "上官", "司马")
_GIVEN_1 = "伟芳娜敏静丽强磊军洋勇艳杰涛明超霞平刚琳"
_GIVEN_2 = (
    "建国", "秀英", "志强", "海燕", "晓东", "雪梅", "俊杰", "佳怡", "子涵", "浩然",
    "欣怡", "宇轩", "文博", "雨桐", "思远", "婉清", "国庆", "丽华", "嘉豪", "梓萱",
)  # fmt: skip
_ETHNICITIES = ("01",) * 18 + ("02", "03", "05")  # mostly Han (GB 3304 code 01)
_CHIP_MAKERS = ("0081", "0085", "0087", "0090")  # Huada, Huahong, Datang, Fudan
_COS_IDS = ("4A3001", "4E4323", "543101")
_CARD_MAKERS = ("8660", "8697")
_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I/O, which read as digits


def _add_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


def _random_name(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.05:
        return rng.choice(_COMPOUND_SURNAMES) + rng.choice(_GIVEN_1)
    surname = rng.choice(_SURNAMES)
    return surname + (rng.choice(_GIVEN_2) if roll < 0.6 else rng.choice(_GIVEN_1))


def _card_number(rng: random.Random, province: str, seed: int | None) -> str:
    """Letter + 8 digits. Card numbers are unique only within an issuer, and the 1101
    query needs card_sn as well (docs/reference.md §M); but one ``--seed`` must not
    give two provinces the *same* number by construction, which made a Jiangsu card
    settle on a Zhejiang account in testing. So a seeded number comes from
    its own stream salted with the province (still reproducible); the main stream is
    advanced exactly as before, so every other field of a seeded card is unchanged."""
    drawn = rng.choice(_LETTERS) + f"{rng.randrange(10**8):08d}"
    if seed is None:
        return drawn
    own = random.Random(f"sscard-card-number:{province}:{seed}")
    return own.choice(_LETTERS) + f"{own.randrange(10**8):08d}"


def new_card(
    province: str,
    generation: int = 3,
    balance: int = 10_000,
    state: str = "ok",
    seed: int | None = None,
    *,
    today: date | None = None,
    purse_algorithm: int | None = None,
    interoperable: bool = True,
    region: str | None = None,
) -> CardProfile:
    """A realistic, internally consistent card of one delta province.

    ``province`` is ``shanghai``, ``jiangsu``, ``zhejiang`` or ``anhui``. The same
    ``seed`` (and ``today``) gives the same card. ``state`` is ``ok``, ``expired``
    (expiry in the past), ``blocked`` (card and purse blocked) or ``pin-locked``
    (no PIN tries left). The purse uses SM4 on 3rd-gen cards and 3DES on 2nd-gen
    cards unless ``purse_algorithm`` says otherwise.

    ``interoperable=False`` gives a local card: EF 0017 interoperability flag ``0000``,
    its issuer ID carrying its issuing city's T-Union code (as always), so it is
    accepted only by that city's validators and keeps its composite records in SFI 19
    (§P1.3, §P5.4).

    ``region`` fixes the issuing region (a GB/T 2260 code of that province, e.g.
    ``330100`` Hangzhou); by default one is drawn from the seed. ``province="other"``
    makes a card from outside the delta (default ``region`` 110000 Beijing, which has a
    T-Union city code), to test what a terminal does with a card the regulation does
    not cover.
    """
    if province == OTHER_PROVINCE:
        region = region or "110000"
        province_of = region_of(region).province
        if province_of.key:
            raise ProfileError(
                f"region {region} is in the delta: use --province {province_of.key}",
                f"行政区划{region}属于长三角：请用 --province {province_of.key}",
            )
        province = province_of.code  # resolved below
    if generation not in (2, 3):
        raise ProfileError("generation must be 2 or 3", "卡代数应为2或3")
    if state not in CARD_STATES:
        raise ProfileError(
            f"state must be one of {', '.join(CARD_STATES)}", f"状态应为{'、'.join(CARD_STATES)}"
        )
    if not 0 <= balance <= DEFAULT_MAX_BALANCE:
        raise ProfileError(
            f"balance must be 0..{DEFAULT_MAX_BALANCE} fen", f"余额应为0至{DEFAULT_MAX_BALANCE}分"
        )
    prov = region_of(province).province if province.isdigit() else province_by_key(province)
    rng = random.Random(seed)
    today = today or clock.today()

    cities = cities_of(prov)
    drawn = rng.choice([prov.code, *[c.code for c in cities]])
    if region is None:
        region = drawn
    elif region_of(region).province != prov:
        raise ProfileError(
            f"region {region} is not in {prov.name_en}", f"行政区划{region}不属于{prov.name_zh}"
        )
    home = region if region != prov.code or not cities else rng.choice(cities).code

    # Dates: 10-year validity, expiry = issue + 10 years - 1 day (20211203 -> 20311202).
    if state == "expired":
        issue = today - timedelta(days=rng.randint(3660, 4200))
    else:
        issue = today - timedelta(days=rng.randint(30, 3000))
    expiry = _add_years(issue, 10) - timedelta(days=1)

    # Holder: SSN consistent with EF06 birth date and sex.
    birth = today - timedelta(days=rng.randint(18 * 366, 85 * 365))
    sex = rng.choice((SEX_MALE, SEX_FEMALE))
    sequence = rng.randrange(0, 999, 2) + (1 if sex == SEX_MALE else 0)
    ssn = make_ssn(home, birth, sequence)
    name = _random_name(rng)

    card_id = CardIdCode(
        region=region, rid=bytes.fromhex("D156000005"), card_specific=rng.randbytes(8)
    )
    ef05 = Ef05(
        card_id=card_id,
        card_type="3",
        spec_version=SPEC_VERSION[generation],
        init_org=region + "".join(rng.choice("0123456789") for _ in range(8)),
        issue_date=issue,
        expiry_date=expiry,
        card_number=_card_number(rng, prov.key, seed),
    )
    ef06 = Ef06(
        ssn=ssn,
        name=name,
        name_ext="",
        sex=sex,
        ethnicity=rng.choice(_ETHNICITIES),
        birthplace=home,
        birth_date=birth,
    )
    atr_hist = AtrHistorical(
        chip_maker=bytes.fromhex(rng.choice(_CHIP_MAKERS)),
        cos=bytes.fromhex(rng.choice(_COS_IDS)),
        card_maker=bytes.fromhex(rng.choice(_CARD_MAKERS)),
        serial=bytes.fromhex(region) + rng.randbytes(3),
    )
    ssse = SsseProfile(
        generation=generation,
        algorithm_flag=AlgorithmFlag.SM4 if generation == 3 else AlgorithmFlag.DES,
        ef05=ef05,
        ef06=ef06,
        atr_historical=atr_hist,
        pin=PinState(tries_left=0 if state == "pin-locked" else DEFAULT_PIN_TRIES),
        state=cast(CardState, state),
    )

    # Purse: issuer ID = card type ‖ 01 ‖ T-Union city code ‖ FF..; ASN 20 BCD digits.
    # The city code is the issuing city's (GB/T 13497, §P5.8): a
    # province-level card issues as the capital (sscard profile).
    city4 = city_of_region(region).code
    issuer_id = bytes.fromhex(f"0101{city4}FFFFFFFF")
    asn = "0" + city4 + "".join(rng.choice("0123456789") for _ in range(15))
    age = (today - birth).days // 365
    category = CardCategory.ELDERLY if age >= 70 else CardCategory.NORMAL
    algo = purse_algorithm
    if algo is None:
        algo = PurseAlgorithmId.SM4 if generation == 3 else PurseAlgorithmId.TDES
    purse = PurseProfile(
        algorithm_id=int(algo),
        ef0015=Ef0015(
            issuer_id=issuer_id,
            app_type=0x02,
            app_version=0x01,
            asn=asn,
            start_date=issue,
            expiry_date=expiry,
            fci_custom=bytes(2),
        ),
        ef0016=Ef0016(card_type=1, staff_flag=0, holder_name=name, id_number=ssn, id_type=0),
        ef0017=Ef0017(
            country_code="00000156",
            province_code=region[:2] + "00",
            city_code=city4,
            interop_flag=INTEROP_YES if interoperable else INTEROP_NO,
            category=int(category),
        ),
        balance=balance,
        blocked=state == "blocked",
    )
    if balance:
        # The initial load, so the log agrees with the balance and the online counter.
        purse.txn_records.append(
            TxnRecord(
                counter=0,
                overdraft_limit=0,
                amount=balance,
                txn_type=TxnType.EP_LOAD,
                terminal_id=rng.randbytes(6),
                time=datetime.combine(issue, time(10, 0)),
            )
        )
        purse.online_counter = 1

    reg = region_of(home)
    df01 = {
        # Opaque records (docs/reference.md part C profile): household register and residence text.
        "EF05": {1: reg.name_zh.encode("gbk").ljust(60, b"\x00")},
        "EF06": {1: (reg.name_zh + "某路1号").encode("gbk").ljust(60, b"\x00")},
    }
    profile = CardProfile(
        ssse=ssse,
        purse=purse,
        df01=df01,
        label=f"{prov.key or prov.name_en.lower()} gen{generation} {state}"
        + ("" if interoperable else " local"),
    )
    profile.validate()
    return profile
