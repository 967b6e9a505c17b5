"""Simulated e-SSC issuer: signs the sscard-profile QR payload for a card image.

The real electronic social security card is issued by the national platform and
its QR format is not public (reference §C5, §C7). This issuer implements the sscard
profile (reference part C, "sscard profile", e-SSC row; codec in
:mod:`sscard.cards.ecard_qr`) so the terminal-side verifier
(:mod:`sscard.applets.ecard`) can be exercised end to end. Its key pair and its
holder secret (the HMAC-SM3 key of the payload's holder reference, version 02) live
in a JSON file marked TEST KEY (``sscard-ecard-issuer/2``, created 0600); the key
ID defaults to the first 4 bytes of SM3(public key), so two generated issuers never
collide by chance. Only the issuer can resolve a holder reference
(:meth:`IssuerKey.holder_reference`); verifiers get the public key alone.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sscard.cards.ecard_qr import (
    DEFAULT_VALIDITY,
    ISSUER_SCHEMA,
    OLD_ISSUER_SCHEMAS,
    EcardToken,
    hex_field,
    holder_reference,
    read_json_file,
)
from sscard.crypto import Sm2Backend, Sm2KeyError, default_backend, sm3
from sscard.crypto.sm2 import public_key_from_private
from sscard.errors import ConfigError, DependencyMissing
from sscard.files import write_private
from sscard.simulators.profile import CardProfile, atomic_write_text

TEST_KEY_WARNING = (
    "TEST KEY - sscard simulator only, never use in production / "
    "测试密钥，仅供 sscard 模拟器使用，切勿用于生产"
)
QR_ENCODER_HINT = "pip install 'segno>=1.6,<2'"
HOLDER_SECRET_LENGTH = 32


@dataclass(frozen=True)
class IssuerKey:
    """An e-SSC issuer's SM2 key pair, 4-byte key ID and holder secret (secrets not in repr)."""

    key_id: bytes
    private_key: bytes = field(repr=False)
    public_key: bytes
    holder_secret: bytes = field(repr=False, default=b"")

    def __post_init__(self) -> None:
        if len(self.holder_secret) != HOLDER_SECRET_LENGTH:
            raise ValueError(f"holder secret must be {HOLDER_SECRET_LENGTH} bytes")

    @classmethod
    def generate(cls, backend: Sm2Backend | None = None, key_id: bytes | None = None) -> IssuerKey:
        private, public = (backend or default_backend()).generate_keypair()
        return cls(
            key_id if key_id is not None else sm3(public)[:4],
            private,
            public,
            secrets.token_bytes(HOLDER_SECRET_LENGTH),
        )

    def holder_reference(self, ssn: str) -> bytes:
        """The payload's opaque holder reference for ``ssn`` (issuer side only)."""
        return holder_reference(self.holder_secret, ssn)

    @classmethod
    def from_json(cls, doc: Any, source: str = "issuer key") -> IssuerKey:
        if isinstance(doc, dict) and doc.get("schema") in OLD_ISSUER_SCHEMAS:
            raise ConfigError(
                f"{source}: a version 01 issuer key (no holder secret); "
                "delete it to create a version 02 key",
                f"{source}：01 版签发密钥（无持卡人密钥），请删除后重新生成 02 版密钥",
            )
        if not isinstance(doc, dict) or doc.get("schema") != ISSUER_SCHEMA:
            raise ConfigError(
                f"{source}: not an {ISSUER_SCHEMA} file", f"{source}：不是 {ISSUER_SCHEMA} 文件"
            )
        key = cls(
            hex_field(doc, "key_id", 4, source),
            hex_field(doc, "private_key", 32, source),
            hex_field(doc, "public_key", 64, source),
            hex_field(doc, "holder_secret", HOLDER_SECRET_LENGTH, source),
        )
        try:
            matches = public_key_from_private(key.private_key) == key.public_key
        except Sm2KeyError:  # out-of-range private key
            matches = False
        if not matches:
            raise ConfigError(
                f"{source}: public key does not match the private key",
                f"{source}：公钥与私钥不匹配",
            )
        return key

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> IssuerKey:
        return cls.from_json(read_json_file(path, "issuer key", "签发密钥"), Path(path).name)

    @classmethod
    def load_or_create(cls, path: str | os.PathLike[str]) -> tuple[IssuerKey, bool]:
        """Load the key file, or generate one there; the flag says whether it is new."""
        if Path(path).exists():
            return cls.load(path), False
        key = cls.generate()
        key.save(path)
        return key, True

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": ISSUER_SCHEMA,
            "warning": TEST_KEY_WARNING,
            "test_key": True,
            "key_id": self.key_id.hex().upper(),
            "private_key": self.private_key.hex().upper(),
            "public_key": self.public_key.hex().upper(),
            "holder_secret": self.holder_secret.hex().upper(),
        }

    def trust_entry(self) -> dict[str, str]:
        """The public half, as one entry of an ``sscard-ecard-trust/1`` file."""
        return {"key_id": self.key_id.hex().upper(), "public_key": self.public_key.hex().upper()}

    def save(self, path: str | os.PathLike[str]) -> None:
        """Atomic write; the temp file is created 0600, so the key is never world-readable."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(self.to_json(), ensure_ascii=False, indent=2) + "\n")


def write_trust_store(path: str | os.PathLike[str], keys: list[IssuerKey]) -> None:
    """Write the verifier's trust store (public keys only, never the holder secret)."""
    doc = {"schema": "sscard-ecard-trust/1", "issuers": [k.trust_entry() for k in keys]}
    atomic_write_text(path, json.dumps(doc, indent=2) + "\n")


