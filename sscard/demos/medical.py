"""Demo scene: an Anhui cardholder settles a clinic visit in Shanghai (异地就医直接结算).

Article 13 of the delta regulation: a filed insured person pays at a hospital in
another province with the social security card, settled directly. The scene starts
the simulated national platform (temporary ledger), enrols two Anhui (Hefei)
cardholders, one with a filing (备案) for Shanghai and one without, reads each card
at the desk (card in slot 0, PSAM in slot 1 for the 3rd-gen keys) and runs the
front-desk flow of sscard.applets.medical (reference §M1.2, §M1.6).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from sscard.applets.keyprovider import PsamKeyProvider
from sscard.applets.medical import (
    CardIdentity,
    DeskConfig,
    FilingRequired,
    FrontDesk,
    PreSettlement,
    VisitAborted,
    VisitPlan,
    read_identity,
)
from sscard.cards.privacy import mask_card_number, mask_name
from sscard.demos.stage import Stage
from sscard.simulators.card import build_card
from sscard.simulators.insurance_platform import InsurancePlatform
from sscard.simulators.keys import default_key_set
from sscard.simulators.profile import CardProfile, new_card
from sscard.simulators.psam import new_psam, psam_card

SHANGHAI = "310000"  # the clinic's medical-insurance area
#: Seeds of two generated Anhui cards issued in Hefei (340100).
FILED_SEED, UNFILED_SEED = 2, 10

VISIT = [  # feedetl_sn, med_list_codg, medins_list_codg, name, cnt, pric
    ("1", "XA01AA001", "H-ZC-001", "普通门诊诊查费 consultation", "1", "30.00"),
    ("2", "XC02CT001", "H-JC-210", "胸部CT平扫 chest CT", "1", "380.00"),
    ("3", "XJ01CA001", "H-YP-102", "阿莫西林胶囊 amoxicillin", "2", "18.50"),
    ("4", "BN02BE001", "H-YP-377", "布洛芬缓释胶囊 ibuprofen (class B)", "1", "42.00"),
    ("5", "ZF0001", "H-ZF-009", "自费敷料 dressing (self-paid)", "1", "12.00"),
]


def _write_visit(path: Path) -> Path:
    lines = ["feedetl_sn,med_list_codg,medins_list_codg,medins_list_name,cnt,pric"]
    lines += [",".join(row) for row in VISIT]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _enrol(platform: InsurancePlatform, profile: CardProfile, *, filed: bool) -> str:
    return platform.enrol_card(profile, filing_to=SHANGHAI if filed else None)


def _read(stage: Stage, profile: CardProfile, keys: PsamKeyProvider) -> CardIdentity:
    conn = stage.present(build_card(profile))
    try:
        return read_identity(conn, keys)
    finally:
        conn.close()
        stage.remove(0)


def _split_line(pre: PreSettlement) -> str:
    s = pre.split
    return (
        f"  2206 pre-settlement / 预结算: total {s.medfee_sumamt} = fund {s.fund_pay_sumamt}"
        f" + personal account {s.acct_pay} + cash {s.psn_cash_pay}"
    )


def run(stage: Stage) -> None:
    print("\n=== Medical settlement across provinces / 跨省异地就医直接结算 ===")
    with tempfile.TemporaryDirectory(prefix="sscard-medical-") as tmp:
        work = Path(tmp)
        with InsurancePlatform(work / "ledger.db") as platform:
            first, second = new_card("anhui", seed=FILED_SEED), new_card("anhui", seed=UNFILED_SEED)
            psn_first = _enrol(platform, first, filed=True)
            _enrol(platform, second, filed=False)
            config = DeskConfig(
                url=platform.url,
                fixmedins_name="徐汇测试诊所",
                mdtrtarea_admvs=SHANGHAI,
                outbox=work / "outbox.db",
                acct_used_flag="1",
                dept_code="A03",
                dept_name="全科 General practice",
            )
            print(f"platform (simulated) : {platform.url}")
            print(f"desk                 : {config.fixmedins_name} ({config.fixmedins_code}),"
                  f" area {SHANGHAI}; readers {stage.via}")  # fmt: skip
            visit = VisitPlan.from_file(_write_visit(work / "visit.csv"))
            psam = stage.present(psam_card(new_psam(bytes.fromhex("310000000042"),
                                                    keys=default_key_set())), slot=1)  # fmt: skip
            keys = PsamKeyProvider(psam)
            try:
                with config.open_client() as client:
                    desk = config.front_desk(client)
                    _filed(stage, desk, first, keys, visit, platform, psn_first)
                    _not_filed(stage, desk, second, keys, visit)
                    _platform_refuses(stage, config, second, keys, visit)
            finally:
                psam.close()
                stage.remove(1)


def _holder(card: CardIdentity) -> str:
    return f"{mask_name(card.name)}, card {mask_card_number(card.card_number)}"


def _filed(
    stage: Stage,
    desk: FrontDesk,
    profile: CardProfile,
    keys: PsamKeyProvider,
    visit: VisitPlan,
    platform: InsurancePlatform,
    psn_no: str,
) -> None:
    card = _read(stage, profile, keys)
    before = platform.balance(psn_no)
    print(f"\n[1] {_holder(card)} (issued in {card.region}), filed for Shanghai / 已备案")

    def confirm(pre: PreSettlement) -> bool:
        p = pre.patient
        print(f"  1101: insured area {p.insuplc_admdvs} -> {p.area_case.value};"
              f" filing check: {p.filing.value if p.filing else '-'}")  # fmt: skip
        print(_split_line(pre))
        print("  desk confirms / 前台确认 -> 2207")
        return True

    receipt = desk.settle(card, visit, confirm=confirm)
    print("\n" + "\n".join("  " + line for line in receipt.text().splitlines()))
    print(f"  personal account {before} -> {platform.balance(psn_no)}")


def _not_filed(
    stage: Stage, desk: FrontDesk, profile: CardProfile, keys: PsamKeyProvider, visit: VisitPlan
) -> None:
    card = _read(stage, profile, keys)
    print(f"\n[2] {_holder(card)} (issued in {card.region}), no filing / 未备案")
    try:
        desk.settle(card, visit, confirm=lambda pre: True)
    except FilingRequired as exc:
        print(f"  refused / 拒绝: {exc.message_en}")
        print(f"                  {exc.message_zh}")


def _platform_refuses(
    stage: Stage, config: DeskConfig, profile: CardProfile, keys: PsamKeyProvider, visit: VisitPlan
) -> None:
    """Even a desk that skips the filing check cannot settle: the platform refuses 2206."""
    from dataclasses import replace

    card = _read(stage, profile, keys)
    print("\n[2'] same card at a desk without the filing check / 前台未查询备案:")
    unchecked = replace(config, filing_check="none")
    with unchecked.open_client() as client:
        desk = unchecked.front_desk(client)
        try:
            desk.settle(card, visit, confirm=lambda pre: True)
        except VisitAborted as exc:
            print(f"  platform (2206) / 平台: {exc.err_msg}")
            en, _zh = exc.cleanup.summary()
            print(f"  {en}")
