"""The electronic social security card (e-SSC) QR payload, declared once for both sides.

The real e-SSC QR format is not public (reference §C5, §C7); sscard uses its own
offline profile (reference part C, "sscard profile", last row) so the simulator's issuer
and the terminal's verifier agree::

    "SSC1:" + base64url( version 02 (1) ‖ issuer key ID (4) ‖ card identification
                         code (16) ‖ holder reference (16) ‖ issue time, Unix
                         seconds, big-endian (4) ‖ validity seconds, 3C (1) ‖
                         nonce (8) ‖ SM2 signature r‖s (64) )

The holder reference is HMAC-SM3(issuer's holder secret, SSN ASCII)[0:16]: opaque,
resolvable only by the issuer (online). Version 01 carried SM3(SSN)[0:16], a bare
hash that gives the SSN back by brute force in seconds from the county and a birth
year; it is retired and refused (:class:`TokenRetiredVersion`) without
being parsed any further, so its digest never reaches a screen or a log.

The signature (SM2 with SM3, Z_A over ID ``1234567812345678``) covers every byte
before it. 114 bytes is a multiple of 3, so the text never carries ``=`` padding.

Decoding never raises anything but :class:`EcardDecodeError`; its ``reason`` is the
verifier's machine reason code.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sscard.cards.ssn import InvalidSsn
from sscard.crypto import hmac_sm3
from sscard.errors import ConfigError, SscardError
from sscard.files import parse_json, read_text

PREFIX = "SSC1:"
VERSION = 0x02
#: Payload versions that were once issued and are now refused (01: SM3 of the SSN).
RETIRED_VERSIONS = frozenset({0x01})
DEFAULT_VALIDITY = 60  # seconds (byte 3C in the profile)
#: The issuer's key file (simulator): signing key pair and holder secret. The
#: verifier accepts one as a trust store too, reading only its public key.
ISSUER_SCHEMA = "sscard-ecard-issuer/2"
#: Issuer key files of payload version 01 (no holder secret): trust stores only.
OLD_ISSUER_SCHEMAS = frozenset({"sscard-ecard-issuer/1"})
HOLDER_REF_LENGTH = 16

_HEADER = struct.Struct(">B4s16s16sIB8s")  # everything the signature covers
SIGNED_LENGTH = _HEADER.size  # 50
SIGNATURE_LENGTH = 64
TOKEN_LENGTH = SIGNED_LENGTH + SIGNATURE_LENGTH  # 114

_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


class EcardDecodeError(SscardError):
    """A QR text that is not a well-formed e-SSC payload; ``reason`` says why."""

    code = -23  # illegal input (reference §C4.5)
    reason = "bad_encoding"
    message_en = "not a valid e-SSC QR payload"
    message_zh = "不是有效的电子社保卡二维码"


class TokenBadPrefix(EcardDecodeError):
    reason = "bad_prefix"
    message_en = "QR text does not start with SSC1:"
    message_zh = "二维码内容不以 SSC1: 开头"


class TokenBadEncoding(EcardDecodeError):
    code = -41  # illegal characters
    reason = "bad_encoding"
    message_en = "QR payload is not valid base64url"
    message_zh = "二维码内容不是有效的 base64url 编码"


class TokenTruncated(EcardDecodeError):
    code = -42  # bad length
    reason = "truncated"
    message_en = "QR payload is truncated"
    message_zh = "二维码内容不完整"


class TokenBadVersion(EcardDecodeError):
    reason = "bad_version"
    message_en = "QR payload version is not supported"
    message_zh = "二维码版本不受支持"


class TokenRetiredVersion(TokenBadVersion):
    reason = "retired_version"
    message_en = "QR payload version 01 is retired; ask the holder to refresh the code"
    message_zh = "二维码版本 01 已停用，请持卡人刷新二维码"


class TokenBadLength(EcardDecodeError):
    code = -42
    reason = "bad_length"
    message_en = "QR payload is longer than the e-SSC format"
    message_zh = "二维码内容长度超出电子社保卡格式"


def holder_reference(holder_secret: bytes, ssn: str) -> bytes:
    """HMAC-SM3(holder secret, SSN ASCII)[0:16]; ``x`` is normalised to ``X`` (GB 11643).

    Keyed by a secret that never leaves the issuer, so a verifier holding the
    payload cannot test candidate SSNs against it (reference part C profile, e-SSC row).
    """
    if len(holder_secret) < 16:
        raise ValueError("holder secret must be at least 16 bytes")
    text = ssn.strip().upper()
    try:
        return hmac_sm3(holder_secret, text.encode("ascii"))[:HOLDER_REF_LENGTH]
    except UnicodeEncodeError:
        raise InvalidSsn("SSN must be ASCII", "社会保障号码须为 ASCII 字符") from None


def hex_field(doc: Mapping[str, Any], name: str, length: int, source: str) -> bytes:
    """``doc[name]`` as exactly ``length`` bytes of hex, else :class:`ConfigError`.

    The one reader of the key and key-ID fields of issuer key files and trust
    stores, so both sides refuse a malformed file with the same message.
    """
    try:
        value = bytes.fromhex(str(doc[name]))
    except (KeyError, ValueError, TypeError):
        value = b""
    if len(value) != length:
        raise ConfigError(
            f"{source}: '{name}' must be {2 * length} hex digits",
            f"{source}：'{name}' 须为 {2 * length} 位十六进制数",
        )
    return value


def read_json_file(path: str | os.PathLike[str], what_en: str, what_zh: str) -> Any:
    """The JSON document in an issuer key file or trust store; :class:`ConfigError` if unreadable.

    The error names the file and the kind of failure, never the content (keys).
    """
    name = Path(path).name
    try:
        return parse_json(read_text(path))  # bounded (sscard.files)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"cannot read {what_en} {name}: {type(exc).__name__}", f"无法读取{what_zh} {name}"
        ) from exc


def _need(name: str, value: bytes, length: int) -> None:
    if len(value) != length:
        raise ValueError(f"{name} must be {length} bytes, got {len(value)}")


@dataclass(frozen=True)
class EcardToken:
    """One decoded e-SSC QR payload (version 02: the holder is an opaque reference)."""

    issuer_key_id: bytes
    card_id_code: bytes
    holder_ref: bytes = field(repr=False)
    issued_at: int
    validity: int
    nonce: bytes
    signature: bytes = bytes(SIGNATURE_LENGTH)
    version: int = VERSION

    def __post_init__(self) -> None:
        # Programming errors (the issuer builds tokens), so plain ValueError.
        _need("issuer key ID", self.issuer_key_id, 4)
        _need("card identification code", self.card_id_code, 16)
        _need("holder reference", self.holder_ref, HOLDER_REF_LENGTH)
        _need("nonce", self.nonce, 8)
        _need("signature", self.signature, SIGNATURE_LENGTH)
        if not 0 <= self.issued_at <= 0xFFFFFFFF:
            raise ValueError("issue time must fit in 4 bytes")
        if not 0 <= self.validity <= 0xFF or not 0 <= self.version <= 0xFF:
            raise ValueError("validity and version must fit in one byte")

    def signed_bytes(self) -> bytes:
        """The 50 bytes the SM2 signature covers."""
        return _HEADER.pack(
            self.version,
            self.issuer_key_id,
            self.card_id_code,
            self.holder_ref,
            self.issued_at,
            self.validity,
            self.nonce,
        )

    def to_bytes(self) -> bytes:
        return self.signed_bytes() + self.signature

    def encode(self) -> str:
        """The QR text: ``SSC1:`` + unpadded base64url of the 114 bytes."""
        return PREFIX + base64.urlsafe_b64encode(self.to_bytes()).decode("ascii").rstrip("=")

    @classmethod
    def from_bytes(cls, raw: bytes) -> EcardToken:
        """Parse the binary payload; version is checked before length (another may differ).

        A retired version (01) is refused before anything else is read from it.
        """
        if not raw:
            raise TokenTruncated()
        if raw[0] in RETIRED_VERSIONS:
            raise TokenRetiredVersion()
        if raw[0] != VERSION:
            raise TokenBadVersion()
        if len(raw) < TOKEN_LENGTH:
            raise TokenTruncated()
        if len(raw) > TOKEN_LENGTH:
            raise TokenBadLength()
        version, key_id, card, holder_ref, issued, validity, nonce = _HEADER.unpack_from(raw)
        return cls(
            issuer_key_id=key_id,
            card_id_code=card,
            holder_ref=holder_ref,
            issued_at=issued,
            validity=validity,
            nonce=nonce,
            signature=raw[SIGNED_LENGTH:],
            version=version,
        )

    @classmethod
    def decode(cls, text: str | bytes) -> EcardToken:
        """Parse QR text (as a scanner returns it: surrounding whitespace is ignored)."""
        if isinstance(text, bytes):
            try:
                text = text.decode("ascii")
            except UnicodeDecodeError:
                raise TokenBadEncoding() from None
        text = text.strip()
        if not text.startswith(PREFIX):
            raise TokenBadPrefix()
        body = text[len(PREFIX) :]
        if not _BASE64URL.fullmatch(body) or len(body) % 4 == 1:
            raise TokenBadEncoding()
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise TokenBadEncoding() from None
        return cls.from_bytes(raw)
