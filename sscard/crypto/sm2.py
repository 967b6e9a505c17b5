"""SM2 signatures (GB/T 32918, recommended curve) behind one small interface.

pyca/cryptography has no SM2 curve (reference §N5), so:

* :class:`PurePythonSm2` — our own readable implementation (Jacobian
  coordinates on Python ints, SM3 from pyca, nonce from :mod:`secrets`).
  Always available; the reference the other backend is tested against.
* :class:`TongsuoSm2` — the ``tongsuopy`` wheel (bundled Tongsuo, C speed,
  ~20-30x faster here). Tongsuo cannot take another distinguishing ID
  (reference §N6.2), so it serves only the default ID
  ``1234567812345678`` (the e-card QR profile's) and hands other IDs to the
  pure-Python code. Its nonce comes from OpenSSL's CSPRNG.

Keys and signatures are raw bytes: private key 32 B, public key 64 B
``x ‖ y``, signature 64 B ``r ‖ s``. Malformed input makes :meth:`verify`
return ``False`` and :meth:`sign` raise :class:`Sm2KeyError`; never a crash.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from sscard.crypto.errors import DataLengthError, Sm2KeyError
from sscard.crypto.sm3 import sm3

__all__ = [
    "DEFAULT_UID",
    "PurePythonSm2",
    "Sm2Backend",
    "TongsuoSm2",
    "default_backend",
    "public_key_from_private",
]

#: GM/T 0009 default distinguishing ID; the e-card QR profile uses it.
DEFAULT_UID = b"1234567812345678"

# Recommended curve (reference §N7.4).
P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0

_Jac = tuple[int, int, int]  # Jacobian (X, Y, Z): x = X/Z², y = Y/Z³; Z = 0 is infinity
_INF: _Jac = (1, 1, 0)


class Sm2Backend(Protocol):
    """What the SDK needs from an SM2 implementation."""

    @property
    def name(self) -> str: ...

    def generate_keypair(self) -> tuple[bytes, bytes]:
        """Return ``(private 32 B, public 64 B x‖y)``."""
        ...

    def sign(self, private: bytes, message: bytes, uid: bytes = DEFAULT_UID) -> bytes:
        """Return the 64-byte ``r ‖ s`` signature of ``message`` (SM3 with Z_A)."""
        ...

    def verify(
        self, public: bytes, message: bytes, signature: bytes, uid: bytes = DEFAULT_UID
    ) -> bool:
        """True only for a well-formed, valid signature."""
        ...


# --- curve arithmetic (a = −3, so doubling uses 3(X − Z²)(X + Z²)) ---


def _double(pt: _Jac) -> _Jac:
    x, y, z = pt
    if z == 0 or y == 0:
        return _INF
    yy = y * y % P
    s = 4 * x * yy % P
    zz = z * z % P
    m = 3 * (x - zz) * (x + zz) % P
    x3 = (m * m - 2 * s) % P
    return x3, (m * (s - x3) - 8 * yy * yy) % P, 2 * y * z % P


def _add(p1: _Jac, p2: _Jac) -> _Jac:
    if p1[2] == 0:
        return p2
    if p2[2] == 0:
        return p1
    x1, y1, z1 = p1
    x2, y2, z2 = p2
    z1z1, z2z2 = z1 * z1 % P, z2 * z2 % P
    u1, u2 = x1 * z2z2 % P, x2 * z1z1 % P
    s1, s2 = y1 * z2 * z2z2 % P, y2 * z1 * z1z1 % P
    h, r = (u2 - u1) % P, (s2 - s1) % P
    if h == 0:
        return _double(p1) if r == 0 else _INF
    hh = h * h % P
    hhh, v = h * hh % P, u1 * hh % P
    x3 = (r * r - hhh - 2 * v) % P
    return x3, (r * (v - x3) - s1 * hhh) % P, h * z1 * z2 % P


def _affine(pt: _Jac) -> tuple[int, int]:
    zinv = pow(pt[2], -1, P)
    zinv2 = zinv * zinv % P
    return pt[0] * zinv2 % P, pt[1] * zinv2 * zinv % P


def _mul2(k1: int, p1: _Jac, k2: int, p2: _Jac) -> _Jac:
    """k1·P1 + k2·P2 with one shared doubling chain (Shamir's trick)."""
    both = _add(p1, p2)
    acc = _INF
    for i in range(max(k1.bit_length(), k2.bit_length()) - 1, -1, -1):
        acc = _double(acc)
        bits = ((k1 >> i) & 1, (k2 >> i) & 1)
        if bits == (1, 1):
            acc = _add(acc, both)
        elif bits == (1, 0):
            acc = _add(acc, p1)
        elif bits == (0, 1):
            acc = _add(acc, p2)
    return acc


_G: _Jac = (GX, GY, 1)


def _base_mul(k: int) -> tuple[int, int]:
    return _affine(_mul2(k, _G, 0, _INF))


def _parse_private(private: bytes) -> int:
    """32-byte big-endian d with 1 ≤ d ≤ n − 2 (GB/T 32918.1 §6.1)."""
    if len(private) != 32:
        raise Sm2KeyError(
            f"SM2 private key must be 32 bytes, got {len(private)}",
            f"SM2 私钥须为 32 字节，实际 {len(private)} 字节",
        )
    d = int.from_bytes(private)
    if not 1 <= d <= N - 2:
        raise Sm2KeyError("SM2 private key out of range", "SM2 私钥超出范围")
    return d


def _parse_public(public: bytes) -> tuple[int, int] | None:
    """64-byte x ‖ y on the curve (cofactor 1, so on-curve suffices), else None."""
    if len(public) != 64:
        return None
    x, y = int.from_bytes(public[:32]), int.from_bytes(public[32:])
    if x >= P or y >= P or (y * y - (x * x * x + A * x + B)) % P:
        return None
    return x, y


def _parse_signature(signature: bytes) -> tuple[int, int] | None:
    """64-byte r ‖ s with 1 ≤ r, s ≤ n − 1, else None."""
    if len(signature) != 64:
        return None
    r, s = int.from_bytes(signature[:32]), int.from_bytes(signature[32:])
    return (r, s) if 1 <= r < N and 1 <= s < N else None


def _digest(public: tuple[int, int], message: bytes, uid: bytes) -> int:
    """e = SM3(Z_A ‖ M), Z_A = SM3(ENTL ‖ ID ‖ a ‖ b ‖ Gx ‖ Gy ‖ xA ‖ yA)."""
    if len(uid) >= 8192:
        raise DataLengthError("SM2 user ID longer than 8191 bytes", "SM2 用户标识超过 8191 字节")
    fields = (A, B, GX, GY, public[0], public[1])
    z = sm3((8 * len(uid)).to_bytes(2) + uid + b"".join(v.to_bytes(32) for v in fields))
    return int.from_bytes(sm3(z + message))


def public_key_from_private(private: bytes) -> bytes:
    """The 64-byte public key x ‖ y = d·G."""
    x, y = _base_mul(_parse_private(private))
    return x.to_bytes(32) + y.to_bytes(32)


class PurePythonSm2:
    """GB/T 32918.2 signatures in plain Python (readable reference, ~10² ops/s)."""

    name = "pure-python"

    def generate_keypair(self) -> tuple[bytes, bytes]:
        private = (secrets.randbelow(N - 2) + 1).to_bytes(32)
        return private, public_key_from_private(private)

    def sign(
        self, private: bytes, message: bytes, uid: bytes = DEFAULT_UID, *, k: int | None = None
    ) -> bytes:
        """Sign; ``k`` fixes the nonce and exists ONLY for known-answer tests."""
        d = _parse_private(private)
        if k is not None and not 1 <= k < N:
            raise DataLengthError("SM2 test nonce k out of range", "SM2 测试随机数 k 超出范围")
        e = _digest(_base_mul(d), message, uid)
        while True:
            nonce = k if k is not None else secrets.randbelow(N - 1) + 1
            r = (e + _base_mul(nonce)[0]) % N
            s = pow(1 + d, -1, N) * (nonce - r * d) % N
            if r and r + nonce != N and s:
                return r.to_bytes(32) + s.to_bytes(32)
            if k is not None:
                raise DataLengthError("SM2 test nonce k is unusable", "SM2 测试随机数 k 不可用")

    def verify(
        self, public: bytes, message: bytes, signature: bytes, uid: bytes = DEFAULT_UID
    ) -> bool:
        point, rs = _parse_public(public), _parse_signature(signature)
        if point is None or rs is None:
            return False
        r, s = rs
        t = (r + s) % N
        if t == 0:
            return False
        x1y1 = _mul2(s, _G, t, (point[0], point[1], 1))
        if x1y1[2] == 0:
            return False
        return (_digest(point, message, uid) + _affine(x1y1)[0]) % N == r


class TongsuoSm2:
    """SM2 through ``tongsuopy`` for the default ID; other IDs use :class:`PurePythonSm2`."""

    name = "tongsuopy"

    def __init__(self) -> None:
        from tongsuopy.crypto import hashes
        from tongsuopy.crypto.asymciphers import ec
        from tongsuopy.crypto.exceptions import InvalidSignature

        self._ec: Any = ec
        self._algorithm: Any = ec.ECDSA(hashes.SM3())
        self._invalid: type[Exception] = InvalidSignature
        self._pure = PurePythonSm2()
        self._public_key = lru_cache(maxsize=64)(self._load_public)

    def _load_public(self, x: int, y: int) -> Any:
        return self._ec.EllipticCurvePublicNumbers(x, y, self._ec.SM2()).public_key()

    def generate_keypair(self) -> tuple[bytes, bytes]:
        while True:
            key = self._ec.generate_private_key(self._ec.SM2())
            numbers = key.private_numbers()
            if numbers.private_value <= N - 2:  # SM2 needs 1 + d invertible
                pub = numbers.public_numbers
                return numbers.private_value.to_bytes(32), pub.x.to_bytes(32) + pub.y.to_bytes(32)

    def sign(self, private: bytes, message: bytes, uid: bytes = DEFAULT_UID) -> bytes:
        if uid != DEFAULT_UID:
            return self._pure.sign(private, message, uid)
        key = self._ec.derive_private_key(_parse_private(private), self._ec.SM2())
        r, s = decode_dss_signature(key.sign(message, self._algorithm))
        return int(r).to_bytes(32) + int(s).to_bytes(32)

    def verify(
        self, public: bytes, message: bytes, signature: bytes, uid: bytes = DEFAULT_UID
    ) -> bool:
        if uid != DEFAULT_UID:
            return self._pure.verify(public, message, signature, uid)
        point, rs = _parse_public(public), _parse_signature(signature)
        if point is None or rs is None:
            return False
        try:
            key = self._public_key(*point)
            key.verify(encode_dss_signature(*rs), message, self._algorithm)
        except (self._invalid, ValueError):
            return False
        return True


@lru_cache(maxsize=1)
def default_backend() -> Sm2Backend:
    """The fastest backend that imports here: tongsuopy, else pure Python."""
    try:
        return TongsuoSm2()
    except ImportError:
        return PurePythonSm2()
