"""Unified reader interface: iReadCardBas string, HSM Step1/Step2, return codes, GBK.

The expected iReadCardBas string is assembled here from the card profile fields in
the order of reference §C4.2, independently of ``format_card_bas``.
"""

from __future__ import annotations

import dataclasses

import pytest
from helpers import connect

from sscard.apdu import errors as sw_errors
from sscard.applets.keyprovider import (
    HsmInputError,
    HsmSimulator,
    PsamKeyProvider,
    PsamMissing,
    PsamNoRkssse,
    PsamNoSm4,
    SoftwareKeyProvider,
)
from sscard.applets.ssse import (
    CannotRevertToInitialPin,
    IllegalCard,
    InitialPinNotAllowed,
    SsseReader,
    WrongCardType,
)
from sscard.applets.unified import (
    RETURN_CODES,
    describe,
    encode_gbk,
    hsm_step1,
    hsm_step2,
    read_card_bas,
    return_code,
)
from sscard.simulators.card import build_card
from sscard.simulators.keys import default_key_set
from sscard.simulators.profile import CardProfile, new_card
from sscard.simulators.psam import new_psam, psam_card
from sscard.simulators.purse_applet import purse_card, sample_profile
from sscard.terminals import CardRemoved, Connection, NoCard, SimulatorTransport

KEYS = default_key_set()
TERMINAL = bytes.fromhex("410100813475")  # the §C4.2 spec example's terminal number
PROVINCES = ("shanghai", "jiangsu", "zhejiang", "anhui")


def expected_card_bas(profile: CardProfile, terminal: str, device: str) -> str:
    ef05, ef06 = profile.ssse.ef05, profile.ssse.ef06
    raw_id = ef05.card_id.encode()
    fields = [
        raw_id[:3].hex(),  # region: first 6 digits of the card identification code
        ef06.ssn,
        ef05.card_number[:9],
        raw_id.hex().upper(),
        ef06.name + ef06.name_ext,
        profile.ssse.atr[4:].hex().upper(),
        ef05.spec_version,
        f"{ef05.issue_date:%Y%m%d}",
        f"{ef05.expiry_date:%Y%m%d}",
        terminal,
        device,
    ]
    return "".join(f + "|" for f in fields)


@pytest.mark.parametrize("province", PROVINCES)
@pytest.mark.parametrize("generation", [2, 3])
def test_read_card_bas_matches_profile(province: str, generation: int) -> None:
    profile = new_card(province, generation=generation, seed=len(province) * generation)
    psam = connect(psam_card(new_psam(TERMINAL, key_index=1, keys=KEYS, t0=True)))
    code, out = read_card_bas(
        connect(build_card(profile)), PsamKeyProvider(psam), device_number="终端设备号"
    )
    assert code == 0
    assert out == expected_card_bas(profile, "410100813475", "终端设备号")
    assert out.count("|") == 11 and out.endswith("|")
    assert encode_gbk(out) == out.encode("gbk")


def test_read_card_bas_name_extension_and_redaction() -> None:
    profile = new_card("zhejiang", generation=3, seed=3)
    ef06 = dataclasses.replace(profile.ssse.ef06, name="买买提", name_ext="·艾力")
    profile = dataclasses.replace(profile, ssse=dataclasses.replace(profile.ssse, ef06=ef06))
    keys = SoftwareKeyProvider(KEYS, terminal_number="310000000042")
    code, out = read_card_bas(connect(build_card(profile)), keys)
    assert code == 0 and out.split("|")[4] == "买买提·艾力"
    assert out == expected_card_bas(profile, "310000000042", "")
    code, masked = read_card_bas(connect(build_card(profile)), keys, redact=True)
    assert code == 0 and ef06.ssn not in masked and "买买提" not in masked
    assert masked.split("|")[0] == out.split("|")[0] and masked.count("|") == 11


def test_read_card_bas_codes() -> None:
    gen3 = new_card("anhui", generation=3, seed=4)
    assert read_card_bas(connect(build_card(gen3)), None)[0] == -2201
    assert read_card_bas(connect(build_card(new_card("anhui", generation=2))), None)[0] == -2201
    fake = dataclasses.replace(gen3, counterfeit=True)
    code, text = read_card_bas(connect(build_card(fake)), SoftwareKeyProvider(KEYS))
    assert code == -21 and "非法卡" in text
    purse_only = connect(purse_card(sample_profile(), KEYS))
    assert read_card_bas(purse_only, SoftwareKeyProvider(KEYS))[0] == -1
    no_sm4 = PsamKeyProvider(connect(psam_card(new_psam(TERMINAL, keys=KEYS, sm4=False))))
    assert read_card_bas(connect(build_card(gen3)), no_sm4)[0] == -2202
    no_rk = PsamKeyProvider(connect(psam_card(new_psam(TERMINAL, keys=KEYS, has_rkssse=False))))
    assert read_card_bas(connect(build_card(gen3)), no_rk)[0] == -2203
    blocked = new_card("jiangsu", generation=2, state="blocked")
    assert read_card_bas(connect(build_card(blocked)), SoftwareKeyProvider(KEYS))[0] == -27265
    empty = Connection(SimulatorTransport(None))
    code, _ = read_card_bas(empty, SoftwareKeyProvider(KEYS))
    assert code in (-2, -12)


