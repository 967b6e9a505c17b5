"""Offline verifier of electronic social security card (e-SSC) QR codes, and the QR router.

The public e-SSC is verified online only (reference §C5; reference §M3);
sscard adds an offline profile (reference part C, "sscard profile", e-SSC row) that a gate
or front desk checks without a network: the issuer key ID is in the trust store, the
SM2 signature (SM3, ID ``1234567812345678``) is valid, ``now − issue time`` is within
the validity (at most 60 s) give or take the clock skew (5 s), and the nonce has not
been seen (a shared :class:`~sscard.services.replay_cache.ReplayCache`).

Every input yields an :class:`EcardResult` with a machine reason code and bilingual
text, never an exception. An accepted code releases the card identification code and
the holder reference (payload version 02), never the SSN: the reference is keyed by
the issuer's secret, so a verifier cannot turn it back into an SSN, and it is shown
masked on every output path (only the issuer resolves it, online). A version 01 code
(it carried SM3 of the SSN) is refused as ``retired_version``.

:func:`route_qr` is the profile's "multi-code fusion" router (reference part M,
sscard profile): ``SSC1:`` goes to this verifier, anything else is handed back as
"relay to EcQuery" (the medical-insurance e-voucher is verified by the platform).
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from sscard.cards.ecard_qr import (
    ISSUER_SCHEMA,  # an issuer key file is accepted as a trust store
    OLD_ISSUER_SCHEMAS,
    PREFIX,
    EcardDecodeError,
    EcardToken,
    TokenBadEncoding,
    TokenBadLength,
    TokenBadPrefix,
    TokenBadVersion,
    TokenRetiredVersion,
    TokenTruncated,
    hex_field,
    read_json_file,
)
from sscard.cards.privacy import mask_card_id, mask_holder_ref
from sscard.crypto import Sm2Backend, default_backend
from sscard.errors import ConfigError, DependencyMissing
from sscard.files import read_bytes
from sscard.services.replay_cache import ReplayCache

TRUST_SCHEMA = "sscard-ecard-trust/1"
MAX_VALIDITY_S = 60
DEFAULT_SKEW_S = 5.0

Outcome = Literal["accepted", "rejected", "relay"]

#: reason code -> (English, Chinese). Decode reasons come from the codec's errors.
REASONS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "ok": ("e-SSC QR code is valid", "电子社保卡二维码有效"),
        **{
            cls.reason: (cls.message_en, cls.message_zh)
            for cls in (
                TokenTruncated,
                TokenBadEncoding,
                TokenBadPrefix,
                TokenBadVersion,
                TokenRetiredVersion,
                TokenBadLength,
            )
        },
        "unknown_issuer": (
            "QR code issuer is not in the trust list",
            "二维码签发机构不在信任列表中",
        ),
        "bad_signature": ("QR code signature is invalid", "二维码签名无效"),
        "expired": (
            "QR code has expired; ask the holder to refresh it",
            "二维码已过期，请持卡人刷新",
        ),
        "not_yet_valid": (
            "QR code is issued in the future; check the terminal clock",
            "二维码签发时间晚于当前时间，请检查终端时钟",
        ),
        "replayed": ("QR code has already been used", "二维码已被使用"),
        "not_ecard": (
            "not an e-SSC code; relay it to EcQuery",
            "非电子社保卡二维码，请转交 EcQuery 处理",
        ),
    }
)


@dataclass(frozen=True)
class EcardResult:
    """What a verification says: outcome, reason code, bilingual text, released data."""

    outcome: Outcome
    reason: str
    token: EcardToken | None = field(default=None, repr=False)

    @property
    def accepted(self) -> bool:
        return self.outcome == "accepted"

    @property
    def message_en(self) -> str:
        return REASONS[self.reason][0]

    @property
    def message_zh(self) -> str:
        return REASONS[self.reason][1]

    def bilingual(self) -> str:
        return f"{self.message_en} / {self.message_zh}"

    @property
    def card_id_code(self) -> bytes | None:
        """Released only for an accepted code."""
        return self.token.card_id_code if self.accepted and self.token else None

    @property
    def holder_ref(self) -> bytes | None:
        """The issuer-keyed holder reference; released only for an accepted code.

        For forwarding to the issuer (online); never shown whole (:meth:`to_dict`).
        """
        return self.token.holder_ref if self.accepted and self.token else None

    def to_dict(self, redact: bool = True) -> dict[str, Any]:
        """JSON-ready. The card identification code is masked unless ``redact`` is
        False; the holder reference is masked always (verifiers never
        print it unmasked)."""
        out: dict[str, Any] = {
            "outcome": self.outcome,
            "reason": self.reason,
            "message_en": self.message_en,
            "message_zh": self.message_zh,
        }
        if self.card_id_code is not None and self.holder_ref is not None and self.token:
            card_id = self.card_id_code.hex().upper()
            out.update(
                issuer_key_id=self.token.issuer_key_id.hex().upper(),
                card_id_code=mask_card_id(card_id) if redact else card_id,
                region=self.card_id_code[:3].hex().upper(),
                holder_ref=mask_holder_ref(self.holder_ref),
                issued_at=self.token.issued_at,
            )
        return out


@dataclass(frozen=True)
class TrustStore:
    """Issuer public keys by 4-byte key ID (the payload's issuer key ID field)."""

    keys: Mapping[bytes, bytes]

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", MappingProxyType(dict(self.keys)))

    def public_key(self, key_id: bytes) -> bytes | None:
        return self.keys.get(key_id)

    @classmethod
    def from_json(cls, doc: Any, source: str = "trust store") -> TrustStore:
        """``sscard-ecard-trust/1`` (``issuers``: key_id, public_key) or an issuer key file."""
        if not isinstance(doc, dict):
            raise ConfigError(f"{source}: not a JSON object", f"{source}：不是 JSON 对象")
        schema = doc.get("schema")
        if schema == ISSUER_SCHEMA or schema in OLD_ISSUER_SCHEMAS:
            entries: Any = [doc]  # its public half only (never the holder secret)
        elif schema == TRUST_SCHEMA:
            entries = doc.get("issuers")
        else:
            raise ConfigError(
                f"{source}: schema must be {TRUST_SCHEMA} or {ISSUER_SCHEMA}",
                f"{source}：schema 须为 {TRUST_SCHEMA} 或 {ISSUER_SCHEMA}",
            )
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ConfigError(
                f"{source}: 'issuers' must be a list", f"{source}：'issuers' 须为列表"
            )
        return cls(
            {
                hex_field(e, "key_id", 4, source): hex_field(e, "public_key", 64, source)
                for e in entries
            }
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TrustStore:
        return cls.from_json(read_json_file(path, "trust store", "信任列表"), Path(path).name)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": TRUST_SCHEMA,
            "issuers": [
                {"key_id": k.hex().upper(), "public_key": v.hex().upper()}
                for k, v in sorted(self.keys.items())
            ],
        }


class EcardVerifier:
    """Checks e-SSC QR codes offline; safe to share a replay cache across processes."""

    def __init__(
        self,
        trust: TrustStore,
        replay: ReplayCache,
        *,
        clock: Callable[[], float] = time.time,
        skew: float = DEFAULT_SKEW_S,
        max_validity: int = MAX_VALIDITY_S,
        backend: Sm2Backend | None = None,
    ) -> None:
        self.trust = trust
        self.replay = replay
        self.clock = clock
        self.skew = skew
        self.max_validity = max_validity
        self.backend = backend if backend is not None else default_backend()

    def verify(self, text: str | bytes) -> EcardResult:
        """Decode, then issuer, signature, time window, single use: the first failure wins.

        The nonce is recorded last, so a forged or stale code cannot burn a real one.
        """
        try:
            token = EcardToken.decode(text)
        except EcardDecodeError as exc:
            return EcardResult("rejected", exc.reason)
        public = self.trust.public_key(token.issuer_key_id)
        if public is None:
            return EcardResult("rejected", "unknown_issuer", token)
        if not self.backend.verify(public, token.signed_bytes(), token.signature):
            return EcardResult("rejected", "bad_signature", token)
        now = self.clock()
        window = min(token.validity, self.max_validity)
        if token.issued_at - now > self.skew:
            return EcardResult("rejected", "not_yet_valid", token)
        if now - token.issued_at > window + self.skew:
            return EcardResult("rejected", "expired", token)
        # Keep the nonce as long as this token could still pass the window check.
        expires_at = token.issued_at + window + self.skew
        if not self.replay.consume(token.issuer_key_id, token.nonce, expires_at, now):
            return EcardResult("rejected", "replayed", token)
        return EcardResult("accepted", "ok", token)


def route_qr(text: str | bytes, verifier: EcardVerifier) -> EcardResult:
    """Multi-code fusion: ``SSC1:`` codes are verified here, everything else is relayed."""
    if isinstance(text, bytes):
        text = text.decode("ascii", errors="replace")
    if text.strip().startswith(PREFIX):
        return verifier.verify(text)
    return EcardResult("relay", "not_ecard")


DECODER_HINT = "pip install 'zxing-cpp>=3,<4' 'pillow>=10,<14'"


def read_qr_image(path: str | os.PathLike[str]) -> list[str]:
    """The texts of every QR code in an image file (PNG, JPEG, ...), via zxing-cpp + Pillow."""
    try:
        import zxingcpp
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise DependencyMissing(
            f"reading QR images needs zxing-cpp and Pillow: {DECODER_HINT}",
            f"读取二维码图片需要 zxing-cpp 和 Pillow：{DECODER_HINT}",
        ) from None
    name = Path(path).name
    try:
        data = read_bytes(path)  # bounded reader (sscard.files): no device, no 20 GB file
        with Image.open(io.BytesIO(data)) as image:
            gray = image.convert("L")
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise ConfigError(
            f"cannot read image {name}: {type(exc).__name__}", f"无法读取图片 {name}"
        ) from exc
    return [
        r.text
        for r in zxingcpp.read_barcodes(
            gray, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
        )
    ]
