"""Names and numbers of the card: AIDs, DF names, FIDs, SFIs, key IDs, codes.

Declared once so the terminal applets and the simulator cannot disagree.
Sources: reference §C1-§C3 (SSSE, DF01-07, PKI, key IDs) and
reference §P1, §P3, §P5 (purse, PSAM, records). Values
marked *profile* come from the "sscard profile" sections of those pages.
"""

from __future__ import annotations

from enum import IntEnum

# ----------------------------------------------------------------- SSSE (reference §C1.1)

#: SSSE DDF name: ASCII "sx1.sh." + GBK "社会保障" (15 bytes).
SSSE_DDF_NAME = bytes.fromhex("7378312E73682EC9E7BBE1B1A3D5CF")
#: The SSF33 PSAM environment "sx2.sh.社会保障" (a PSAM document; not the user card).
PSAM_SSSE_DDF_NAME = bytes.fromhex("7378322E73682EC9E7BBE1B1A3D5CF")
#: MOHRSS registered application provider ID; also inside every card identification code.
MOHRSS_RID = bytes.fromhex("D156000005")

MF_FID = 0x3F00
EF05_FID = 0xEF05  # issuer data (发卡机构数据文件)
EF06_FID = 0xEF06  # holder basic information (持卡人基本信息)
EF07_FID = 0xEF07  # fingerprint
EF08_FID = 0xEF08  # photo
#: Short file identifiers: ``00 B2 07 2C`` reads record 7 of SFI 5 = EF05 (reference §C1.3).
EF05_SFI = 0x05
EF06_SFI = 0x06


class AppDf(IntEnum):
    """The DF01-DF07 applications; the AID is RID ‖ one byte (reference §C1.1)."""

    DF01_PUBLIC = 0x00  # 公共应用
    DF02_EMPLOYMENT = 0x01  # 就业/失业
    DF03_SOCIAL_INSURANCE_1 = 0x02  # 社会保险 1
    DF04_MEDICAL = 0x03  # 社会保险 2 / 医疗
    DF05_PERSONNEL = 0x04  # 人事
    DF06_HEALTH = 0x05  # 卫生
    DF07_RELIEF = 0x06  # 救助

    @property
    def aid(self) -> bytes:
        return MOHRSS_RID + bytes([self.value])

    @property
    def df_number(self) -> int:
        """1 for DF01 … 7 for DF07."""
        return self.value + 1


DF01_AID = AppDf.DF01_PUBLIC.aid  # D15600000500
DF04_AID = AppDf.DF04_MEDICAL.aid  # D15600000503

#: 3rd-gen PKI: DDF "PKI.社会保障", certificate ADF "SS.CERT.ADF1" (reference §C1.1).
PKI_DDF_NAME = bytes.fromhex("504B492EC9E7BBE1B1A3D5CF")
PKI_CERT_ADF_NAME = b"SS.CERT.ADF1"
PKI_EF_SIGN_PUBLIC_KEY = 0x0012
PKI_EF_SIGN_CERT = 0x0018
PKI_EF_ENC_CERT = 0x0019


class SsseKeyId(IntEnum):
    """Key IDs in P2 of INTERNAL/EXTERNAL AUTHENTICATE (reference §C2, §C3.4-3.5)."""

    IRK = 0x00  # internal authentication: the 2.0 example sends 00 88 00 00
    UK_EF06 = 0x04  # personalisation: external auth before writing EF06
    PUK = 0x06  # PIN unblock key (2.0 example 00 82 00 06)
    RKSSSE = 0x0A  # 3rd gen: read EF06; personalisation also uses 0A before writing EF05


class AlgorithmFlag(IntEnum):
    """``aa`` in the SELECT-SSSE FCI ``9F0C 03 86 01 aa`` (reference §C3.1)."""

    DES = 0x01  # DES/3DES (2nd gen)
    SSF33 = 0x02
    SM4 = 0x03  # 3rd gen


#: The spec version (EF05 rec 03) of each card generation.
SPEC_VERSION = {1: "1.00", 2: "2.00", 3: "3.00"}
#: ATR prefix before the 13 historical bytes (reference §C5).
ATR_PREFIX = bytes.fromhex("3B6D0000")