def test_return_code_table() -> None:
    cases = {
        WrongCardType(): -1,
        NoCard(): -2,
        CardRemoved(): -2,
        IllegalCard(): -21,
        InitialPinNotAllowed(): -35,
        CannotRevertToInitialPin(): -36,
        sw_errors.PinIncorrect(2): -51,
        sw_errors.PinBlocked(): -52,
        PsamMissing(): -2201,
        PsamNoSm4(): -2202,
        PsamNoRkssse(): -2203,
        sw_errors.FileNotFound(): -27266,  # 6A82 (§C4.5 example)
        sw_errors.KeyNotFound(): -27272,  # 6A88
        sw_errors.VerificationFailed(0): -25536,  # 63C0
        sw_errors.ApplicationBlocked(): -37635,  # 9303
        HsmInputError(): -23,
        ValueError("boom"): -999,
    }
    for exc, code in cases.items():
        assert return_code(exc) == code, type(exc).__name__
        en, zh = describe(code)
        assert en and zh
    assert describe(-27266) == ("card status 6A82: file not found", "卡片状态字6A82：文件未找到")
    assert {0, -1, -2, -21, -25, -35, -36, -51, -52, -2201, -2202, -2203, -2204, -999} <= set(
        RETURN_CODES
    )


def test_encode_gbk_replaces_what_gbk_cannot_hold() -> None:
    assert encode_gbk("张三|") == "张三|".encode("gbk")
    assert encode_gbk("a\U0001f600|") == b"a?|"


# --------------------------------------------------------------------------- HSM


@pytest.mark.parametrize("province", ["shanghai", "zhejiang"])
def test_hsm_two_steps(province: str) -> None:
    profile = new_card(province, generation=3, seed=7)
    reader = SsseReader(connect(build_card(profile, t0=True)), terminal_id="310000000042")
    code, step1 = hsm_step1(reader)
    assert code == 0
    fields = step1.split("|")
    assert fields[-1] == "" and len(fields) == 10  # 9 fields incl. the terminal number
    raw_id = profile.ssse.ef05.card_id.encode()
    assert fields[:4] == [raw_id[:3].hex(), profile.ssse.atr[4:].hex().upper(), "03",
                          raw_id.hex().upper()]  # fmt: skip
    assert all(len(f) == 16 for f in fields[4:8]) and fields[8] == "310000000042"
    p_key = HsmSimulator(KEYS).compute(step1)
    int_hex, ext_hex, tail = p_key.split("|")
    assert len(int_hex) == 32 and len(ext_hex) == 32 and tail == ""
    assert ext_hex[16:] == fields[7]  # EXT = E8 ‖ extSource
    code, out = hsm_step2(reader, p_key)
    assert code == 0 and out == expected_card_bas(profile, "310000000042", "")


def test_hsm_mismatch_counterfeit_and_bad_input() -> None:
    profile = new_card("anhui", generation=3, seed=8)
    hsm = HsmSimulator(KEYS)
    fake = SsseReader(connect(build_card(dataclasses.replace(profile, counterfeit=True))))
    code, step1 = hsm_step1(fake)
    assert code == 0
    assert hsm_step2(fake, hsm.compute(step1))[0] == -25
    reader = SsseReader(connect(build_card(profile)))
    assert hsm_step2(reader, "00|00|")[0] == -23  # Step2 before Step1
    code, step1 = hsm_step1(reader)
    assert hsm_step2(reader, "nothex|")[0] == -23
    code, step1 = hsm_step1(reader)
    int_hex, ext_hex, _ = hsm.compute(step1).split("|")
    bad_ext = ext_hex[:15] + ("0" if ext_hex[15] != "0" else "1") + ext_hex[16:]
    code, _ = hsm_step2(reader, f"{int_hex}|{bad_ext}|")
    assert code == -(0x63C2)  # the card refused the external authentication
    with pytest.raises(HsmInputError):
        hsm.compute("331100|00|03|")


def test_hsm_not_needed_on_second_generation() -> None:
    reader = SsseReader(connect(build_card(new_card("jiangsu", generation=2, seed=1))))
    assert hsm_step1(reader)[0] == -2204


def test_hsm_simulator_des_int_block_padding() -> None:
    """DES-family INT = the 8-B cryptogram followed by 8 zero bytes (sscard choice)."""
    step1 = "330100|00|01|330100D156000005011BA293AA4B9E55|" + "|".join(["00" * 8] * 4) + "|"
    int_hex = HsmSimulator(KEYS).compute(step1).split("|")[0]
    assert int_hex.endswith("0" * 16) and int_hex[:16] != "0" * 16
