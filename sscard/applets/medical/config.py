"""The desk's configuration file, so a deployment changes no code.

The platform URL, the institution (``fixmedins_code``, treatment area
``mdtrtarea_admvs``: always configured, never derived from the card,
docs/reference.md part M sscard profile "Area codes"), the operator and the
profile's choices (``psn_setlway`` / ``acct_used_flag``, the filing check).
Unknown keys and wrong types are refused, never dropped.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sscard.applets.medical.desk import FrontDesk, Notify
from sscard.errors import ConfigError
from sscard.files import parse_toml, read_text
from sscard.services.audit import default_path as audit_default_path
from sscard.services.insurance import ClientConfig, InsuranceClient, PlatformFilingCheck
from sscard.sqlite import state_dir


@dataclass(frozen=True)
class DeskConfig:
    """The desk's configuration file (``examples/medical.toml``).

    ``[platform] url, timeout``; ``[institution] fixmedins_code, fixmedins_name,
    mdtrtarea_admvs``; ``[desk] operator, operator_name, outbox, dept_code,
    dept_name, med_type, insutype, acct_used_flag, psn_setlway, filing_check
    ("platform" | "none"), pin_required, audit_log``. Env ``SSCARD_INSURANCE_URL``
    overrides the URL. The outbox defaults to ``medical-outbox.db`` in the state
    directory (``$SSCARD_STATE_DIR``, else XDG state, ~/.local/state/sscard); a
    relative ``outbox`` in the file is taken from there too, never from the current
    directory (a desk PC's working folder changes with the shortcut that starts it).
    ``audit_log`` "" is the shared privacy audit log (``$SSCARD_AUDIT_DB``, else the
    state directory), written only when a person match is refused.
    """

    url: str
    fixmedins_code: str = "H31010400001"
    fixmedins_name: str = "sscard test clinic"
    mdtrtarea_admvs: str = "310000"
    outbox: Path = None  # type: ignore[assignment]  # __post_init__: the state directory
    operator: str = "0001"
    operator_name: str = "front desk"
    dept_code: str = ""
    dept_name: str = ""
    med_type: str = "11"
    insutype: str = ""
    acct_used_flag: str = "0"
    psn_setlway: str = "01"
    filing_check: str = "platform"
    pin_required: bool = False
    timeout: float = 15.0
    audit_log: str = ""

    def __post_init__(self) -> None:
        if self.outbox is None:
            object.__setattr__(self, "outbox", state_dir() / "medical-outbox.db")

    @classmethod
    def load(cls, path: str | Path | None, *, env: Mapping[str, str] = os.environ) -> DeskConfig:
        """Read ``path`` (None: defaults only); the URL must come from it or the env."""
        values: dict[str, Any] = {}
        if path is not None:
            name = Path(path).name
            try:
                data = parse_toml(read_text(path))  # bounded reader (sscard.files)
            except OSError as exc:
                raise ConfigError(
                    f"cannot read {name}: {exc.strerror}", f"无法读取配置文件 {name}"
                ) from None
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{name}: {exc}", f"{name} 不是有效的 TOML") from None
            except UnicodeDecodeError:
                raise ConfigError(f"{name} is not UTF-8 text", f"{name} 不是 UTF-8 文本") from None
            values = _flatten(data, name)
        if env.get("SSCARD_INSURANCE_URL"):
            values["url"] = env["SSCARD_INSURANCE_URL"]
        if not values.get("url"):
            raise ConfigError(
                "no platform URL: give --config FILE or set SSCARD_INSURANCE_URL",
                "未配置医保平台地址：请用 --config 指定配置文件或设置 SSCARD_INSURANCE_URL",
            )
        if "outbox" in values:
            outbox = Path(str(values["outbox"])).expanduser()
            values["outbox"] = outbox if outbox.is_absolute() else state_dir() / outbox
        try:
            config = cls(**values)
        except TypeError as exc:
            raise ConfigError(f"configuration: {exc}", "配置项错误") from None
        if config.filing_check not in ("platform", "none"):
            raise ConfigError(
                "filing_check must be 'platform' or 'none'", "filing_check 须为 platform 或 none"
            )
        return config

    def client_config(self) -> ClientConfig:
        return ClientConfig(
            self.url,
            self.fixmedins_code,
            self.fixmedins_name,
            self.mdtrtarea_admvs,
            opter=self.operator,
            opter_name=self.operator_name,
            timeout=self.timeout,
        )

    def open_client(self) -> InsuranceClient:
        return InsuranceClient(self.client_config(), self.outbox)

    def front_desk(self, client: InsuranceClient, *, notify: Notify | None = None) -> FrontDesk:
        check = PlatformFilingCheck(client) if self.filing_check == "platform" else None
        return FrontDesk(
            client,
            filing_check=check,
            insutype=self.insutype,
            acct_used_flag=self.acct_used_flag,
            psn_setlway=self.psn_setlway,
            audit=Path(self.audit_log) if self.audit_log else audit_default_path(),
            notify=notify,
        )


_KEYS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "platform": {"url": str, "timeout": (int, float)},
    "institution": {"fixmedins_code": str, "fixmedins_name": str, "mdtrtarea_admvs": str},
    "desk": {
        "operator": str,
        "operator_name": str,
        "outbox": str,
        "dept_code": str,
        "dept_name": str,
        "med_type": str,
        "insutype": str,
        "acct_used_flag": str,
        "psn_setlway": str,
        "filing_check": str,
        "pin_required": bool,
        "audit_log": str,
    },
}


def _flatten(data: dict[str, Any], name: str) -> dict[str, Any]:
    """Check sections, keys and types (a typo must not be dropped silently)."""
    out: dict[str, Any] = {}
    for section, values in data.items():
        known = _KEYS.get(section)
        if known is None or not isinstance(values, dict):
            raise ConfigError(
                f"{name}: unknown section [{section}]", f"{name}：未知配置节 [{section}]"
            )
        for key, value in values.items():
            kind = known.get(key)
            if kind is None:
                raise ConfigError(
                    f"{name}: unknown key {section}.{key}", f"{name}：未知配置项 {section}.{key}"
                )
            if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
                raise ConfigError(
                    f"{name}: {section}.{key} has the wrong type",
                    f"{name}：{section}.{key} 类型错误",
                )
            out[key] = (
                float(value) if key == "timeout" and isinstance(value, int | float) else value
            )
    return out
