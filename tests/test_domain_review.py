"""Known-answer checks against the reference examples (domain review).

* reference §C4.2: the iReadCardBas spec example line, byte for byte, from a
  simulated card carrying the example's data;
* reference §C4.3 and the profile row "3rd-gen SM4 internal authentication": the
  HSM Step1 layout of the published sample and the 16-B INT block of Step2;
* reference part P profile "Metro composite record" and §P5.3: the 80DC APDUs a
  metro entry gate sends (``80 DC 01 D0 80 27 01 7D 01 01 …``, ``80 DC 00 F0 30 03 …``);
* reference §M1.6: a cross-province 2201 without ``card_sn`` is refused
  before anything is sent.
"""

from __future__ import annotations

import dataclasses
import socket
from datetime import date
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from helpers import connect
from test_transit_support import Rig, metro

from sscard.applets.keyprovider import HsmSimulator, PsamKeyProvider
from sscard.applets.ssse import SsseReader
from sscard.applets.transit import TapAccepted
from sscard.applets.unified import hsm_step1, hsm_step2, read_card_bas
from sscard.cards.ssse import AtrHistorical, CardIdCode
from sscard.crypto.ssse import internal_auth, internal_auth_block
from sscard.services.insurance.client import ClientConfig, InsuranceClient
from sscard.services.insurance.errors import InvalidRequest, PlatformUnreachable
from sscard.services.insurance.models import RegisterRequest
from sscard.simulators.card import build_card
from sscard.simulators.keys import default_key_set
from sscard.simulators.profile import CardProfile, new_card
from sscard.simulators.psam import new_psam, psam_card
from sscard.terminals import Connection, SimulatorTransport

H = bytes.fromhex
KEYS = default_key_set()
PAD8 = b"\x80" + bytes(7)

#: reference §C4.2, the spec example line.
SPEC_LINE = (
    "639900|111111198101011110|X00000019|639900D15600000500BF7C7A48FB4966|张三|"
    "00814E43238697159900BF7C7A|1.00|20101001|20201001|410100813475|终端设备号|"
)


def _with_ssse(profile: CardProfile, atr_hist: str, card_id: str, **ef05: object) -> CardProfile:
    s = profile.ssse
    new05 = dataclasses.replace(s.ef05, card_id=CardIdCode.decode(H(card_id)), **ef05)
    ssse = dataclasses.replace(s, ef05=new05, atr_historical=AtrHistorical.decode(H(atr_hist)))
    return dataclasses.replace(profile, ssse=ssse)


def test_read_card_bas_reproduces_the_spec_example_line() -> None:
    profile = _with_ssse(
        new_card("zhejiang", generation=2, seed=1),
        "00814E43238697159900BF7C7A",
        "639900D15600000500BF7C7A48FB4966",
        spec_version="1.00",
        issue_date=date(2010, 10, 1),
        expiry_date=date(2020, 10, 1),
        card_number="X00000019",
    )
    ef06 = dataclasses.replace(
        profile.ssse.ef06, ssn="111111198101011110", name="张三", name_ext=""
    )
    profile = dataclasses.replace(profile, ssse=dataclasses.replace(profile.ssse, ef06=ef06))
    psam = connect(psam_card(new_psam(H("410100813475"), key_index=1, keys=KEYS)))
    code, out = read_card_bas(
        connect(build_card(profile)), PsamKeyProvider(psam), device_number="终端设备号"
    )
    assert (code, out) == (0, SPEC_LINE)


def test_hsm_step1_has_the_published_layout_and_step2_reads_the_card() -> None:
    profile = _with_ssse(
        new_card("zhejiang", generation=3, seed=1),
        "00904A3001866033110000048A",
        "331100D156000005500509728DB46EF9",
    )
    reader = SsseReader(connect(build_card(profile)), None)
    code, step1 = hsm_step1(reader)
    fields = step1.split("|")
    assert code == 0 and step1.endswith("|") and len(fields) == 9
    assert fields[:4] == ["331100", "00904A3001866033110000048A", "03",
                          "331100D156000005500509728DB46EF9"]  # fmt: skip
    assert all(len(f) == 16 and int(f, 16) >= 0 for f in fields[4:8])
    p_key = HsmSimulator(KEYS).compute(step1)
    int_hex = p_key.split("|")[0]
    assert len(int_hex) == 32
    code, out = hsm_step2(reader, p_key)
    assert code == 0 and out.split("|")[1] == profile.ssse.ef06.ssn