# ----------------------------------------------------------------- purse (reference §P1)

TUNION_EP_AID = bytes.fromhex("A000000632010105")
TUNION_EC_AID = bytes.fromhex("A000000632010106")
TUNION_EP_LABEL = b"MOT_T_EP"
PPSE_NAME = b"2PAY.SYS.DDF01"
PSE_NAME = b"1PAY.SYS.DDF01"
#: Legacy PBOC ED/EP selected by FID, without AID.
EP_DF_FID = 0x1001

SFI_PUBLIC = 0x15  # EF 0015, 30 B public application info
SFI_HOLDER = 0x16  # EF 0016, 55 B cardholder info
SFI_MANAGEMENT = 0x17  # EF 0017, 60 B management info
SFI_TXN_LOG = 0x18  # cyclic, 23-B transaction records
SFI_LOCAL_COMPOSITE = 0x19  # local (non-interoperable) composite records
SFI_COMPOSITE = 0x1A  # interoperable composite records, 128 B
SFI_TRIP = 0x1E  # cyclic, 48-B trip records, up to 30

EF0015_SIZE = 30
EF0016_SIZE = 55
EF0017_SIZE = 60
TXN_RECORD_SIZE = 23
TRIP_RECORD_SIZE = 48
TRIP_RECORDS_MAX = 30
COMPOSITE_RECORD_SIZE = 128

# ----------------------------------------------------------------- PSAM (reference §P3)

PSAM_DF_FID = 0x1001  # profile: the PSAM application is selected by FID
PSAM_EF_TERMINAL = 0x16  # 6-B terminal number (终端机编号)
PSAM_EF_KEY_INDEX = 0x17  # byte 0 = key index used in 8050


class TxnType(IntEnum):
    """Transaction type codes (reference §P5.1)."""

    ED_LOAD = 0x01
    EP_LOAD = 0x02
    ED_PURCHASE = 0x05
    EP_PURCHASE = 0x06
    CAPP_PURCHASE = 0x09  # composite purchase


class PurseAlgorithmId(IntEnum):
    """Algorithm ID in the 8050 response / 8070 input (profile, reference part P)."""

    TDES = 0x00
    SM4 = 0x04


class TripRecordType(IntEnum):
    """Byte 0 of an EF 1E record (reference §P5.3)."""

    EC_ENTRY = 0x01
    EC_EXIT = 0x02
    EP_ENTRY = 0x03
    EP_EXIT = 0x04
    EC_SINGLE = 0x05
    EP_SINGLE = 0x06
    EC_FARE_ADJUST = 0x07
    EP_FARE_ADJUST = 0x08
    EC_LOAD = 0x09
    EP_LOAD = 0x0A


class Industry(IntEnum):
    """Industry code of an EF 1E record (reference §P5.3)."""

    METRO = 0x01
    BUS = 0x02
    URBAN_WATER = 0x03
    TAXI = 0x04
    RENTAL = 0x05
    PUBLIC_BIKE = 0x06
    PARKING = 0x07
    COACH = 0x08
    FERRY = 0x09
    INTERCITY_RAIL = 0x0A
    AVIATION = 0x0B
    EXPRESSWAY = 0x0C
    SUBURBAN_RAIL = 0x0E


class CardCategory(IntEnum):
    """EF 0017 byte 10 (reference §P1.3)."""

    NORMAL = 1
    STUDENT = 2
    ELDERLY = 3
    TEST = 4
    MILITARY = 5


class CompositeRecordId(IntEnum):
    """Record IDs in EF 1A: bus 02 (public), metro 01 (profile)."""

    METRO = 0x01
    BUS = 0x02


class CompositeState(IntEnum):
    """State byte of a composite record (reference §P5.4)."""

    INIT = 0x00
    ENTERED = 0x01  # boarded
    EXITED = 0x02  # alighted


#: EF 0017 interoperability flag values.
INTEROP_NO = 0x0000
INTEROP_YES = 0x0001
