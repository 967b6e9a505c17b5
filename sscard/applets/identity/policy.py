"""Scenario policies: which checks a place runs and which personal data it may keep.

Hotels (regulation Art. 9), gates of libraries, museums and scenic spots
(Art. 12) and service counters (Art. 10) need different checks; Art. 18 asks for
minimal data, so :data:`RELEASABLE` caps what each kind of place may release and
the audit retention is part of the policy. Policies load from a TOML file (schema
``sscard-identity-policy/1``); a typo is refused, never ignored.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from sscard.errors import ConfigError
from sscard.files import parse_toml, read_text
from sscard.services.audit import DEFAULT_RETENTION_DAYS, AuditLog
from sscard.services.lists import TrustList

POLICY_SCHEMA = "sscard-identity-policy/1"
#: Bounds of numbers a policy may set (a hostile ``min_age = inf`` is one error line).
MAX_AGE = 150
MAX_RETENTION_DAYS = 36_500

Kind = Literal["hotel", "gate", "counter"]
RegionRule = Literal["refuse", "note", "off"]

#: Fields a policy may release, and which scenario kinds may release them. A gate
#: never gets the SSN, the full name or the birth date (regulation Art. 18: minimal data).
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
            doc = parse_toml(read_text(path))  # bounded reader (sscard.files)
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
            isinstance(retention, bool)
            or not isinstance(retention, int | float)
            or not 0 < retention <= MAX_RETENTION_DAYS  # also refuses nan and inf
        ):
            raise _policy_error(
                f"audit.retention_days must be a number in (0, {MAX_RETENTION_DAYS}]",
                f"audit.retention_days 须为 (0, {MAX_RETENTION_DAYS}] 之间的数",
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
            min_age = entry["min_age"]
            # An integer age a person can have: refuses inf, nan, 1e300, true and "18".
            if isinstance(min_age, bool) or not isinstance(min_age, int):
                raise TypeError("min_age")
            if not 0 <= min_age <= MAX_AGE:
                raise ValueError("min_age")
            band = AgeBand(min_age, str(entry["code"]), str(entry["en"]), str(entry["zh"]))
        except (KeyError, TypeError, ValueError):
            raise _policy_error(
                f"scenario.{name}.age_bands: each needs min_age (integer 0-{MAX_AGE}),"
                " code, en, zh",
                f"scenario.{name}.age_bands：每项须有 min_age（0-{MAX_AGE} 的整数）、code、en、zh",
            ) from None
        bands.append(band)
    return tuple(bands)