def test_hsm_int_block_is_the_sm4_profile_block() -> None:
    """INT = SM4_PK(S8 ‖ 80 00…), PK = SM4_IRK(P8 ‖ 80 00…); its first 8 B = the card's answer."""
    irk, p8, s8 = bytes(range(16)), H("456FE02E253F817D"), H("A39FC0BF44CAEA80")

    def sm4(key: bytes, block: bytes) -> bytes:
        enc = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
        return enc.update(block) + enc.finalize()

    expected = sm4(sm4(irk, p8 + PAD8), s8 + PAD8)
    assert internal_auth_block(irk, p8, s8, 0x03) == expected
    assert internal_auth(irk, p8, s8, 0x03) == expected[:8]
    des_block = internal_auth_block(irk, p8, s8, 0x01)
    assert des_block == internal_auth(irk, p8, s8, 0x01) + bytes(8)


class _Spy(SimulatorTransport):
    """The in-process transport, recording every command APDU it carries."""

    sent: list[bytes]

    def transmit(self, apdu: bytes) -> bytes:
        self.sent.append(bytes(apdu))
        return super().transmit(apdu)


def test_metro_entry_sends_the_profile_composite_record_and_a_type_03_trip(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path)
    card, _ = rig.card(rig.profile("jiangsu", balance=5_000))
    spy = _Spy(card)
    spy.sent = []
    result = rig.validator(metro("entry", 2, 5)).tap(Connection(spy).connect())
    assert isinstance(result, TapAccepted), result
    dc = [a for a in spy.sent if a[:2] == H("80DC")]
    assert len(dc) == 2
    assert dc[0][:10] == H("80 DC 01 D0 80 27 01 7D 01 01")  # SFI 1A, record 01, 128 B
    assert len(dc[0]) == 5 + 128
    # 1E: 80 DC 00 F0 30, type 03 (EP entry), terminal 0000 ‖ PSAM ID, industry 01 (metro)
    assert dc[1][:6] == H("80 DC 00 F0 30 03") and len(dc[1]) == 5 + 48
    assert dc[1][6:8] == bytes(2) and dc[1][8:14] == rig.psam.terminal_id
    assert dc[1][14] == 0x01
    # both sent inside the composite purchase (8050 03 before, 8054 after)
    order = [a[:3] for a in spy.sent]
    assert order.index(H("805003")) < spy.sent.index(dc[0]) < order.index(H("805401"))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("area", "cert_type", "card_sn", "refused"),
    [
        ("340100", "03", "", True),  # Anhui SSC in Shanghai without card_sn
        ("340100", "03", "340100D15600000512345678ABCDEF01", False),
        ("340100", "02", "", False),  # ID card medium: no card, no card_sn
        ("310104", "03", "", False),  # local: not required here (1101 asks for it)
    ],
)
def test_cross_province_ssc_registration_needs_card_sn(
    tmp_path: Path, area: str, cert_type: str, card_sn: str, refused: bool
) -> None:
    config = ClientConfig(
        f"http://127.0.0.1:{_closed_port()}", "H31010400001", "徐汇测试诊所", "310104",
        timeout=0.5, query_attempts=1,
    )  # fmt: skip
    request = RegisterRequest(
        psn_no="P1", insutype="310", insuplc_admdvs=area, begntime="2025-03-01 08:00:00",
        mdtrt_cert_type=cert_type, mdtrt_cert_no="X00000019", ipt_otp_no="MZ1",
        card_sn=card_sn, psn_cert_type="01", certno="340102198001011234",
    )  # fmt: skip
    with InsuranceClient(config, tmp_path / "outbox.db", auto_sign_in=False) as client:
        if refused:
            with pytest.raises(InvalidRequest, match="card_sn"):
                client.register(request)
            assert client.outbox.rows() == []  # nothing journalled, nothing sent
        else:
            with pytest.raises(PlatformUnreachable):  # got as far as the (absent) platform
                client.register(request)
