"""``sscard sim set``: change a simulated card image after it was made.

A test card must be repairable without a text editor: ``--sim`` writes the
card's state back, so three wrong PINs lock a test card for good, a day of taps
empties its purse and time expires it. Each option changes one thing; the image
is validated (the same checks as ``sim new``) and written atomically, so a bad
value leaves the file as it was. The simulator's TEST PIN is ``123456``
(``sim show --no-redact`` prints it).
"""

from __future__ import annotations

import dataclasses
import sys
from datetime import date
from typing import cast

import click

from sscard.cli.common import common_options, emit, handle_errors, options
from sscard.cli.sim import card_summary, card_summary_text
from sscard.simulators.profile import (
    CARD_STATES,
    DEFAULT_PIN,
    CardProfile,
    CardState,
    ProfileError,
)


def _purse(card: CardProfile, option: str) -> None:
    if card.purse is None:
        raise ProfileError(
            f"{option}: this card image has no transit purse",
            f"{option}：该卡片映像没有交通电子钱包",
        )


@click.command(name="set")
@click.argument("card_file", type=click.Path(dir_okay=False, exists=True))
@click.option("--balance", type=click.IntRange(0), help="Purse balance in fen.")
@click.option(
    "--state",
    type=click.Choice(CARD_STATES),
    help="SSSE state; 'blocked' also blocks the purse, 'ok' unblocks both.",
)
@click.option("--pin-tries", type=click.IntRange(0, 15), help="PIN tries left.")
@click.option(
    "--unblock",
    is_flag=True,
    help="Undo locks: PIN and authentication tries back to the maximum, state ok, purse unblocked.",
)
@click.option(
    "--pin-stdin",
    "pin_stdin",
    is_flag=True,
    help="Set the PIN, read from stdin (4-6 digits; the TEST default is 123456). "
    "Never on the command line: the process list would show it.",
)
@click.option(
    "--expiry",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Card expiry date, YYYY-MM-DD.",
)
@common_options
@handle_errors
def command(
    card_file: str,
    balance: int | None,
    state: str | None,
    pin_tries: int | None,
    unblock: bool,
    pin_stdin: bool,
    expiry: date | None,
) -> None:
    """Change a card image: balance, state, PIN tries, PIN, expiry; --unblock undoes locks."""
    card = CardProfile.load(card_file)
    ssse = card.ssse
    changed: list[str] = []
    if unblock:
        ssse.pin = dataclasses.replace(ssse.pin, tries_left=ssse.pin.max_tries)
        ssse.ext_auth_tries_left = 3
        ssse.state = "ok" if ssse.state in ("blocked", "pin-locked") else ssse.state
        if card.purse is not None:
            card.purse.blocked = False
        changed.append("unblocked")
    if state is not None:
        ssse.state = cast(CardState, state)
        if card.purse is not None and state in ("blocked", "ok"):
            card.purse.blocked = state == "blocked"
        if state == "pin-locked":
            ssse.pin = dataclasses.replace(ssse.pin, tries_left=0)
        changed.append(f"state {state}")
    if pin_tries is not None:
        if pin_tries > ssse.pin.max_tries:
            raise ProfileError(
                f"--pin-tries: at most {ssse.pin.max_tries} on this card",
                f"--pin-tries：此卡最多 {ssse.pin.max_tries} 次",
            )
        ssse.pin = dataclasses.replace(ssse.pin, tries_left=pin_tries)
        changed.append(f"PIN tries {pin_tries}")
    if pin_stdin:
        new_pin = sys.stdin.readline(16).strip()
        if not (new_pin.isdigit() and new_pin.isascii() and 4 <= len(new_pin) <= 6):
            raise ProfileError("--pin: 4 to 6 digits", "--pin：应为4至6位数字")
        ssse.pin = dataclasses.replace(ssse.pin, pin=new_pin, initial=new_pin == DEFAULT_PIN)
        changed.append("PIN")
    if expiry is not None:
        day = expiry.date() if hasattr(expiry, "date") else expiry
        ssse.ef05 = dataclasses.replace(ssse.ef05, expiry_date=day)
        changed.append(f"expiry {day.isoformat()}")
    if balance is not None:
        _purse(card, "--balance")
        assert card.purse is not None
        if balance > card.purse.max_balance:
            raise ProfileError(
                f"--balance: more than the purse maximum {card.purse.max_balance} fen",
                f"--balance：超过钱包上限 {card.purse.max_balance} 分",
            )
        card.purse.balance = balance
        card.purse.overdraft_used = 0
        changed.append(f"balance {balance} fen")
    if not changed:
        raise ProfileError(
            "nothing to change: give an option (sscard sim set --help)",
            "没有要修改的内容：请给出选项（sscard sim set --help）",
        )
    card.save(card_file)  # validates first; a bad value leaves the file as it was
    summary = card_summary(card, redact=options().redact)
    summary["changed"] = changed
    emit(summary, f"changed {', '.join(changed)} in {card_file}\n" + card_summary_text(summary))
