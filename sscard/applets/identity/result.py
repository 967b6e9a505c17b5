"""The outcome of one identity check, for a screen, the CLI and JSON.

``pass``/``fail``/``skipped`` per check with a reason code and bilingual text;
personal data only in ``released`` and masked on output unless asked otherwise
(regulation Art. 18). ``photo_on_card`` is False: the chip holds no usable photo
(reference part M sscard profile, "Hotel identity").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any, Literal

from sscard.applets.identity.reasons import CHECK_NAMES, NOTES, REASONS
from sscard.cards.privacy import (
    mask_card_id,
    mask_card_number,
    mask_date,
    mask_holder_ref,
    mask_name,
    mask_ssn,
)
from sscard.errors import ConfigError

#: The card's dates are Beijing dates (UTC+8, no daylight saving).
CHINA_TZ = timezone(timedelta(hours=8), "CST")

Status = Literal["pass", "fail", "skipped"]


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


#: How a released field is shown when redacted (the default everywhere).
_REDACT: Mapping[str, Callable[[str], str]] = MappingProxyType(
    {
        "name": mask_name,
        "ssn": mask_ssn,
        "birth_date": mask_date,
        "card_number": mask_card_number,
        "card_id_code": mask_card_id,
        "holder_ref": mask_holder_ref,
    }
)
#: Fields masked even with ``--no-redact``: the e-SSC holder reference is the
#: issuer's, to forward online, never to read at a terminal.
_ALWAYS_MASKED: Mapping[str, Callable[[str], str]] = MappingProxyType(
    {"holder_ref": mask_holder_ref}
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
    #: The chip holds no usable photo (reference part M profile, "Hotel identity").
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
        masks = _REDACT if redact else _ALWAYS_MASKED
        return {k: masks.get(k, str)(v) for k, v in self.released.items()}

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
