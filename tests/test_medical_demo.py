"""The medical demo scene runs in-process and tells the story without personal data."""

from __future__ import annotations

import pytest

from sscard.demos import medical
from sscard.demos.stage import Stage
from sscard.simulators.profile import new_card


def test_demo_settles_the_filed_cardholder_and_refuses_the_other(
    capsys: pytest.CaptureFixture[str],
) -> None:
    medical.run(Stage())
    out = capsys.readouterr().out
    # Hefei policy (deductible 300, 60 %, account for in-scope share) on the demo visit.
    assert "total 501.00 = fund 110.88 + personal account 378.12 + cash 12.00" in out
    assert "personal account 1000.00 -> 621.88" in out
    assert "refused / 拒绝: cross-province treatment not filed" in out
    assert "platform (2206) / 平台: 跨省异地就医未备案" in out
    assert "cancelled (2205, 2202); nothing charged" in out
    for seed in (medical.FILED_SEED, medical.UNFILED_SEED):
        ef06 = new_card("anhui", seed=seed).ssse.ef06
        assert ef06.ssn not in out and ef06.full_name not in out
