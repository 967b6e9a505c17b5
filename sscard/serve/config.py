"""``sscard serve`` settings: one TOML file (schema ``sscard-serve/1``) plus CLI overrides.

Secure defaults (docs/reader-service.md, "Configuration"): loopback only, an empty Origin allow-list (a
browser page can do nothing until its origin is named), masked data for every origin
unless it is listed with ``full_data = true``, one operation per reader with a bounded
wait, a PIN try at most every 3 s per reader, 64 KiB bodies, 20 requests/s per client.
A typo in the file is refused, never ignored. See docs/reader-service.md.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sscard.errors import ConfigError
from sscard.files import parse_toml, read_text

SCHEMA = "sscard-serve/1"
DEFAULT_PORT = 27301
TEST_KEYS_WARNING = (
    "WARNING: card keys = TEST (the simulator's published key set): for test cards only, "
    "never with real cards or patients / 警告：正在使用测试卡密钥（模拟器公开的密钥集），"
    "仅限测试卡，切勿用于真实社保卡或患者"
)
LOOPBACK = ("127.0.0.1", "::1")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _error(en: str, zh: str) -> ConfigError:
    return ConfigError(f"serve configuration: {en}", f"读卡服务配置：{zh}")


def normalize_origin(url: str) -> str:
    """``scheme://host[:port]`` exactly as a browser sends it in ``Origin``.

    Only http and https, no path, no wildcard, default port dropped, lower case. The
    ``null`` origin (sandboxed frames, file://) and ``*`` are refused: a list entry
    must name one real page origin.
    """
    text = url.strip()
    if not text or "*" in text or text.lower() == "null":
        raise _error(
            f"origin {url!r} is not one exact page origin", f"来源 {url!r} 不是确切的网页来源"
        )
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if (
        parts.scheme not in _DEFAULT_PORTS
        or not parts.hostname
        or port == -1
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username
        or parts.password
    ):
        raise _error(
            f"origin {url!r} must be http(s)://host[:port] without a path",
            f"来源 {url!r} 应为 http(s)://主机[:端口]，不含路径",
        )
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS[parts.scheme]:
        host = f"{host}:{port}"
    return f"{parts.scheme}://{host}"


@dataclass(frozen=True)
class OriginRule:
    """One allowed page origin; ``full_data``: it gets unmasked personal data."""

    url: str
    full_data: bool = False


@dataclass(frozen=True)
class ServeConfig:
    """Everything the service needs; every path is explicit (None = the default place)."""

    port: int = DEFAULT_PORT
    bind: str = "127.0.0.1"
    origins: tuple[OriginRule, ...] = ()
    #: Requests without an Origin header: programs on this machine (curl, a HIS client).
    allow_local_clients: bool = True
    local_full_data: bool = False
    pairing: bool = False
    busy_wait_s: float = 10.0
    op_timeout_s: float = 20.0
    max_body_bytes: int = 64 * 1024
    rate_per_s: float = 20.0
    rate_burst: int = 40
    pin_interval_s: float = 3.0
    #: Card keys: "test" (the simulator's TEST keys), a key-set file, or None.
    keys: str | None = None
    psam_reader: str | None = None
    initial_pin: str | None = None
    terminal_id: str = "sscard-serve"
    device_number: str = ""
    identity_policy: Path | None = None
    ecard_trust: Path | None = None
    replay_db: Path | None = None
    audit_db: Path | None = None
    audit: bool = True
    #: Readers whose names contain one of these are not offered (e.g. the PSAM slot).
    ignore_readers: tuple[str, ...] = ()

    @property
    def test_keys(self) -> bool:
        """The simulator's published TEST key set is in use: fine for test cards, never
        for real ones (``GET /v1/version`` says so, the console warns at start)."""
        return self.keys == "test"

    def __post_init__(self) -> None:
        if self.bind not in LOOPBACK:
            raise _error(
                f"bind must be 127.0.0.1 or ::1, not {self.bind!r} (the service is local only)",
                f"只能绑定 127.0.0.1 或 ::1，不能是 {self.bind!r}（仅限本机）",
            )
        if not 0 <= self.port <= 65535:
            raise _error(f"port {self.port} out of range", f"端口 {self.port} 超出范围")
        for name in ("busy_wait_s", "op_timeout_s", "rate_per_s", "pin_interval_s"):
            if getattr(self, name) < 0:
                raise _error(f"{name} must not be negative", f"{name} 不能为负数")
        if self.max_body_bytes < 256 or self.rate_burst < 1:
            raise _error("max_body_bytes >= 256 and rate_burst >= 1", "请求上限或突发数过小")
        seen = set()
        for rule in self.origins:
            if rule.url in seen:
                raise _error(f"origin {rule.url} listed twice", f"来源 {rule.url} 重复")
            seen.add(rule.url)

    def origin(self, origin: str) -> OriginRule | None:
        """The rule for an ``Origin`` header value (exact match), or None."""
        for rule in self.origins:
            if rule.url == origin:
                return rule
        return None

    def with_origins(self, allow: Iterable[str] = (), full: Iterable[str] = ()) -> ServeConfig:
        """Add ``--allow-origin`` / ``--full-data-origin`` values from the command line."""
        rules = {r.url: r for r in self.origins}
        for url in allow:
            norm = normalize_origin(url)
            rules.setdefault(norm, OriginRule(norm))
        for url in full:
            norm = normalize_origin(url)
            rules[norm] = OriginRule(norm, full_data=True)
        return replace(self, origins=tuple(rules.values()))

    @classmethod
    def load(cls, path: str | Path) -> ServeConfig:
        """Read a ``sscard-serve/1`` TOML file; unknown keys are errors."""
        p = Path(path)
        try:
            data = parse_toml(read_text(p))  # bounded reader (sscard.files)
        except OSError as exc:
            raise _error(f"cannot read {p.name}: {exc.strerror}", f"无法读取 {p.name}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise _error(
                f"{p.name} is not valid TOML: {exc}", f"{p.name} 不是有效的 TOML"
            ) from None
        return cls.from_dict(data, base=p.parent)

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: Path | None = None) -> ServeConfig:
        data = dict(data)
        if data.pop("schema", SCHEMA) != SCHEMA:
            raise _error(f"schema must be {SCHEMA!r}", f"schema 应为 {SCHEMA!r}")
        origins = data.pop("origin", [])
        if not isinstance(origins, list):
            raise _error("[[origin]] must be an array of tables", "[[origin]] 应为表数组")
        rules = []
        for entry in origins:
            if (
                not isinstance(entry, dict)
                or set(entry) - {"url", "full_data"}
                or "url" not in entry
            ):
                raise _error(
                    "each [[origin]] has url and optional full_data", "每个 [[origin]] 需有 url"
                )
            rules.append(
                OriginRule(normalize_origin(str(entry["url"])), bool(entry.get("full_data", False)))
            )
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {"origins": tuple(rules)}
        for key, value in data.items():
            if key not in known or key == "origins":
                raise _error(f"unknown setting {key!r}", f"未知设置 {key!r}")
            values[key] = _coerce(key, value, base)
        try:
            return cls(**values)
        except TypeError as exc:
            raise _error(str(exc), "设置类型错误") from None


_PATHS = {"identity_policy", "ecard_trust", "replay_db", "audit_db"}
_FLOATS = {"busy_wait_s", "op_timeout_s", "rate_per_s", "pin_interval_s"}
_INTS = {"port", "max_body_bytes", "rate_burst"}
_BOOLS = {"allow_local_clients", "local_full_data", "pairing", "audit"}


def _coerce(key: str, value: Any, base: Path | None) -> Any:
    """Type-check one value; relative paths are relative to the configuration file."""
    if key in _BOOLS:
        ok = isinstance(value, bool)
    elif key in _INTS:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif key in _FLOATS:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif key == "ignore_readers":
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        value = tuple(value) if ok else value
    else:
        ok = isinstance(value, str)
    if not ok:
        raise _error(f"{key} has the wrong type", f"{key} 类型错误")
    if key in _PATHS or (key == "keys" and value != "test"):
        path = Path(value).expanduser()
        path = path if path.is_absolute() or base is None else base / path
        return str(path) if key == "keys" else path
    return value


__all__ = ["DEFAULT_PORT", "SCHEMA", "OriginRule", "ServeConfig", "normalize_origin"]
