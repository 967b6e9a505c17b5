"""Published known-answer vectors, one test each, plus typed-error behaviour.

Sources: reference §N7 (DES, SM4, SM3), reference
§P4.5 (purse LOAD / PURCHASE), reference §C6 (PKI PIN hash, SM4-ECB(CTK, RAM)).
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from sscard.crypto import (
    BlockAlgorithm,
    BlockCipher,
    CryptoError,
    DataLengthError,
    KeyLengthError,
    PaddingError,
    UnsupportedAlgorithm,
    block_cipher,
    des_ecb_decrypt,
    des_ecb_encrypt,
    mac_alg1,
    mac_alg3,
    pad_m2,
    pboc_mac,
    purse,
    sm3,
    sm4_ecb_decrypt,
    sm4_ecb_encrypt,
    ssse,
    unpad_m2,
)
from sscard.crypto.purse import Algorithm
from sscard.crypto.ssse import SsseAlgorithm
from sscard.errors import SscardError

H = bytes.fromhex
TDES = Algorithm.TDES
SM4 = Algorithm.SM4

# --- reference §N7 ---


def test_des_fips_vector() -> None:
    key, plain, cipher = H("133457799BBCDFF1"), H("0123456789ABCDEF"), H("85E813540F0AB405")
    assert des_ecb_encrypt(key, plain) == cipher
    assert des_ecb_decrypt(key, cipher) == plain


def test_sm4_single_encryption_vector() -> None:
    key = H("0123456789abcdeffedcba9876543210")
    assert sm4_ecb_encrypt(key, key) == H("681edf34d206965e86b3e94f536e4246")
    assert sm4_ecb_decrypt(key, H("681edf34d206965e86b3e94f536e4246")) == key


def test_sm4_million_encryptions_vector() -> None:
    """GB/T 32907 A.2: 1,000,000 encryptions with one reused encryptor (~1 s)."""
    key = H("0123456789abcdeffedcba9876543210")
    encrypt = BlockCipher(key, BlockAlgorithm.SM4).encrypt_block
    block = key
    for _ in range(1_000_000):
        block = encrypt(block)
    assert block == H("595298c7c6fd271f0402f804c33d3f66")


def test_sm3_abc_vector() -> None:
    assert sm3(b"abc") == H("66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0")


def test_sm3_abcd_x16_vector() -> None:
    assert sm3(b"abcd" * 16) == H(
        "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
    )


# --- reference §P4.5 (DLK = DPK = K) ---

K = H("11223344556677888877665544332211")
TERMINAL = H("001122334455")


def test_load_session_key_vector() -> None:
    sk = purse.load_session_key(K, card_random=H("11223344"), online_counter=0, algorithm=TDES)
    assert sk == H("9B1D924E05595603")


def test_load_mac1_vector() -> None:
    sk = H("9B1D924E05595603")
    mac1 = purse.load_mac1(
        sk, balance_before=0, amount=0x1000, txn_type=0x01, terminal_id=TERMINAL, algorithm=TDES
    )
    assert mac1 == H("2988AE5A")


def test_load_mac2_vector() -> None:
    sk = H("9B1D924E05595603")
    mac2 = purse.load_mac2(
        sk,
        amount=0x1000,
        txn_type=0x01,
        terminal_id=TERMINAL,
        date_time=H("20111221214822"),
        algorithm=TDES,
    )
    assert mac2 == H("3A845BF0")


def test_purchase_session_key_vector() -> None:
    sk = purse.purchase_session_key(
        K, card_random=H("11223344"), offline_counter=0, terminal_seq=1, algorithm=TDES
    )
    assert sk == H("003238ABC57659DD")


def test_purchase_session_key_uses_low_two_bytes_of_terminal_seq() -> None:
    sk = purse.purchase_session_key(
        K, card_random=H("11223344"), offline_counter=0, terminal_seq=0xABCD0001, algorithm=TDES
    )
    assert sk == H("003238ABC57659DD")


def test_purchase_mac1_vector() -> None:
    mac1 = purse.purchase_mac1(
        H("003238ABC57659DD"),
        amount=0x1000,
        txn_type=0x06,
        terminal_id=TERMINAL,
        date_time=H("20120229135100"),
        algorithm=TDES,
    )
    assert mac1 == H("F15CAB75")


def test_purchase_mac2_vector() -> None:
    assert purse.purchase_mac2(H("003238ABC57659DD"), amount=0x1000, algorithm=TDES) == H(
        "56988A13"
    )


def test_algorithm_ids_follow_profile() -> None:
    assert Algorithm.from_byte(0x00) is TDES
    assert Algorithm.from_byte(0x04) is SM4
    with pytest.raises(UnsupportedAlgorithm) as info:
        Algorithm.from_byte(0x01)
    assert info.value.code == -14 and info.value.message_zh


# --- reference §C6 ---

PIN_BCD = H("123456")
PIN_HASH = H("3DE741F445DD357BEA4E6C3FE6437036F62B5E3EC0F00D62796EDB4305ED627F")


def test_pki_pin_hash_vector() -> None:
    assert ssse.pin_hash(PIN_BCD) == PIN_HASH


def test_pki_ctk_is_left_half_of_pin_hash() -> None:
    assert ssse.pin_hash(PIN_BCD)[:16] == H("3DE741F445DD357BEA4E6C3FE6437036")


def test_pki_pin_block_sm4_ecb_ctk_ram_vector() -> None:
    ram = H("178CEDCF32C5D7990216632170C7CD37")
    assert ssse.pki_pin_block(PIN_BCD, ram) == H("358B51056B9B9EB2C96B20E7DB7A6B8F")
    assert sm4_ecb_encrypt(PIN_HASH[:16], ram) == H("358B51056B9B9EB2C96B20E7DB7A6B8F")


# --- independent oracles: pyca CBC mode, not our loop ---


def _pyca_cbc_last(algorithm: TripleDES | algorithms.SM4, data: bytes, iv: bytes) -> bytes:
    enc = Cipher(algorithm, modes.CBC(iv)).encryptor()
    out = enc.update(data) + enc.finalize()
    return out[-len(iv) :]


def test_mac_alg1_des_matches_pyca_cbc() -> None:
    key, data, iv = H("0123456789ABCDEF"), b"card data 123", H("0011223344556677")
    expected = _pyca_cbc_last(TripleDES(key * 3), pad_m2(data, 8), iv)
    assert mac_alg1(block_cipher(key), data, iv) == expected


def test_mac_alg1_sm4_matches_pyca_cbc() -> None:
    key, data = bytes(range(16)), b"\x84\xdc\x01\x0c\x09" + b"hello"
    expected = _pyca_cbc_last(algorithms.SM4(key), pad_m2(data, 16), bytes(16))
    assert mac_alg1(block_cipher(key, BlockAlgorithm.SM4), data) == expected


def test_mac_alg3_matches_des_cbc_then_3des_final_block() -> None:
    """reference §N5: retail MAC = single-DES CBC, last block through 3DES (K1 K2 K1)."""
    key = H("0123456789ABCDEFFEDCBA9876543210")
    iv = H("A1A2A3A4A5A6A7A8")
    data = pad_m2(b"Now is the time for all ", 8)
    head = _pyca_cbc_last(TripleDES(key[:8] * 3), data[:-8], iv) if len(data) > 8 else iv
    expected = _pyca_cbc_last(TripleDES(key + key[:8]), data[-8:], head)
    assert mac_alg3(key, b"Now is the time for all ", iv) == expected


def test_pad_m2_always_pads_full_block() -> None:
    assert pad_m2(H("0000100000"), 8) == H("0000100000800000")
    assert pad_m2(bytes(8), 8) == bytes(8) + H("8000000000000000")
    assert pad_m2(b"", 16) == b"\x80" + bytes(15)


@pytest.mark.parametrize(
    "bad", [b"", H("00"), H("0000000000000000"), H("00000000000000800000000000000000")]
)
def test_unpad_m2_rejects_malformed(bad: bytes) -> None:
    with pytest.raises(PaddingError):
        unpad_m2(bad, 8)


def test_pboc_mac_is_left_four_bytes() -> None:
    cipher = block_cipher(H("003238ABC57659DD"))
    assert pboc_mac(cipher, H("00001000")) == mac_alg1(cipher, H("00001000"))[:4]


# --- SSSE 2.0 formulas (§C3.4, §C3.5) and the SM4 profile, checked against pyca directly ---


def _ecb(algorithm: TripleDES | algorithms.SM4, block: bytes) -> bytes:
    enc = Cipher(algorithm, modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


IRK = H("00112233445566778899AABBCCDDEEFF")
P8, S8 = H("1122334455667788"), H("A1B2C3D4E5F60718")
PAD8 = H("8000000000000000")


def test_internal_auth_des_formula() -> None:
    pk = _ecb(TripleDES(IRK + IRK[:8]), P8)
    assert ssse.internal_auth(IRK, P8, S8, SsseAlgorithm.DES) == _ecb(TripleDES(pk * 3), S8)


def test_internal_auth_sm4_profile() -> None:
    pk = _ecb(algorithms.SM4(IRK), P8 + PAD8)
    expected = _ecb(algorithms.SM4(pk), S8 + PAD8)[:8]
    assert ssse.internal_auth(IRK, P8, S8, SsseAlgorithm.SM4) == expected


def test_external_auth_des_formula() -> None:
    puk = H("00000000012430000000000888011100")  # sample PUK of 社保系列5
    endata = _ecb(TripleDES(puk + puk[:8]), P8)
    assert ssse.external_auth(puk, P8, S8, SsseAlgorithm.DES) == _ecb(TripleDES(endata * 3), S8)


def test_external_auth_sm4_profile() -> None:
    pk = _ecb(algorithms.SM4(IRK), P8 + PAD8)
    assert ssse.external_auth(IRK, P8, S8, 0x03) == _ecb(algorithms.SM4(pk), S8 + PAD8)[:8]


def _inv(d: bytes) -> bytes:
    return bytes(b ^ 0xFF for b in d)


def test_ssse_card_key_two_levels_des() -> None:
    code = H("330300D15600000599110145FFFFFFFF")  # EF05 rec 01 sample (§C6)
    mk = bytes(range(16))
    l1 = _ecb(TripleDES(mk + mk[:8]), code[:8] + _inv(code[:8]))
    expected = _ecb(TripleDES(l1 + l1[:8]), code[8:] + _inv(code[8:]))
    assert ssse.card_key(mk, code, SsseAlgorithm.DES) == expected


def test_ssse_card_key_two_levels_sm4() -> None:
    code = H("330300D15600000599110145FFFFFFFF")
    mk = bytes(range(16))
    l1 = _ecb(algorithms.SM4(mk), code[:8] + _inv(code[:8]))
    expected = _ecb(algorithms.SM4(l1), code[8:] + _inv(code[8:]))
    assert ssse.card_key(mk, code, SsseAlgorithm.SM4) == expected


def test_sm_mac_des_is_retail_mac_with_challenge_iv() -> None:
    key, challenge = bytes(range(16)), H("0102030405060708")
    apdu = H("04DC010C0D") + b"new data!"
    assert (
        ssse.sm_mac(key, challenge, apdu, SsseAlgorithm.DES) == mac_alg3(key, apdu, challenge)[:4]
    )


def test_sm_mac_sm4_is_cbc_mac_with_16_byte_challenge() -> None:
    key, challenge = bytes(range(16)), bytes(range(16, 32))
    apdu = H("84DC010C0D") + b"new data!"
    expected = _pyca_cbc_last(algorithms.SM4(key), pad_m2(apdu, 16), challenge)[:4]
    assert ssse.sm_mac(key, challenge, apdu, SsseAlgorithm.SM4) == expected


def test_ssf33_is_unsupported_with_typed_error() -> None:
    with pytest.raises(UnsupportedAlgorithm):
        ssse.internal_auth(IRK, P8, S8, SsseAlgorithm.SSF33)
    with pytest.raises(UnsupportedAlgorithm):
        ssse.sm_mac(IRK, bytes(8), b"", 0x07)


# --- purse SM4 profile, checked against pyca directly ---


def test_sm4_purse_session_keys_follow_profile() -> None:
    dpk = bytes(range(16))
    sk = purse.purchase_session_key(
        dpk, card_random=H("11223344"), offline_counter=0x0102, terminal_seq=0x0304, algorithm=SM4
    )
    assert sk == _ecb(algorithms.SM4(dpk), H("1122334401020304") + PAD8)
    lk = purse.load_session_key(dpk, card_random=H("11223344"), online_counter=7, algorithm=SM4)
    assert lk == _ecb(algorithms.SM4(dpk), H("1122334400078000") + PAD8)


def test_sm4_purse_mac_and_tac_follow_profile() -> None:
    sk, dtk = bytes(range(16)), bytes(range(32, 48))
    dt = H("20240101120000")
    mac1_input = H("0000100006") + TERMINAL + dt
    mac1 = purse.purchase_mac1(
        sk, amount=0x1000, txn_type=6, terminal_id=TERMINAL, date_time=dt, algorithm=SM4
    )
    assert mac1 == _pyca_cbc_last(algorithms.SM4(sk), pad_m2(mac1_input, 16), bytes(16))[:4]
    tac_input = H("0000100006") + TERMINAL + H("00000001") + dt
    tac = purse.purchase_tac(
        dtk,
        amount=0x1000,
        txn_type=6,
        terminal_id=TERMINAL,
        terminal_seq=1,
        date_time=dt,
        algorithm=SM4,
    )
    assert tac == _pyca_cbc_last(algorithms.SM4(dtk), pad_m2(tac_input, 16), bytes(16))[:4]


def test_tdes_tac_key_is_xor_of_dtk_halves() -> None:
    dtk = H("11223344556677888877665544332211")
    dt = H("20120229135100")
    tac = purse.purchase_tac(
        dtk,
        amount=0x1000,
        txn_type=6,
        terminal_id=TERMINAL,
        terminal_seq=1,
        date_time=dt,
        algorithm=TDES,
    )
    xor_key = H("9955551111555599")
    data = H("0000100006") + TERMINAL + H("00000001") + dt
    assert tac == _pyca_cbc_last(TripleDES(xor_key * 3), pad_m2(data, 8), bytes(8))[:4]
    load = purse.load_tac(
        dtk,
        new_balance=0x1000,
        online_counter=0,
        amount=0x1000,
        txn_type=1,
        terminal_id=TERMINAL,
        date_time=dt,
        algorithm=TDES,
    )
    load_data = H("0000100000000000100001") + TERMINAL + dt
    assert load == _pyca_cbc_last(TripleDES(xor_key * 3), pad_m2(load_data, 8), bytes(8))[:4]


def test_purse_diversification_both_algorithms() -> None:
    mk, d = bytes(range(16)), H("0000000012345678")
    inv = bytes(b ^ 0xFF for b in d)
    assert purse.diversify(mk, d, TDES) == _ecb(TripleDES(mk + mk[:8]), d + inv)
    assert purse.diversify(mk, d, SM4) == _ecb(algorithms.SM4(mk), d + inv)
    issuer = H("0102030405060708")
    assert purse.diversify2(mk, issuer, d, SM4) == purse.diversify(
        purse.diversify(mk, issuer, SM4), d, SM4
    )


# --- typed errors on bad input, never IndexError/KeyError, no key bytes in messages ---


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: des_ecb_encrypt(bytes(7), bytes(8)), KeyLengthError),
        (lambda: sm4_ecb_encrypt(bytes(8), bytes(16)), KeyLengthError),
        (lambda: des_ecb_encrypt(bytes(8), bytes(9)), DataLengthError),
        (lambda: BlockCipher(bytes(16), "aes"), UnsupportedAlgorithm),
        (lambda: BlockCipher(bytes(8)).encrypt_block(bytes(16)), DataLengthError),
        (lambda: mac_alg3(bytes(8), b""), KeyLengthError),
        (lambda: mac_alg1(block_cipher(bytes(8)), b"", bytes(16)), DataLengthError),
        (
            lambda: purse.purchase_session_key(
                K, card_random=bytes(3), offline_counter=0, terminal_seq=0, algorithm=TDES
            ),
            DataLengthError,
        ),
        (
            lambda: purse.load_session_key(
                K, card_random=bytes(4), online_counter=0x10000, algorithm=TDES
            ),
            DataLengthError,
        ),
        (lambda: purse.purchase_mac2(bytes(16), amount=1, algorithm=TDES), KeyLengthError),
        (lambda: purse.purchase_mac2(bytes(8), amount=-1, algorithm=TDES), DataLengthError),
        (lambda: purse.purchase_mac2(bytes(8), amount=1, algorithm=0x02), UnsupportedAlgorithm),
        (lambda: purse.diversify(bytes(24), bytes(8), TDES), KeyLengthError),
        (lambda: ssse.card_key(bytes(16), bytes(10), SsseAlgorithm.DES), DataLengthError),
        (lambda: ssse.sm_mac(bytes(16), bytes(8), b"", SsseAlgorithm.SM4), DataLengthError),
        (lambda: ssse.pin_hash(b""), DataLengthError),
    ],
)
def test_bad_input_raises_typed_bilingual_error(call: object, error: type[CryptoError]) -> None:
    with pytest.raises(error) as info:
        call()  # type: ignore[operator]
    assert isinstance(info.value, SscardError) and isinstance(info.value, ValueError)
    assert info.value.message_en and info.value.message_zh
    assert " / " in str(info.value)


def test_block_cipher_repr_hides_key() -> None:
    key = H("0123456789ABCDEFFEDCBA9876543210")
    text = repr(BlockCipher(key, BlockAlgorithm.SM4))
    assert "0123" not in text.upper() and "16 B" in text
