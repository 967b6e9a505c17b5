"""Reason codes, operator notes and check names, each with English and Chinese text.

Every check result carries a machine reason code and bilingual text, so a refusal
is explained to the holder and to complaint handling (regulation Art. 20) and the
audit row stays free of personal data (Art. 18). Blacklist reasons (Art. 21: lost,
forged or misused cards) reuse the shared list's texts (sscard.services.lists).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from sscard.applets.ecard import REASONS as QR_REASONS
from sscard.services.lists import BlacklistReason

#: reason code -> (English, Chinese). Card-medium reasons; QR reasons are ``qr_`` + the
#: verifier's code (sscard.applets.ecard.REASONS).
REASONS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "app_active": ("social security application is active", "社会保障应用状态正常"),
        "app_blocked": (
            "social security application is blocked; contact the issuing place or 12333",
            "社会保障应用已锁定，请联系发卡地或拨打12333",
        ),
        "not_ssc": ("not a social security card", "不是社会保障卡"),
        "unreadable": ("card data could not be read", "无法读取卡片数据"),
        "no_keys": (
            "no PSAM or keys to authenticate this card",
            "无PSAM或密钥，无法认证此卡",
        ),
        "genuine": ("card passed internal authentication", "卡片内部认证通过"),
        "counterfeit": (
            "card failed internal authentication: possibly forged (Art. 21)",
            "卡片内部认证失败，疑似伪造卡（第二十一条）",
        ),
        "valid": ("card is within its validity period", "卡片在有效期内"),
        "expired": (
            "card has expired; renew it at the issuing place",
            "卡片已过有效期，请到发卡地换领",
        ),
        "not_listed": ("card is not reported lost or blacklisted", "卡片未挂失、未列入黑名单"),
        "reported_lost": (BlacklistReason.LOST.text_en, BlacklistReason.LOST.text_zh),
        "cancelled": (BlacklistReason.CANCELLED.text_en, BlacklistReason.CANCELLED.text_zh),
        "replaced": (BlacklistReason.REPLACED.text_en, BlacklistReason.REPLACED.text_zh),
        "listed_counterfeit": (
            BlacklistReason.COUNTERFEIT.text_en,
            BlacklistReason.COUNTERFEIT.text_zh,
        ),
        "listed_misuse": (BlacklistReason.MISUSE.text_en, BlacklistReason.MISUSE.text_zh),
        "blacklisted": (
            BlacklistReason.UNSPECIFIED.text_en,
            BlacklistReason.UNSPECIFIED.text_zh,
        ),
        "trusted_region": ("issuing region is accepted", "发卡地区在信任列表中"),
        "untrusted_region": (
            "issuing region is not accepted here",
            "发卡地区不在本场所的信任列表中",
        ),
        "untrusted_region_noted": (
            "issuing region is not in the trust list (accepted by policy)",
            "发卡地区不在信任列表中（按策略予以接受）",
        ),
        "ssn_ok": (
            "SSN check digit and birth date / sex agree",
            "社会保障号码校验位正确，与出生日期、性别一致",
        ),
        "ssn_invalid": ("SSN check digit is wrong", "社会保障号码校验位错误"),
        "ssn_mismatch": (
            "SSN disagrees with the birth date or sex on the card",
            "社会保障号码与卡内出生日期或性别不一致",
        ),
        "pin_ok": ("PIN verified", "密码验证通过"),
        "pin_wrong": ("PIN wrong", "密码错误"),
        "pin_locked": ("PIN locked; unblock it at the issuing place", "密码已锁定，请到发卡地解锁"),
        "pin_missing": ("PIN required at this counter", "本窗口须验证密码"),
        "pin_format": ("a PIN has 6 digits", "密码应为6位数字"),
        "pin_initial": (
            "the initial PIN cannot be used; change it first",
            "初始密码不能办理业务，请先修改密码",
        ),
        "not_required": ("not required by this policy", "本场景策略不要求"),
        "not_reached": ("not checked: the card could not be read", "未检查：无法读取卡片"),
        "not_in_qr": (
            "not applicable to an e-SSC QR code (the issuer vouches for it)",
            "电子社保卡二维码不适用（由签发机构保证）",
        ),
        "qr_not_accepted": (
            "e-SSC QR codes are not accepted in this scenario; present the card",
            "本场景不接受电子社保卡二维码，请出示实体卡",
        ),
        **{f"qr_{code}": text for code, text in QR_REASONS.items()},
    }
)

#: Things the operator must do, shown with the result.
NOTES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "face_match_required": (
            "the chip holds no photo: match the holder's face or photo before registration",
            "卡内无照片：登记前须核验持卡人人脸或照片",
        ),
        "concession_unknown": (
            "an e-SSC QR code carries no age: ask for proof before granting a concession",
            "电子社保卡二维码不含年龄信息：减免票须另行核验",
        ),
    }
)

#: Checks in the order they are run and shown.
CARD_CHECKS = ("application", "internal_auth", "expiry", "blacklist", "region", "ssn", "pin")
QR_CHECKS = ("ecard_qr", "application", "internal_auth", "expiry", "blacklist", "region")
CHECK_NAMES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "application": ("application status", "应用状态"),
        "internal_auth": ("genuine card", "真卡认证"),
        "expiry": ("validity", "有效期"),
        "blacklist": ("loss / blacklist", "挂失/黑名单"),
        "region": ("issuing region", "发卡地区"),
        "ssn": ("SSN consistency", "社会保障号码一致性"),
        "pin": ("PIN", "密码"),
        "ecard_qr": ("e-SSC QR code", "电子社保卡二维码"),
    }
)

_BLACKLIST_CODES = {
    BlacklistReason.UNSPECIFIED: "blacklisted",
    BlacklistReason.LOST: "reported_lost",
    BlacklistReason.CANCELLED: "cancelled",
    BlacklistReason.REPLACED: "replaced",
    BlacklistReason.COUNTERFEIT: "listed_counterfeit",
    BlacklistReason.MISUSE: "listed_misuse",
}
