"""``sscard sim new`` / ``sscard sim show``: make and inspect simulated card images;
``sscard sim psam new|show``: one simulated PSAM per validator.

A card image is the JSON file of :mod:`sscard.simulators.profile`; ``sim show``
redacts the holder's name and SSN (and hides the PIN) unless ``--no-redact``
is given, using the one masking implementation in :mod:`sscard.cards.privacy`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from sscard.cards.cities import city as tunion_city
from sscard.cards.ids import AlgorithmFlag, CardCategory, PurseAlgorithmId
from sscard.cards.privacy import (
    mask_asn,
    mask_card_id,
    mask_card_number,
    mask_date,
    mask_name,
    mask_secret,
    mask_ssn,
)
from sscard.cards.regions import DELTA_PROVINCES, UnknownRegion, region_of
from sscard.cli.common import common_options, emit, handle_errors, options
from sscard.simulators.keys import default_key_set
from sscard.simulators.profile import (
    CARD_STATES,
    OTHER_PROVINCE,
    CardProfile,
    ProfileError,
    new_card,
)
from sscard.simulators.psam import PsamImage, new_psam


@click.group(name="sim")
def command() -> None:
    """Simulated cards: create and inspect card images."""


@command.command(name="new")
@click.option(
    "--province",
    type=click.Choice([*sorted(DELTA_PROVINCES), OTHER_PROVINCE], case_sensitive=False),
    required=True,
    help="Issuing province; 'other': a card from outside the delta (--region, default "
    "110000 Beijing).",
)
@click.option("--generation", type=click.Choice(["2", "3"]), default="3", show_default=True)
@click.option(
    "--balance", type=click.IntRange(0, 100_000), default=10_000, show_default=True,
    help="Purse balance in fen.",
)  # fmt: skip
@click.option("--state", type=click.Choice(CARD_STATES), default="ok", show_default=True)
@click.option("--seed", type=int, default=None, help="Seed for a reproducible card.")
@click.option(
    "--region", default=None,
    help="Issuing region, GB/T 2260 (e.g. 330100 Hangzhou); default drawn from the seed.",
)  # fmt: skip
@click.option(
    "--category",
    type=click.Choice([c.name.lower() for c in CardCategory]),
    default=None,
    help="Transit card category (EF 0017): normal, student, elderly, ... "
    "(default: elderly from 70, else normal).",
)
@click.option("--local-only", is_flag=True, help="A local, non-interoperable purse (SFI 19).")
@click.option(
    "--counterfeit",
    is_flag=True,
    help="Right data, wrong keys: fails internal authentication (a forged card).",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, writable=True), required=True,
    help="Card image file to write (JSON).",
)  # fmt: skip
@common_options
@handle_errors
def new(
    province: str,
    generation: str,
    balance: int,
    state: str,
    seed: int | None,
    region: str | None,
    category: str | None,
    local_only: bool,
    counterfeit: bool,
    output: str,
) -> None:
    """Generate a realistic card image (one of the four delta provinces, or 'other')."""
    card = new_card(
        province.lower(), int(generation), balance, state, seed,
        region=region, interoperable=not local_only,
    )  # fmt: skip
    if category is not None and card.purse is not None:
        ef17 = dataclasses.replace(card.purse.ef0017, category=int(CardCategory[category.upper()]))
        card.purse = dataclasses.replace(card.purse, ef0017=ef17)
    card.counterfeit = counterfeit
    if counterfeit:
        card.label += " counterfeit"
    try:
        card.save(output)
    except OSError as exc:
        name = Path(output).name
        raise ProfileError(
            f"cannot write {name}: {exc.strerror or exc}", f"无法写入 {name}"
        ) from None
    summary = card_summary(card, redact=options().redact)
    summary["file"] = str(Path(output))
    emit(summary, f"wrote {output}\n" + card_summary_text(summary))


@command.command(name="show")
@click.argument("card_file", type=click.Path(dir_okay=False))
@common_options
@handle_errors
def show(card_file: str) -> None:
    """Show a card image (name and SSN masked unless --no-redact)."""
    card = CardProfile.load(card_file)
    summary = card_summary(card, redact=options().redact)
    summary["file"] = str(Path(card_file))
    emit(summary, card_summary_text(summary))


def card_summary(card: CardProfile, *, redact: bool) -> dict[str, Any]:
    s = card.ssse
    ef05, ef06 = s.ef05, s.ef06
    try:
        reg = region_of(ef05.card_id.region)
        region: dict[str, str] = {"code": reg.code, "zh": reg.name_zh, "en": reg.name_en}
    except UnknownRegion:
        region = {"code": ef05.card_id.region, "zh": "未知", "en": "unknown"}
    name = ef06.full_name
    out: dict[str, Any] = {
        "label": card.label,
        "generation": s.generation,
        "spec_version": ef05.spec_version,
        "algorithm": AlgorithmFlag(s.algorithm_flag).name,
        "state": s.state,
        "counterfeit": card.counterfeit,
        "region": region,
        "card_id": mask_card_id(ef05.card_id.hex) if redact else ef05.card_id.hex,
        "card_number": mask_card_number(ef05.card_number) if redact else ef05.card_number,
        "issue_date": ef05.issue_date.isoformat(),
        "expiry_date": ef05.expiry_date.isoformat(),
        "atr": s.atr.hex().upper(),
        "holder": {
            "name": mask_name(name) if redact else name,
            "ssn": mask_ssn(ef06.ssn) if redact else ef06.ssn,
            "sex": {"1": "male", "2": "female"}.get(ef06.sex, ef06.sex),
            "birth_date": mask_date(str(ef06.birth_date)) if redact else str(ef06.birth_date),
            "ethnicity": ef06.ethnicity,
        },
        "pin": {
            "pin": mask_secret(s.pin.pin) if redact else s.pin.pin,
            "tries_left": s.pin.tries_left,
            "max_tries": s.pin.max_tries,
            "initial": s.pin.initial,
        },
        "purse": None,
    }
    p = card.purse
    if p is not None:
        out["purse"] = {
            "algorithm": PurseAlgorithmId(p.algorithm_id).name,
            "asn": mask_asn(p.ef0015.asn) if redact else p.ef0015.asn,
            "issuer_id": p.ef0015.issuer_id.hex().upper(),
            "city": p.ef0015.city_code,
            "city_name": (c.name if (c := tunion_city(p.ef0015.city_code)) else ""),
            "balance_fen": p.balance,
            "max_balance_fen": p.max_balance,
            "online_counter": p.online_counter,
            "offline_counter": p.offline_counter,
            "blocked": p.blocked,
            "txn_records": len(p.txn_records),
            "trip_records": len(p.trip_records),
            "interoperable": p.ef0017.interoperable,
            "category": _category(p.ef0017.category),
            "composite_records": sorted(p.composite_records),
            "local_composite_records": sorted(p.local_composite_records),
        }
    return out


def _category(value: int) -> str:
    try:
        return CardCategory(value).name.lower()
    except ValueError:
        return f"{value:02X}"


def card_summary_text(d: dict[str, Any]) -> str:
    h, pin, reg = d["holder"], d["pin"], d["region"]
    lines = [
        f"card        gen {d['generation']} (spec {d['spec_version']}, {d['algorithm']}), "
        f"state {d['state']}" + (", COUNTERFEIT" if d["counterfeit"] else ""),
        f"region      {reg['code']} {reg['zh']} / {reg['en']}",
        f"card id     {d['card_id']}",
        f"card no.    {d['card_number']}   valid {d['issue_date']} .. {d['expiry_date']}",
        f"holder      {h['name']}  SSN {h['ssn']}  {h['sex']}  born {h['birth_date']}",
        f"PIN         {pin['pin']}  tries {pin['tries_left']}/{pin['max_tries']}"
        + ("  (initial PIN)" if pin["initial"] else ""),
        f"ATR         {d['atr']}",
    ]
    p = d["purse"]
    if p is not None:
        lines.append(
            f"purse       {p['algorithm']}  ASN {p['asn']}  city {p['city']} {p['city_name']}"
            f"  balance {p['balance_fen'] / 100:.2f} CNY"
            f"  counters online {p['online_counter']} offline {p['offline_counter']}"
            + ("  BLOCKED" if p["blocked"] else "")
            + ("" if p["interoperable"] else "  LOCAL (not interoperable)")
            + ("" if p["category"] == "normal" else f"  category {p['category']}")
        )
        lines.append(
            f"records     18: {p['txn_records']}  1E: {p['trip_records']}"
            f"  1A: {p['composite_records'] or '-'}"
            f"  19: {p['local_composite_records'] or '-'}"
        )
    return "\n".join(lines)


# =========================================================================== PSAM


@command.group(name="psam")
def psam_group() -> None:
    """Simulated PSAMs: one per validator, each with its own terminal number."""


@psam_group.command(name="new")
@click.option(
    "--terminal-id", required=True,
    help="6-B terminal number (PSAM EF 16), 12 hex digits; unique per validator.",
)  # fmt: skip
@click.option("--key-index", type=click.IntRange(0, 255), default=1, show_default=True)
@click.option("--no-sm4", is_flag=True, help="A PSAM without SM4 keys.")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, writable=True), required=True,
    help="PSAM image file to write (JSON, TEST keys).",
)  # fmt: skip
@common_options
@handle_errors
def psam_new(terminal_id: str, key_index: int, no_sm4: bool, output: str) -> None:
    """Make a PSAM image for one validator (§P3, §P5.8 "Terminal ID").

    Every validator of a fleet writes its PSAM's terminal number into 8070, EF 0018
    and EF 001E, so clearing tells them apart only if each has its own PSAM. An
    existing file is never overwritten (it holds the sequence number).
    """
    try:
        tid = bytes.fromhex(terminal_id)
    except ValueError:
        tid = b""
    if len(tid) != 6:
        raise click.BadParameter("12 hex digits (6 bytes)", param_hint="--terminal-id")
    path = Path(output)
    if path.exists():
        raise ProfileError(
            f"{path.name} exists: a PSAM keeps its sequence number, pick another file",
            f"{path.name}已存在：PSAM保存交易序号，请换一个文件名",
        )
    image = new_psam(tid, key_index, keys=default_key_set(), sm4=not no_sm4)
    try:
        image.save(path)
    except OSError as exc:
        raise ProfileError(
            f"cannot write {path.name}: {exc.strerror or exc}", f"无法写入 {path.name}"
        ) from None
    summary = _psam_summary(image)
    summary["file"] = str(path)
    emit(summary, f"wrote {output}: PSAM terminal {summary['terminal_id']}")


@psam_group.command(name="show")
@click.argument("psam_file", type=click.Path(dir_okay=False))
@common_options
@handle_errors
def psam_show(psam_file: str) -> None:
    """Show a PSAM image (no key bytes)."""
    summary = _psam_summary(PsamImage.load(psam_file))
    summary["file"] = psam_file
    emit(
        summary,
        f"PSAM terminal {summary['terminal_id']}  key index {summary['key_index']}"
        f"  next seq {summary['next_seq']}  SM4 {'yes' if summary['sm4'] else 'no'}",
    )


def _psam_summary(image: PsamImage) -> dict[str, Any]:
    return {
        "terminal_id": image.terminal_id.hex().upper(),
        "key_index": image.key_index,
        "next_seq": image.next_seq,
        "sm4": image.sm4,
        "t0": image.t0,
    }
