"""A whole simulated social security card: card image + key set -> card OS.

``build_card(profile, keys)`` assembles the MF with the SSSE DDF
(:mod:`.ssse_applet`), the PPSE and the T-Union purse ADF (:mod:`.purse_applet`),
derives every key from the key set's masters
and returns a :class:`SocialSecurityCard` (a :class:`~sscard.simulators.cos.CardOS`).

``load_card(path)`` does the same from a card-image file and writes every
committed state change (PIN tries, records, balance, counters) back to it
atomically through ``CardProfile.save`` (temp file + rename).

File tree (reference §C1.1, reference §P1.2; FIDs marked * are sscard profile)::

    MF 3F00
    ├── DDF1* "sx1.sh.社会保障" (SSSE)  EF05, EF06, DF01*-DF07* (AIDs D156000005 00-06)
    ├── "2PAY.SYS.DDF01" (PPSE)        FCI lists MOT_T_EP
    └── 1001 A000000632010105 (purse)   EF 0015-0018, 001A, 001E (served by the purse applet)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

from sscard.cards.ids import MF_FID
from sscard.simulators import purse_applet
from sscard.simulators.cos import CardOS, DedicatedFile
from sscard.simulators.faults import Faults
from sscard.simulators.keys import KeySet, default_key_set
from sscard.simulators.profile import CardProfile
from sscard.simulators.ssse_applet import build_ssse, read_back

__all__ = ["SocialSecurityCard", "build_card", "load_card"]


class SocialSecurityCard(CardOS):
    """The card OS of one card image, able to write its state back to the image."""

    def __init__(
        self,
        profile: CardProfile,
        keys: KeySet,
        *,
        t0: bool = False,
        faults: Faults | None = None,
        rng: Callable[[int], bytes] | None = None,
    ) -> None:
        rand = rng or os.urandom
        mf = DedicatedFile(fid=MF_FID, label_text="MF")
        self.ssse = build_ssse(
            profile.ssse, keys, df01=profile.df01, counterfeit=profile.counterfeit
        )
        mf.add(self.ssse)
        self.purse_df: DedicatedFile | None = None
        if profile.purse is not None:
            card_keys = purse_applet.purse_keys(keys, profile.purse)
            self.purse_df = purse_applet.build_purse_adf(profile.purse, card_keys)
            mf.add_all(purse_applet.build_ppse_ddf(), self.purse_df)
        super().__init__(mf, atr=profile.ssse.atr, t0=t0, faults=faults, rng=rand)
        self.profile = profile
        self.keys = keys
        self.path: Path | None = None

    def to_profile(self) -> CardProfile:
        """The card image as it is now (what :meth:`save` writes)."""
        ssse, df01 = read_back(self.ssse, self.profile.ssse)
        purse = self.profile.purse
        if purse is not None and self.purse_df is not None:
            applet = self.purse_df.applet
            assert isinstance(applet, purse_applet.PurseApplet)
            purse = applet.export(self.purse_df, purse)
        return dataclasses.replace(
            self.profile, ssse=ssse, purse=purse, df01=df01 or self.profile.df01
        )

    def save(self, path: str | os.PathLike[str] | None = None) -> None:
        """Write the image atomically (to ``path`` or the file it was loaded from)."""
        target = Path(path) if path is not None else self.path
        if target is None:
            return
        self.profile = self.to_profile()
        self.profile.save(target)


def build_card(
    profile: CardProfile,
    keys: KeySet | None = None,
    *,
    t0: bool = False,
    faults: Faults | None = None,
    rng: Callable[[int], bytes] | None = None,
) -> SocialSecurityCard:
    """A simulated card from a card image and a key set (default: the shipped TEST keys)."""
    return SocialSecurityCard(profile, keys or default_key_set(), t0=t0, faults=faults, rng=rng)


def load_card(
    card_json_path: str | os.PathLike[str],
    keys_path: str | os.PathLike[str] | None = None,
    *,
    t0: bool = False,
    faults: Faults | None = None,
) -> SocialSecurityCard:
    """A file-backed card: every committed change is saved atomically to the image."""
    profile = CardProfile.load(card_json_path)
    keys = KeySet.load(keys_path) if keys_path is not None else default_key_set()
    card = build_card(profile, keys, t0=t0, faults=faults)
    card.path = Path(card_json_path)
    card.on_commit = _save_on_commit
    return card


def _save_on_commit(cos: CardOS) -> None:
    if isinstance(cos, SocialSecurityCard):
        cos.save()