class EcardIssuer:
    """Signs fresh e-SSC tokens: new nonce and current time for every call."""

    def __init__(
        self,
        key: IssuerKey,
        *,
        backend: Sm2Backend | None = None,
        clock: Callable[[], float] = time.time,
        validity: int = DEFAULT_VALIDITY,
    ) -> None:
        self.key = key
        self.backend = backend if backend is not None else default_backend()
        self.clock = clock
        self.validity = validity

    def issue(
        self,
        card_id_code: bytes,
        ssn: str,
        *,
        issued_at: int | None = None,
        nonce: bytes | None = None,
    ) -> EcardToken:
        """A signed token; ``issued_at``/``nonce`` are fixed only by tests."""
        unsigned = EcardToken(
            issuer_key_id=self.key.key_id,
            card_id_code=card_id_code,
            holder_ref=self.key.holder_reference(ssn),
            issued_at=int(self.clock()) if issued_at is None else issued_at,
            validity=self.validity,
            nonce=secrets.token_bytes(8) if nonce is None else nonce,
        )
        signature = self.backend.sign(self.key.private_key, unsigned.signed_bytes())
        return replace(unsigned, signature=signature)

    def issue_for(self, profile: CardProfile) -> EcardToken:
        """A token for a simulated card (EF05 rec 01 and EF06 rec 08)."""
        return self.issue(profile.ssse.ef05.card_id.encode(), profile.ssse.ef06.ssn)


def write_qr_png(payload: str, path: str | os.PathLike[str], *, scale: int = 4) -> None:
    """Write ``payload`` as a QR code PNG (segno: pure Python, no Pillow; EC level M)."""
    try:
        import segno
    except ImportError:
        raise DependencyMissing(
            f"writing QR images needs segno: {QR_ENCODER_HINT}",
            f"生成二维码图片需要 segno：{QR_ENCODER_HINT}",
        ) from None
    qr = segno.make(payload, error="m", micro=False)
    image = io.BytesIO()
    qr.save(image, kind="png", scale=scale, border=4)
    try:
        write_private(path, image.getvalue())  # 0600: the code names a card and a holder
    except OSError as exc:
        name = Path(path).name
        raise ConfigError(f"cannot write {name}: {exc.strerror}", f"无法写入 {name}") from exc
