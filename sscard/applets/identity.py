"""Identity checks with the social security card at hotels, gates and counters.

The delta regulation makes the card (physical or electronic, Art. 2) an identity
credential for public services and hotel registration (Art. 9) and the key to
libraries, museums and scenic spots (Art. 12); it punishes forged, borrowed and
stolen cards (Art. 21) and asks for privacy protection and an audit trail (Art. 18);
see shared/reference/regulation.md. A *scenario policy* says which checks a place
runs and which personal data it may keep:

* ``hotel``: genuine card (internal authentication, ssse-card.md §3.4), valid, not
  reported lost, SSN consistent; releases the full name and SSN for the registration
  record. The chip holds no usable photo (medical-insurance.md profile "Hotel
  identity": ``photo_on_card = False``), so the result tells the desk to match the face.
* ``gate``: valid card from an accepted region; releases only a masked name and an age
  band / concession category, never the SSN. Also takes an e-SSC QR code (Art. 2).
* ``counter``: as ``hotel`` plus PIN verification (regulation.md Art. 10).

Every check gives ``pass``/``fail``/``skipped`` with a reason code and bilingual text;
the card data comes from :class:`~sscard.applets.ssse.SsseReader` (EF05/EF06,
ssse-card.md §1.4-1.5) as a plain :class:`CardReading`, so the policy logic is
testable without a card. Each check is written to the :class:`AuditLog` (masked).
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from sscard.applets.ecard import REASONS as QR_REASONS
from sscard.applets.ecard import EcardVerifier, route_qr
from sscard.cards.layout import LayoutError
from sscard.cards.privacy import mask_card_number, mask_name, mask_ssn
from sscard.cards.regions import UnknownRegion, region_of
from sscard.cards.ssn import InvalidSsn, birth_date_of, sex_of, validate_ssn
from sscard.cards.ssse import Ef05, Ef06
from sscard.errors import ConfigError
from sscard.services.audit import DEFAULT_RETENTION_DAYS, AuditLog, mask_card_id
from sscard.services.lists import Blacklist, BlacklistReason, TrustList

if TYPE_CHECKING:
    from sscard.applets.ssse import SsseReader

POLICY_SCHEMA = "sscard-identity-policy/1"
#: The card's dates are Beijing dates (UTC+8, no daylight saving).
CHINA_TZ = timezone(timedelta(hours=8), "CST")

Status = Literal["pass", "fail", "skipped"]
Kind = Literal["hotel", "gate", "counter"]
RegionRule = Literal["refuse", "note", "off"]
PinOutcome = Literal["ok", "wrong", "locked", "missing", "initial", "format"]

# --------------------------------------------------------------------------- reasons

#: reason code -> (English, Chinese). Card-medium reasons; QR reasons are ``qr_`` + the
#: verifier's code (sscard.applets.ecard.REASONS).
REASONS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "app_active": ("social security application is active", "社会保障应用状态正常"),
        "app_blocked": (
            "social security application is blocked; contact the issuing place or 12333",
            "社会保障应用已锁定，请联系发卡地或拨打12333",
        ),
        "not_ssc": ("not a social security card", "不是社会保障卡"),
        "unreadable": ("card data could not be read", "无法读取卡片数据"),
        "no_keys": (
            "no PSAM or keys to authenticate this card",
            "无PSAM或密钥，无法认证此卡",
        ),
        "genuine": ("card passed internal authentication", "卡片内部认证通过"),
        "counterfeit": (
            "card failed internal authentication: possibly forged (Art. 21)",
            "卡片内部认证失败，疑似伪造卡（第二十一条）",
        ),
        "valid": ("card is within its validity period", "卡片在有效期内"),
        "expired": (
            "card has expired; renew it at the issuing place",
            "卡片已过有效期，请到发卡地换领",
        ),
        "not_listed": ("card is not reported lost or blacklisted", "卡片未挂失、未列入黑名单"),
        "reported_lost": (BlacklistReason.LOST.text_en, BlacklistReason.LOST.text_zh),
        "cancelled": (BlacklistReason.CANCELLED.text_en, BlacklistReason.CANCELLED.text_zh),
        "replaced": (BlacklistReason.REPLACED.text_en, BlacklistReason.REPLACED.text_zh),
        "listed_counterfeit": (
            BlacklistReason.COUNTERFEIT.text_en,
            BlacklistReason.COUNTERFEIT.text_zh,
        ),
        "listed_misuse": (BlacklistReason.MISUSE.text_en, BlacklistReason.MISUSE.text_zh),
        "blacklisted": (
            BlacklistReason.UNSPECIFIED.text_en,
            BlacklistReason.UNSPECIFIED.text_zh,
        ),
        "trusted_region": ("issuing region is accepted", "发卡地区在信任列表中"),
        "untrusted_region": (
            "issuing region is not accepted here",
            "发卡地区不在本场所的信任列表中",
        ),
        "untrusted_region_noted": (
            "issuing region is not in the trust list (accepted by policy)",
            "发卡地区不在信任列表中（按策略予以接受）",
        ),
        "ssn_ok": (
            "SSN check digit and birth date / sex agree",
            "社会保障号码校验位正确，与出生日期、性别一致",
        ),
        "ssn_invalid": ("SSN check digit is wrong", "社会保障号码校验位错误"),
        "ssn_mismatch": (
            "SSN disagrees with the birth date or sex on the card",
            "社会保障号码与卡内出生日期或性别不一致",
        ),
        "pin_ok": ("PIN verified", "密码验证通过"),
        "pin_wrong": ("PIN wrong", "密码错误"),
        "pin_locked": ("PIN locked; unblock it at the issuing place", "密码已锁定，请到发卡地解锁"),
        "pin_missing": ("PIN required at this counter", "本窗口须验证密码"),
        "pin_format": ("a PIN has 6 digits", "密码应为6位数字"),
        "pin_initial": (
            "the initial PIN cannot be used; change it first",
            "初始密码不能办理业务，请先修改密码",
        ),
        "not_required": ("not required by this policy", "本场景策略不要求"),
        "not_reached": ("not checked: the card could not be read", "未检查：无法读取卡片"),
        "not_in_qr": (
            "not applicable to an e-SSC QR code (the issuer vouches for it)",
            "电子社保卡二维码不适用（由签发机构保证）",
        ),
        "qr_not_accepted": (
            "e-SSC QR codes are not accepted in this scenario; present the card",
            "本场景不接受电子社保卡二维码，请出示实体卡",
        ),
        **{f"qr_{code}": text for code, text in QR_REASONS.items()},
    }
)

#: Things the operator must do, shown with the result.
NOTES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "face_match_required": (
            "the chip holds no photo: match the holder's face or photo before registration",
            "卡内无照片：登记前须核验持卡人人脸或照片",
        ),
        "concession_unknown": (
            "an e-SSC QR code carries no age: ask for proof before granting a concession",
            "电子社保卡二维码不含年龄信息：减免票须另行核验",
        ),
    }
)

#: Checks in the order they are run and shown.
CARD_CHECKS = ("application", "internal_auth", "expiry", "blacklist", "region", "ssn", "pin")
QR_CHECKS = ("ecard_qr", "application", "internal_auth", "expiry", "blacklist", "region")
CHECK_NAMES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "application": ("application status", "应用状态"),
        "internal_auth": ("genuine card", "真卡认证"),
        "expiry": ("validity", "有效期"),
        "blacklist": ("loss / blacklist", "挂失/黑名单"),
        "region": ("issuing region", "发卡地区"),
        "ssn": ("SSN consistency", "社会保障号码一致性"),
        "pin": ("PIN", "密码"),
        "ecard_qr": ("e-SSC QR code", "电子社保卡二维码"),
    }
)

_BLACKLIST_CODES = {
    BlacklistReason.UNSPECIFIED: "blacklisted",
    BlacklistReason.LOST: "reported_lost",
    BlacklistReason.CANCELLED: "cancelled",
    BlacklistReason.REPLACED: "replaced",
    BlacklistReason.COUNTERFEIT: "listed_counterfeit",
    BlacklistReason.MISUSE: "listed_misuse",
}

# --------------------------------------------------------------------------- policy

#: Fields a policy may release, and which scenario kinds may release them. A gate
#: never gets the SSN, the full name or the birth date (issue 7; Art. 18 minimal data).
RELEASABLE: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "name": frozenset({"hotel", "counter"}),
        "masked_name": frozenset({"hotel", "gate", "counter"}),
        "ssn": frozenset({"hotel", "counter"}),
        "masked_ssn": frozenset({"hotel", "counter"}),
        "sex": frozenset({"hotel", "counter"}),
        "birth_date": frozenset({"hotel", "counter"}),
        "age_band": frozenset({"hotel", "gate", "counter"}),
        "concession": frozenset({"hotel", "gate", "counter"}),
        "card_id_code": frozenset({"hotel", "counter"}),
        "card_number": frozenset({"hotel", "counter"}),
        "region": frozenset({"hotel", "gate", "counter"}),
        "expiry_date": frozenset({"hotel", "counter"}),
    }
)


@dataclass(frozen=True)
class AgeBand:
    """A concession category for holders aged ``min_age`` and over (next band excluded)."""

    min_age: int
    code: str
    en: str
    zh: str


#: sscard default: common Chinese venue practice (children under 6 and people 65+ free,
#: minors and 60-64 half price). A venue's own rule goes in the policy file.
DEFAULT_AGE_BANDS = (
    AgeBand(0, "child_free", "child under 6: free", "6岁以下儿童：免票"),
    AgeBand(6, "minor_half", "minor 6-17: half price", "6-17岁未成年人：半价"),
    AgeBand(18, "adult", "full price", "成人：全价"),
    AgeBand(60, "senior_half", "senior 60-64: half price", "60-64岁老年人：半价"),
    AgeBand(65, "senior_free", "senior 65+: free", "65岁及以上老年人：免票"),
)


@dataclass(frozen=True)
class ScenarioPolicy:
    """What one place checks and keeps (one ``[scenario.NAME]`` table of the policy file)."""

    name: str
    kind: Kind
    internal_auth: bool = True
    expiry: bool = True
    blacklist: bool = True
    region: RegionRule = "refuse"
    ssn: bool = True
    pin: bool = False
    accept_qr: bool = False
    face_match: bool = False
    release: tuple[str, ...] = ()
    age_bands: tuple[AgeBand, ...] = DEFAULT_AGE_BANDS

    def __post_init__(self) -> None:
        for item in self.release:
            allowed = RELEASABLE.get(item)
            if allowed is None:
                raise _policy_error(
                    f"scenario {self.name}: unknown release field {item!r}",
                    f"场景 {self.name}：未知的释放字段 {item!r}",
                )
            if self.kind not in allowed:
                raise _policy_error(
                    f"scenario {self.name}: a {self.kind} may not release {item}",
                    f"场景 {self.name}：{self.kind} 类场景不得释放 {item}",
                )
        ages = [b.min_age for b in self.age_bands]
        if ages and (ages != sorted(set(ages)) or ages[0] != 0):
            raise _policy_error(
                f"scenario {self.name}: age bands must start at 0 and increase",
                f"场景 {self.name}：年龄段须从0开始递增",
            )

    def band_for(self, age: int) -> tuple[AgeBand, str] | None:
        """The band for ``age`` and its label (``60-64``, ``65+``)."""
        for i, band in enumerate(self.age_bands):
            nxt = self.age_bands[i + 1].min_age if i + 1 < len(self.age_bands) else None
            if nxt is None or age < nxt:
                label = f"{band.min_age}+" if nxt is None else f"{band.min_age}-{nxt - 1}"
                return band, label
        return None


def _policy_error(en: str, zh: str) -> ConfigError:
    return ConfigError(f"identity policy: {en}", f"身份核验策略：{zh}")


DEFAULT_SCENARIOS: Mapping[str, ScenarioPolicy] = MappingProxyType(
    {
        "hotel": ScenarioPolicy(
            "hotel",
            "hotel",
            face_match=True,
            release=("name", "ssn", "sex", "card_id_code", "expiry_date", "region"),
        ),
        "gate": ScenarioPolicy(
            "gate",
            "gate",
            accept_qr=True,
            release=("masked_name", "age_band", "concession", "region"),
        ),
        "counter": ScenarioPolicy(
            "counter",
            "counter",
            pin=True,
            face_match=False,
            release=("name", "ssn", "sex", "card_id_code", "card_number", "expiry_date", "region"),
        ),
    }
)


@dataclass(frozen=True)
class IdentityPolicy:
    """All scenarios of a terminal, the audit retention and (optionally) trusted regions."""

    scenarios: Mapping[str, ScenarioPolicy] = field(default_factory=lambda: DEFAULT_SCENARIOS)
    retention_days: float | None = DEFAULT_RETENTION_DAYS
    #: Regions accepted by ``region`` checks; None = the default trust list.
    trusted_regions: tuple[str, ...] | None = None

    def scenario(self, name: str) -> ScenarioPolicy:
        try:
            return self.scenarios[name]
        except KeyError:
            known = ", ".join(sorted(self.scenarios))
            raise _policy_error(
                f"no scenario {name!r} (known: {known})", f"无场景 {name!r}（已有：{known}）"
            ) from None

    def trust_list(self) -> TrustList:
        """The trust list this policy implies (default: four delta provinces, national T-Union)."""
        default = TrustList.default()
        if self.trusted_regions is None:
            return default
        return replace(default, regions=frozenset(self.trusted_regions))

    def open_audit(self, path: str | Path) -> AuditLog:
        """The audit log with this policy's retention (Art. 18: minimal retention)."""
        return AuditLog(path, retention_days=self.retention_days)

    @classmethod
    def load(cls, path: str | Path) -> IdentityPolicy:
        name = Path(path).name
        try:
            with open(path, "rb") as fh:
                doc = tomllib.load(fh)
        except OSError as exc:
            raise _policy_error(f"cannot read {name}", f"无法读取 {name}") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise _policy_error(f"{name} is not valid TOML", f"{name} 不是有效的 TOML") from exc
        return cls.from_toml(doc)

    @classmethod
    def from_toml(cls, doc: Mapping[str, Any]) -> IdentityPolicy:
        """From a parsed TOML document (schema ``sscard-identity-policy/1``)."""
        if doc.get("schema") != POLICY_SCHEMA:
            raise _policy_error(f"schema must be {POLICY_SCHEMA}", f"schema 须为 {POLICY_SCHEMA}")
        audit = _table(doc, "audit")
        retention = audit.get("retention_days", DEFAULT_RETENTION_DAYS)
        if retention is not None and (
            isinstance(retention, bool) or not isinstance(retention, int | float) or retention <= 0
        ):
            raise _policy_error(
                "audit.retention_days must be a positive number", "audit.retention_days 须为正数"
            )
        trust = _table(doc, "trust")
        regions = trust.get("regions")
        if regions is not None and (
            not isinstance(regions, list)
            or not all(isinstance(r, str) and len(r) == 6 and r.isdigit() for r in regions)
        ):
            raise _policy_error(
                "trust.regions must be a list of 6-digit region codes",
                "trust.regions 须为6位行政区划代码列表",
            )
        scenarios = dict(DEFAULT_SCENARIOS)
        for name, table in _table(doc, "scenario").items():
            if not isinstance(table, dict):
                raise _policy_error(f"scenario.{name} must be a table", f"scenario.{name} 须为表")
            scenarios[name] = _scenario_from(name, table, scenarios.get(name))
        return cls(
            MappingProxyType(scenarios),
            None if retention is None else float(retention),
            None if regions is None else tuple(regions),
        )


