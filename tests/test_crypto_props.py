"""Hypothesis properties of sscard.crypto: round trips, MAC sensitivity, profile variants."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sscard.crypto import (
    BlockAlgorithm,
    block_cipher,
    default_backend,
    des_ecb_decrypt,
    des_ecb_encrypt,
    mac_alg1,
    mac_alg3,
    pad_m2,
    purse,
    sm4_ecb_decrypt,
    sm4_ecb_encrypt,
    ssse,
    unpad_m2,
)
from sscard.crypto.purse import Algorithm
from sscard.crypto.sm2 import PurePythonSm2, public_key_from_private
from sscard.crypto.ssse import SsseAlgorithm

des_keys = st.sampled_from([8, 16, 24]).flatmap(lambda n: st.binary(min_size=n, max_size=n))
key16 = st.binary(min_size=16, max_size=16)
bytes4 = st.binary(min_size=4, max_size=4)
bytes6 = st.binary(min_size=6, max_size=6)
bytes7 = st.binary(min_size=7, max_size=7)
bytes8 = st.binary(min_size=8, max_size=8)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)


@given(data=st.binary(max_size=64), block_size=st.sampled_from([8, 16]))
def test_pad_unpad_round_trip(data: bytes, block_size: int) -> None:
    padded = pad_m2(data, block_size)
    assert len(padded) % block_size == 0 and len(padded) > len(data)
    assert unpad_m2(padded, block_size) == data


@given(
    key=des_keys,
    blocks=st.integers(1, 4).flatmap(lambda n: st.binary(min_size=8 * n, max_size=8 * n)),
)
def test_des_family_encrypt_decrypt_round_trip(key: bytes, blocks: bytes) -> None:
    assert des_ecb_decrypt(key, des_ecb_encrypt(key, blocks)) == blocks


@given(key=key16, block=st.binary(min_size=16, max_size=16))
def test_sm4_encrypt_decrypt_round_trip(key: bytes, block: bytes) -> None:
    assert sm4_ecb_decrypt(key, sm4_ecb_encrypt(key, block)) == block


@given(k8=bytes8, block=bytes8)
def test_two_key_3des_with_equal_halves_is_single_des(k8: bytes, block: bytes) -> None:
    assert des_ecb_encrypt(k8 + k8, block) == des_ecb_encrypt(k8, block)


@given(
    algorithm=st.sampled_from([BlockAlgorithm.DES, BlockAlgorithm.SM4]),
    key=key16,
    data=st.binary(min_size=1, max_size=40),
    position=st.integers(min_value=0),
    flip=st.integers(1, 255),
)
def test_mac_changes_when_any_data_byte_changes(
    algorithm: BlockAlgorithm, key: bytes, data: bytes, position: int, flip: int
) -> None:
    i = position % len(data)
    changed = data[:i] + bytes([data[i] ^ flip]) + data[i + 1 :]
    cipher = block_cipher(key, algorithm)
    assert mac_alg1(cipher, data) != mac_alg1(cipher, changed)
    if algorithm is BlockAlgorithm.DES:
        assert mac_alg3(key, data) != mac_alg3(key, changed)


@given(data=st.binary(max_size=15))
def test_mac_distinguishes_data_from_its_own_padding(data: bytes) -> None:
    """Method 2 is unambiguous: data and data ‖ 80 get different MACs."""
    cipher = block_cipher(bytes(range(16)), BlockAlgorithm.SM4)
    assert mac_alg1(cipher, data) != mac_alg1(cipher, data + b"\x80")


@given(
    sk=bytes8,
    amount=u32,
    txn_type=st.integers(0, 255),
    terminal_id=bytes6,
    date_time=bytes7,
    field=st.sampled_from(["amount", "txn_type", "terminal_id", "date_time"]),
)
def test_purchase_mac1_depends_on_every_field(
    sk: bytes, amount: int, txn_type: int, terminal_id: bytes, date_time: bytes, field: str
) -> None:
    fields: dict[str, int | bytes] = {
        "amount": amount,
        "txn_type": txn_type,
        "terminal_id": terminal_id,
        "date_time": date_time,
    }
    base = purse.purchase_mac1(sk, algorithm=Algorithm.TDES, **fields)  # type: ignore[arg-type]
    value = fields[field]
    if isinstance(value, int):
        fields[field] = value ^ 1
    else:
        fields[field] = bytes([value[0] ^ 1]) + value[1:]
    assert purse.purchase_mac1(sk, algorithm=Algorithm.TDES, **fields) != base  # type: ignore[arg-type]


@settings(max_examples=50)
@given(
    dpk=key16,
    dtk=key16,
    card_random=bytes4,
    counter=u16,
    seq=u32,
    amount=u32,
    terminal_id=bytes6,
    date_time=bytes7,
)
def test_purse_sm4_profile_is_deterministic_and_differs_from_3des(
    dpk: bytes,
    dtk: bytes,
    card_random: bytes,
    counter: int,
    seq: int,
    amount: int,
    terminal_id: bytes,
    date_time: bytes,
) -> None:
    def purchase(algorithm: Algorithm) -> tuple[bytes, bytes, bytes, bytes]:
        sk = purse.purchase_session_key(
            dpk,
            card_random=card_random,
            offline_counter=counter,
            terminal_seq=seq,
            algorithm=algorithm,
        )
        mac1 = purse.purchase_mac1(
            sk,
            amount=amount,
            txn_type=6,
            terminal_id=terminal_id,
            date_time=date_time,
            algorithm=algorithm,
        )
        mac2 = purse.purchase_mac2(sk, amount=amount, algorithm=algorithm)
        tac = purse.purchase_tac(
            dtk,
            amount=amount,
            txn_type=6,
            terminal_id=terminal_id,
            terminal_seq=seq,
            date_time=date_time,
            algorithm=algorithm,
        )
        return sk, mac1, mac2, tac

    sm4 = purchase(Algorithm.SM4)
    assert sm4 == purchase(Algorithm.SM4)
    assert len(sm4[0]) == 16 and all(len(m) == 4 for m in sm4[1:])
    tdes = purchase(Algorithm.TDES)
    assert len(tdes[0]) == 8
    assert sm4[0][:8] != tdes[0]
    # A 4-byte MAC pair may collide by chance (2^-32); all three at once is 2^-96.
    assert sm4[1:] != tdes[1:]


@settings(max_examples=50)
@given(mk=key16, card_random=bytes4, counter=u16, factor=bytes8)
def test_load_and_diversification_sm4_differ_from_3des(
    mk: bytes, card_random: bytes, counter: int, factor: bytes
) -> None:
    for fn in (
        lambda a: purse.diversify(mk, factor, a),
        lambda a: purse.load_session_key(
            mk, card_random=card_random, online_counter=counter, algorithm=a
        ),
    ):
        assert fn(Algorithm.SM4) == fn(Algorithm.SM4)
        assert fn(Algorithm.SM4)[:8] != fn(Algorithm.TDES)[:8]


@settings(max_examples=50)
@given(
    key=key16,
    p8=bytes8,
    s8=bytes8,
    challenge=st.binary(min_size=16, max_size=16),
    apdu=st.binary(max_size=40),
)
def test_ssse_sm4_profile_is_deterministic_and_differs_from_des(
    key: bytes, p8: bytes, s8: bytes, challenge: bytes, apdu: bytes
) -> None:
    for fn in (ssse.internal_auth, ssse.external_auth):
        sm4 = fn(key, p8, s8, SsseAlgorithm.SM4)
        assert len(sm4) == 8 and sm4 == fn(key, p8, s8, SsseAlgorithm.SM4)
        assert sm4 != fn(key, p8, s8, SsseAlgorithm.DES)
    sm4_mac = ssse.sm_mac(key, challenge, apdu, SsseAlgorithm.SM4)
    des_mac = ssse.sm_mac(key, challenge[:8], apdu, SsseAlgorithm.DES)
    assert sm4_mac == ssse.sm_mac(key, challenge, apdu, SsseAlgorithm.SM4)
    assert len(sm4_mac) == len(des_mac) == 4
    assert ssse.card_key(key, challenge, SsseAlgorithm.SM4) != ssse.card_key(
        key, challenge, SsseAlgorithm.DES
    )


@settings(max_examples=5, deadline=None)
@given(
    private=st.integers(1, 2**255).map(lambda d: d.to_bytes(32)), message=st.binary(max_size=100)
)
def test_sm2_sign_verify_round_trip(private: bytes, message: bytes) -> None:
    public = public_key_from_private(private)
    for backend in (PurePythonSm2(), default_backend()):
        signature = backend.sign(private, message)
        assert backend.verify(public, message, signature)
        assert not backend.verify(public, message + b"!", signature)
