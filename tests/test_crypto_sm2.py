"""SM2: the GB/T 32918.5 vector (reference §N7.4), both backends, malformed input."""

from __future__ import annotations

import contextlib
import sys

import pytest

from sscard.crypto import sm2
from sscard.crypto.errors import DataLengthError, Sm2KeyError
from sscard.crypto.sm2 import (
    DEFAULT_UID,
    PurePythonSm2,
    Sm2Backend,
    TongsuoSm2,
    default_backend,
    public_key_from_private,
)

H = bytes.fromhex
D = H("3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8")
PUB = H(
    "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
    "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"
)
K = int("59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21", 16)
SIG = H(
    "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
    "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA"
)
MSG = b"message digest"

PURE = PurePythonSm2()


def _backends() -> list[Sm2Backend]:
    found: list[Sm2Backend] = [PURE]
    with contextlib.suppress(ImportError):
        found.append(TongsuoSm2())
    return found


BACKENDS = _backends()
IDS = [b.name for b in BACKENDS]


def test_public_key_from_standard_private_key() -> None:
    assert public_key_from_private(D) == PUB


def test_pure_python_sign_with_standard_k_gives_standard_signature() -> None:
    assert PURE.sign(D, MSG, DEFAULT_UID, k=K) == SIG


@pytest.mark.parametrize("backend", BACKENDS, ids=IDS)
def test_verify_standard_signature(backend: Sm2Backend) -> None:
    assert backend.verify(PUB, MSG, SIG)


def test_default_backend_verifies_standard_signature() -> None:
    assert default_backend().verify(PUB, MSG, SIG, DEFAULT_UID)


def test_default_backend_is_tongsuopy_when_importable() -> None:
    pytest.importorskip("tongsuopy")
    assert default_backend().name == "tongsuopy"


def test_default_backend_falls_back_to_pure_python(monkeypatch: pytest.MonkeyPatch) -> None:
    # Fault: the wheel is not installed (None in sys.modules makes the import fail).
    for name in [m for m in sys.modules if m.split(".")[0] == "tongsuopy"] + ["tongsuopy"]:
        monkeypatch.setitem(sys.modules, name, None)
    default_backend.cache_clear()
    try:
        backend = default_backend()
        assert backend.name == "pure-python"
        assert backend.verify(PUB, MSG, SIG)
    finally:
        default_backend.cache_clear()


@pytest.mark.parametrize("backend", BACKENDS, ids=IDS)
def test_tampered_inputs_do_not_verify(backend: Sm2Backend) -> None:
    assert not backend.verify(PUB, b"message digesT", SIG)
    assert not backend.verify(PUB, MSG, SIG[:31] + bytes([SIG[31] ^ 1]) + SIG[32:])
    assert not backend.verify(PUB, MSG, SIG[:63] + bytes([SIG[63] ^ 1]))
    other_pub = public_key_from_private((2).to_bytes(32))
    assert not backend.verify(other_pub, MSG, SIG)
    assert not backend.verify(PUB, MSG, SIG, b"another user id")


N_BYTES = sm2.N.to_bytes(32)
P_BYTES = sm2.P.to_bytes(32)


@pytest.mark.parametrize(
    ("public", "signature"),
    [
        (PUB[:63], SIG),  # short key
        (b"\x04" + PUB, SIG),  # SEC1 prefix is not our format
        (PUB[:32] + bytes(32), SIG),  # point not on the curve
        (P_BYTES + PUB[32:], SIG),  # x out of the field
        (bytes(64), SIG),  # (0, 0) is not on the curve
        (PUB, SIG[:63]),  # short signature
        (PUB, bytes(32) + SIG[32:]),  # r = 0
        (PUB, SIG[:32] + bytes(32)),  # s = 0
        (PUB, N_BYTES + SIG[32:]),  # r = n
        (PUB, SIG[:32] + N_BYTES),  # s = n
        (PUB, b"\xff" * 64),  # r, s > n
        (PUB, SIG[:32] + (sm2.N - int.from_bytes(SIG[:32])).to_bytes(32)),  # r + s = n
    ],
)
@pytest.mark.parametrize("backend", BACKENDS, ids=IDS)
def test_malformed_inputs_are_false_not_crash(
    backend: Sm2Backend, public: bytes, signature: bytes
) -> None:
    assert backend.verify(public, MSG, signature) is False


@pytest.mark.parametrize(
    "private", [D[:31], bytes(32), (sm2.N - 1).to_bytes(32), N_BYTES, b"\xff" * 32]
)
@pytest.mark.parametrize("backend", BACKENDS, ids=IDS)
def test_sign_rejects_malformed_private_key(backend: Sm2Backend, private: bytes) -> None:
    with pytest.raises(Sm2KeyError) as info:
        backend.sign(private, MSG)
    assert info.value.message_zh
    assert private.hex() not in str(info.value).lower()


@pytest.mark.parametrize("k", [0, sm2.N, sm2.N + 5])
def test_out_of_range_test_nonce_is_a_typed_error(k: int) -> None:
    with pytest.raises(DataLengthError):
        PURE.sign(D, MSG, k=k)


@pytest.mark.parametrize("signer", BACKENDS, ids=IDS)
@pytest.mark.parametrize("verifier", BACKENDS, ids=IDS)
def test_cross_backend_round_trip_default_uid(signer: Sm2Backend, verifier: Sm2Backend) -> None:
    signature = signer.sign(D, b"SSC1 payload")
    assert len(signature) == 64
    assert verifier.verify(PUB, b"SSC1 payload", signature)


@pytest.mark.parametrize("backend", BACKENDS, ids=IDS)
def test_custom_uid_is_used(backend: Sm2Backend) -> None:
    uid = b"ALICE123@YAHOO.COM"
    signature = backend.sign(D, MSG, uid)
    assert PURE.verify(PUB, MSG, signature, uid)
    assert not PURE.verify(PUB, MSG, signature, DEFAULT_UID)
    assert backend.verify(PUB, MSG, signature, uid)


@pytest.mark.parametrize("backend", BACKENDS, ids=IDS)
def test_nonce_is_random(backend: Sm2Backend) -> None:
    assert backend.sign(D, MSG) != backend.sign(D, MSG)


@pytest.mark.parametrize("backend", BACKENDS, ids=IDS)
def test_generated_keypair_is_consistent(backend: Sm2Backend) -> None:
    private, public = backend.generate_keypair()
    assert len(private) == 32 and len(public) == 64
    assert public_key_from_private(private) == public
    assert backend.verify(public, b"x", backend.sign(private, b"x"))
    assert backend.generate_keypair()[0] != private