def _table(doc: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise _policy_error(f"[{key}] must be a table", f"[{key}] 须为表")
    return value


_BOOL_KEYS = ("internal_auth", "expiry", "blacklist", "ssn", "pin", "accept_qr", "face_match")


def _scenario_from(
    name: str, table: Mapping[str, Any], base: ScenarioPolicy | None
) -> ScenarioPolicy:
    """A scenario table over its default (or over the default of its ``kind``)."""
    known = {*_BOOL_KEYS, "kind", "region", "release", "age_bands"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise _policy_error(
            f"scenario.{name}: unknown key {unknown[0]!r}",
            f"scenario.{name}：未知键 {unknown[0]!r}",
        )
    kind = table.get("kind", base.kind if base else None)
    if kind not in ("hotel", "gate", "counter"):
        raise _policy_error(
            f"scenario.{name}: kind must be hotel, gate or counter",
            f"scenario.{name}：kind 须为 hotel、gate 或 counter",
        )
    start = base if base is not None and base.kind == kind else DEFAULT_SCENARIOS[kind]
    changes: dict[str, Any] = {"name": name, "kind": kind}
    for key in _BOOL_KEYS:
        if key in table:
            if not isinstance(table[key], bool):
                raise _policy_error(
                    f"scenario.{name}.{key} must be true or false",
                    f"scenario.{name}.{key} 须为 true 或 false",
                )
            changes[key] = table[key]
    if "region" in table:
        if table["region"] not in ("refuse", "note", "off"):
            raise _policy_error(
                f"scenario.{name}.region must be refuse, note or off",
                f"scenario.{name}.region 须为 refuse、note 或 off",
            )
        changes["region"] = table["region"]
    if "release" in table:
        release = table["release"]
        if not isinstance(release, list) or not all(isinstance(r, str) for r in release):
            raise _policy_error(
                f"scenario.{name}.release must be a list of field names",
                f"scenario.{name}.release 须为字段名列表",
            )
        changes["release"] = tuple(release)
    if "age_bands" in table:
        changes["age_bands"] = _age_bands(name, table["age_bands"])
    return replace(start, **changes)


def _age_bands(name: str, value: Any) -> tuple[AgeBand, ...]:
    if not isinstance(value, list):
        raise _policy_error(
            f"scenario.{name}.age_bands must be an array of tables",
            f"scenario.{name}.age_bands 须为表数组",
        )
    bands = []
    for entry in value:
        try:
            band = AgeBand(
                int(entry["min_age"]), str(entry["code"]), str(entry["en"]), str(entry["zh"])
            )
        except (KeyError, TypeError, ValueError):
            raise _policy_error(
                f"scenario.{name}.age_bands: each needs min_age, code, en, zh",
                f"scenario.{name}.age_bands：每项须有 min_age、code、en、zh",
            ) from None
        bands.append(band)
    return tuple(bands)


# --------------------------------------------------------------------------- input


@dataclass(frozen=True)
class CardReading:
    """What the terminal got from the card; ``None`` where a step was not run.

    ``app`` is the SELECT outcome (``ok``, ``blocked`` for 6A81/9303, ``absent``
    for a card without SSSE). ``genuine`` is the internal-authentication result;
    ``auth_error``/``holder_error`` are reason codes when a step could not run.
    """

    app: Literal["ok", "blocked", "absent"] = "ok"
    ef05: Ef05 | None = None
    ef06: Ef06 | None = field(default=None, repr=False)
    genuine: bool | None = None
    auth_error: str | None = None
    holder_error: str | None = None
    pin: PinOutcome | None = None
    pin_tries_left: int | None = None


def read_card(
    reader: SsseReader, scenario: ScenarioPolicy, *, pin: str | None = None
) -> CardReading:
    """Run the card side of ``scenario`` through an :class:`SsseReader`.

    Order: SELECT SSSE, EF05, internal authentication (if the policy asks), EF06
    (3rd gen: external authentication with RKSSSE, ssse-card.md §1.5), PIN. Card
    answers that are outcomes of a check (blocked 6A81/9303, counterfeit, wrong PIN)
    become fields; transport errors propagate.
    """
    from sscard.applets import ssse

    try:
        reader.select()
        return _read_selected(reader, scenario, pin)
    except ssse.SsseBlocked:
        return CardReading(app="blocked")
    except ssse.WrongCardType:
        return CardReading(app="absent")


def _read_selected(reader: SsseReader, scenario: ScenarioPolicy, pin: str | None) -> CardReading:
    from sscard.apdu import errors as sw
    from sscard.applets import ssse
    from sscard.applets.keyprovider import PsamError

    try:
        ef05 = reader.read_issuer().ef05
    except (sw.CardError, LayoutError):
        return CardReading(holder_error="unreadable")
    reading = CardReading(ef05=ef05)
    if scenario.internal_auth:
        try:
            reader.authenticate()
            reading = replace(reading, genuine=True)
        except ssse.IllegalCard:
            reading = replace(reading, genuine=False)
        except PsamError:  # includes KeysRequired
            reading = replace(reading, auth_error="no_keys")
    try:
        reading = replace(reading, ef06=reader.read_holder().ef06)
    except PsamError:
        reading = replace(reading, holder_error="no_keys")
    except (sw.CardError, LayoutError) as exc:
        if isinstance(exc, ssse.SsseBlocked):
            raise
        reading = replace(reading, holder_error="unreadable")
    if scenario.pin:
        reading = replace(reading, **_verify_pin(reader, pin))
    return reading


def _verify_pin(reader: SsseReader, pin: str | None) -> dict[str, Any]:
    from sscard.apdu import errors as sw
    from sscard.applets import ssse

    if pin is None:
        return {"pin": "missing"}
    try:
        reader.verify_pin(pin)
    except ssse.PinFormatError:
        return {"pin": "format"}
    except sw.PinIncorrect as exc:
        return {"pin": "wrong", "pin_tries_left": exc.tries_left}
    except sw.AuthMethodBlocked:
        return {"pin": "locked", "pin_tries_left": 0}
    except ssse.InitialPinNotAllowed:
        return {"pin": "initial"}
    return {"pin": "ok"}


# --------------------------------------------------------------------------- result


@dataclass(frozen=True)
class CheckResult:
    """One check: ``pass``/``fail``/``skipped``, a machine reason code, bilingual text."""

    check: str
    status: Status
    reason: str

    @property
    def message_en(self) -> str:
        return REASONS[self.reason][0]

    @property
    def message_zh(self) -> str:
        return REASONS[self.reason][1]

    def to_dict(self) -> dict[str, str]:
        return {
            "check": self.check,
            "status": self.status,
            "reason": self.reason,
            "message_en": self.message_en,
            "message_zh": self.message_zh,
        }


def _mask_date(value: str) -> str:
    return value[:4] + "-**-**"


#: How a released field is shown when redacted (the default everywhere).
_REDACT: Mapping[str, Callable[[str], str]] = MappingProxyType(
    {
        "name": mask_name,
        "ssn": mask_ssn,
        "birth_date": _mask_date,
        "card_number": mask_card_number,
        "card_id_code": mask_card_id,
    }
)


@dataclass(frozen=True)
class IdentityResult:
    """The outcome of one identity check; personal data only in ``released`` (not in repr)."""

    scenario: str
    medium: Literal["card", "ecard"]
    checks: tuple[CheckResult, ...]
    released: Mapping[str, str] = field(default_factory=dict, repr=False)
    notes: tuple[str, ...] = ()
    at: float = 0.0
    #: The chip holds no usable photo (medical-insurance.md profile, "Hotel identity").
    photo_on_card: bool = False

    @property
    def accepted(self) -> bool:
        return not any(c.status == "fail" for c in self.checks)

    @property
    def outcome(self) -> Literal["accepted", "refused"]:
        return "accepted" if self.accepted else "refused"

    @property
    def reasons(self) -> tuple[str, ...]:
        """Reason codes of the failed checks (empty when accepted)."""
        return tuple(c.reason for c in self.checks if c.status == "fail")

    def check(self, name: str) -> CheckResult:
        for c in self.checks:
            if c.check == name:
                return c
        raise ConfigError(f"no check named {name!r}", f"无检查项 {name!r}")

    def released_view(self, redact: bool = True) -> dict[str, str]:
        if not redact:
            return dict(self.released)
        return {k: _REDACT.get(k, str)(v) for k, v in self.released.items()}

    def to_dict(self, redact: bool = True) -> dict[str, Any]:
        """JSON-ready; personal fields masked unless ``redact=False``."""
        return {
            "scenario": self.scenario,
            "medium": self.medium,
            "outcome": self.outcome,
            "reasons": list(self.reasons),
            "checks": [c.to_dict() for c in self.checks],
            "released": self.released_view(redact),
            "photo_on_card": self.photo_on_card,
            "notes": [
                {"note": n, "message_en": NOTES[n][0], "message_zh": NOTES[n][1]}
                for n in self.notes
            ],
            "time": datetime.fromtimestamp(self.at, CHINA_TZ).isoformat(timespec="seconds"),
        }

    def text(self, redact: bool = True) -> str:
        """Readable bilingual lines for a terminal screen or the CLI."""
        verdict = "ACCEPTED / 通过" if self.accepted else "REFUSED / 拒绝"
        lines = [f"{self.scenario} ({self.medium}): {verdict}"]
        for c in self.checks:
            en, zh = CHECK_NAMES[c.check]
            lines.append(
                f"  [{c.status:7}] {en} / {zh}: {c.message_en} / {c.message_zh} ({c.reason})"
            )
        for key, value in self.released_view(redact).items():
            lines.append(f"  {key}: {value}")
        for n in self.notes:
            lines.append(f"  ! {NOTES[n][0]} / {NOTES[n][1]}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- the check


def age_on(birth: date, today: date) -> int:
    """Whole years (a 29 February birthday counts on 1 March in common years)."""
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


class IdentityCheck:
    """Runs scenario policies over card readings or e-SSC QR codes and audits each check."""

    def __init__(
        self,
        policy: IdentityPolicy | None = None,
        *,
        blacklist: Blacklist | None = None,
        trust: TrustList | None = None,
        audit: AuditLog | None = None,
        clock: Callable[[], float] = time.time,
        terminal_id: str = "local",
        verifier: EcardVerifier | None = None,
    ) -> None:
        self.policy = policy or IdentityPolicy()
        self.blacklist = blacklist if blacklist is not None else Blacklist.empty()
        self.trust = trust if trust is not None else self.policy.trust_list()
        self.audit = audit
        self.clock = clock
        self.terminal_id = terminal_id
        self.verifier = verifier

    def today(self) -> date:
        return datetime.fromtimestamp(self.clock(), CHINA_TZ).date()

    # ------------------------------------------------------------ physical card

    def check_card(
        self, scenario: str, reader: SsseReader, *, pin: str | None = None
    ) -> IdentityResult:
        """Read the card through ``reader`` and evaluate ``scenario`` (audited)."""
        policy = self.policy.scenario(scenario)
        return self.evaluate(scenario, read_card(reader, policy, pin=pin))

    def evaluate(self, scenario: str, reading: CardReading) -> IdentityResult:
        """Apply ``scenario`` to what was read (audited); see the module docstring."""
        policy = self.policy.scenario(scenario)
        at = self.clock()
        checks = self._card_checks(policy, reading)
        result = IdentityResult(
            scenario=scenario,
            medium="card",
            checks=tuple(checks),
            at=at,
        )
        if result.accepted:
            notes = ("face_match_required",) if policy.face_match else ()
            result = replace(result, released=self._release(policy, reading), notes=notes)
        self._audit(
            result,
            name=reading.ef06.full_name if reading.ef06 else None,
            ssn=reading.ef06.ssn if reading.ef06 else None,
            card_id_code=reading.ef05.card_id.encode() if reading.ef05 else None,
        )
        return result

    def _card_checks(self, policy: ScenarioPolicy, r: CardReading) -> list[CheckResult]:
        if r.app != "ok" or r.ef05 is None:
            first = {"blocked": "app_blocked", "absent": "not_ssc"}.get(r.app, "unreadable")
            return [CheckResult("application", "fail", first)] + [
                CheckResult(c, "skipped", "not_reached") for c in CARD_CHECKS[1:]
            ]
        ef05 = r.ef05
        out = [CheckResult("application", "pass", "app_active")]
        out.append(self._auth_check(policy, r))
        if policy.expiry:
            expired = ef05.expired(self.today())
            out.append(CheckResult("expiry", "fail" if expired else "pass",
                                   "expired" if expired else "valid"))  # fmt: skip
        else:
            out.append(CheckResult("expiry", "skipped", "not_required"))
        out.append(self._blacklist_check(policy, ef05.card_id.encode(), ef05))
        out.append(self._region_check(policy, ef05.card_id.region))
        out.append(self._ssn_check(policy, r))
        out.append(self._pin_check(policy, r))
        return out

    @staticmethod
    def _auth_check(policy: ScenarioPolicy, r: CardReading) -> CheckResult:
        if not policy.internal_auth:
            return CheckResult("internal_auth", "skipped", "not_required")
        if r.genuine is None:
            return CheckResult("internal_auth", "fail", r.auth_error or "unreadable")
        if r.genuine:
            return CheckResult("internal_auth", "pass", "genuine")
        return CheckResult("internal_auth", "fail", "counterfeit")

    def _blacklist_check(
        self, policy: ScenarioPolicy, card_id: bytes, ef05: Ef05 | None
    ) -> CheckResult:
        """By card ID code, then region:card number (the shared list format, lists.py)."""
        if not policy.blacklist:
            return CheckResult("blacklist", "skipped", "not_required")
        listed = self.blacklist.check_card_id(card_id)
        if listed is None and ef05 is not None:
            listed = self.blacklist.check_card_number(ef05.card_id.region, ef05.card_number)
        if listed is None:
            return CheckResult("blacklist", "pass", "not_listed")
        return CheckResult("blacklist", "fail", _BLACKLIST_CODES[listed])

    def _region_check(self, policy: ScenarioPolicy, region: str) -> CheckResult:
        if policy.region == "off":
            return CheckResult("region", "skipped", "not_required")
        if self.trust.trusts_region(region):
            return CheckResult("region", "pass", "trusted_region")
        if policy.region == "note":
            return CheckResult("region", "pass", "untrusted_region_noted")
        return CheckResult("region", "fail", "untrusted_region")

    @staticmethod
    def _ssn_check(policy: ScenarioPolicy, r: CardReading) -> CheckResult:
        """GB 11643 check digit, then birth date and sex against EF06 (ssse-card.md §1.5)."""
        if not policy.ssn:
            return CheckResult("ssn", "skipped", "not_required")
        if r.ef06 is None:
            return CheckResult("ssn", "fail", r.holder_error or "unreadable")
        try:
            ssn = validate_ssn(r.ef06.ssn)
        except InvalidSsn:
            return CheckResult("ssn", "fail", "ssn_invalid")
        if birth_date_of(ssn) != r.ef06.birth_date or sex_of(ssn) != r.ef06.sex:
            return CheckResult("ssn", "fail", "ssn_mismatch")
        return CheckResult("ssn", "pass", "ssn_ok")

    @staticmethod
    def _pin_check(policy: ScenarioPolicy, r: CardReading) -> CheckResult:
        if not policy.pin:
            return CheckResult("pin", "skipped", "not_required")
        outcome = r.pin or "missing"
        return CheckResult("pin", "pass" if outcome == "ok" else "fail", f"pin_{outcome}")

    def _release(self, policy: ScenarioPolicy, r: CardReading) -> dict[str, str]:
        """The fields ``policy`` releases, from an accepted reading (raw; redacted on output)."""
        ef05, ef06 = r.ef05, r.ef06
        assert ef05 is not None
        values: dict[str, str] = {
            "card_id_code": ef05.card_id.hex,
            "card_number": ef05.card_number,
            "region": _region_label(ef05.card_id.region),
            "expiry_date": ef05.expiry_date.isoformat(),
        }
        if ef06 is not None:
            age = age_on(ef06.birth_date, self.today())
            values.update(
                name=ef06.full_name,
                masked_name=mask_name(ef06.full_name),
                ssn=ef06.ssn,
                masked_ssn=mask_ssn(ef06.ssn),
                sex={"1": "1 male / 男", "2": "2 female / 女"}.get(ef06.sex, ef06.sex),
                birth_date=ef06.birth_date.isoformat(),
            )
            band = policy.band_for(age)
            if band is not None:
                values["age_band"] = band[1]
                values["concession"] = f"{band[0].code}: {band[0].en} / {band[0].zh}"
        return {k: values[k] for k in policy.release if k in values}

    # ------------------------------------------------------------ e-SSC QR

    def check_qr(self, payload: str | bytes, scenario: str = "gate") -> IdentityResult:
        """An e-SSC QR code (Art. 2: the electronic card is the card), audited.

        Releases only what the token carries: the region of the card identification
        code, the code itself (masked) and the SSN digest (ssse-card.md profile).
        """
        policy = self.policy.scenario(scenario)
        at = self.clock()
        skipped = [CheckResult(c, "skipped", "not_in_qr") for c in QR_CHECKS[1:4]]
        if not policy.accept_qr:
            checks = [CheckResult("ecard_qr", "fail", "qr_not_accepted")]
            checks += [CheckResult(c, "skipped", "not_reached") for c in QR_CHECKS[1:]]
            result = IdentityResult(scenario, "ecard", tuple(checks), at=at)
            self._audit(result)
            return result
        if self.verifier is None:
            raise ConfigError(
                "no e-SSC verifier configured (trust store)", "未配置电子社保卡验证器（信任列表）"
            )
        qr = route_qr(payload, self.verifier)
        card_id = qr.card_id_code
        checks = [CheckResult("ecard_qr", "pass" if qr.accepted else "fail", f"qr_{qr.reason}")]
        checks += skipped
        if card_id is None:
            checks += [CheckResult(c, "skipped", "not_reached") for c in QR_CHECKS[4:]]
        else:
            checks.append(self._blacklist_check(policy, card_id, None))
            checks.append(self._region_check(policy, card_id[:3].hex()))
        result = IdentityResult(scenario, "ecard", tuple(checks), at=at)
        if result.accepted and card_id is not None and qr.ssn_digest is not None:
            released = {
                "region": _region_label(card_id[:3].hex()),
                "card_id_code": card_id.hex().upper(),
                "ssn_digest": qr.ssn_digest.hex().upper(),
            }
            notes = ("concession_unknown",) if "concession" in policy.release else ()
            result = replace(result, released=released, notes=notes)
        self._audit(result, card_id_code=card_id)
        return result

    # ------------------------------------------------------------ audit

    def _audit(
        self,
        result: IdentityResult,
        *,
        name: str | None = None,
        ssn: str | None = None,
        card_id_code: bytes | None = None,
    ) -> None:
        """One masked row: outcome and ``check:reason`` for every check that ran."""
        if self.audit is None:
            return
        self.audit.record(
            terminal_id=self.terminal_id,
            scenario=f"{result.scenario}.{result.medium}",
            result=result.outcome,
            reasons=[f"{c.check}:{c.reason}" for c in result.checks if c.status != "skipped"],
            name=name,
            ssn=ssn,
            card_id_code=card_id_code,
        )


def _region_label(code: str) -> str:
    try:
        region = region_of(code)
    except UnknownRegion:
        return code
    return f"{code} {region.name_en} / {region.name_zh}"


__all__ = [
    "AgeBand",
    "CardReading",
    "CheckResult",
    "IdentityCheck",
    "IdentityPolicy",
    "IdentityResult",
    "ScenarioPolicy",
    "read_card",
]
