"""``sscard read``, ``sscard pin verify|change``, ``sscard auth`` on simulated card images."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from sscard.cli.card import auth_command, pin_group, read_command
from sscard.cli.common import common_options
from sscard.simulators.keys import default_key_set, generate_key_set
from sscard.simulators.profile import CardProfile, new_card


@click.group()
@common_options
def cli() -> None:
    """The three front-desk commands as the lead registers them."""


cli.add_command(read_command)
cli.add_command(pin_group)
cli.add_command(auth_command)


def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), input=stdin)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


@pytest.fixture
def card3(tmp_path: Path) -> tuple[str, CardProfile]:
    profile = new_card("zhejiang", generation=3, seed=31)
    path = tmp_path / "card3.json"
    profile.save(path)
    return str(path), profile


def test_read_table_redacted_by_default(card3: tuple[str, CardProfile]) -> None:
    path, profile = card3
    code, out = run("read", "--sim", path)
    assert code == 0
    for label in (
        "地区 Region",
        "社会保障号码 SSN",
        "姓名 Name",
        "有效期 Expiry date",
        "真伪 Genuine",
    ):
        assert label in out
    ef06 = profile.ssse.ef06
    assert ef06.ssn not in out and ef06.name not in out
    assert ef06.ssn[-4:] in out and "✓" in out and "Zhejiang" in out
    code, out = run("read", "--sim", path, "--no-redact")
    assert code == 0 and ef06.ssn in out and ef06.full_name in out


def test_read_ireadcardbas_and_json(card3: tuple[str, CardProfile]) -> None:
    path, profile = card3
    ef05, ef06 = profile.ssse.ef05, profile.ssse.ef06
    code, out = run("read", "--sim", path, "--format", "ireadcardbas", "--no-redact",
                    "--device-number", "DEV01")  # fmt: skip
    expected = (
        f"{ef05.card_id.region}|{ef06.ssn}|{ef05.card_number}|{ef05.card_id.hex}|"
        f"{ef06.full_name}|{profile.ssse.atr[4:].hex().upper()}|{ef05.spec_version}|"
        f"{ef05.issue_date:%Y%m%d}|{ef05.expiry_date:%Y%m%d}||DEV01|"
    )
    assert code == 0 and out == expected + "\n"
    for args in (("--format", "json"), ("--json",)):
        code, out = run("read", "--sim", path, *args)
        data = json.loads(out)
        assert code == 0 and data["genuine"] is True and data["generation"] == 3
        assert data["holder"]["ssn"] != ef06.ssn and data["issuer"]["card_id"] != ef05.card_id.hex
        assert data["issuer"]["card_id"] == ef05.card_id.hex[:6] + "*" * 22 + ef05.card_id.hex[-4:]


def test_pin_from_stdin_and_prompt_never_echoed(card3: tuple[str, CardProfile]) -> None:
    path, _ = card3
    code, out = run("read", "--sim", path, "--verify-pin", "--pin-stdin", stdin="123456\n")
    assert code == 0 and "已验证 verified" in out and "123456" not in out
    code, out = run("pin", "verify", "--sim", path, stdin="123456\n")  # prompt, hidden
    assert code == 0 and "PIN correct / 密码正确" in out and "123456" not in out
    params = {p.name for p in read_command.params} | {
        p.name for p in pin_group.commands["verify"].params
    }
    assert "pin" not in params  # no option takes the PIN itself


def test_wrong_pin_then_blocked(card3: tuple[str, CardProfile]) -> None:
    path, _ = card3
    code, out = run("pin", "verify", "--sim", path, "--pin-stdin", stdin="000000\n")
    assert code == 1
    assert out.strip() == "error: PIN wrong, 2 tries left [-51] / 密码错误，还可尝试2次"
    for _ in range(2):  # the card image keeps the try counter between runs
        run("pin", "verify", "--sim", path, "--pin-stdin", stdin="000000\n")
    code, out = run("pin", "verify", "--sim", path, "--pin-stdin", stdin="123456\n")
    assert code == 1 and "[-52]" in out and "密码已锁定" in out
    code, out = run("--json", "pin", "verify", "--sim", path, "--pin-stdin", stdin="123456\n")
    assert code == 1 and json.loads(out)["code"] == -52


def test_pin_change(card3: tuple[str, CardProfile]) -> None:
    path, _ = card3
    code, out = run("pin", "change", "--sim", path, "--pin-stdin", stdin="123456\n778899\n")
    assert code == 0 and "PIN changed / 密码已修改" in out
    assert run("pin", "verify", "--sim", path, "--pin-stdin", stdin="778899\n")[0] == 0
    code, out = run("pin", "change", "--sim", path, stdin="778899\n112233\n112234\n")
    assert code == 1 and "[-34]" in out
    code, out = run("pin", "change", "--sim", path, "--pin-stdin", stdin="778899\n12\n")
    assert code == 1 and "[-42]" in out


def test_auth_genuine_and_counterfeit(tmp_path: Path) -> None:
    profile = new_card("jiangsu", generation=2, seed=32)
    good, fake = tmp_path / "good.json", tmp_path / "fake.json"
    profile.save(good)
    dataclasses.replace(profile, counterfeit=True).save(fake)
    code, out = run("auth", "--sim", str(good))
    assert code == 0 and "genuine" in out and "真卡" in out
    code, out = run("auth", "--sim", str(fake))
    assert code == 1 and out.strip() == (
        "error: illegal card (internal authentication failed) [-21] / 非法卡（内部认证失败）"
    )


def test_keys_file(card3: tuple[str, CardProfile], tmp_path: Path) -> None:
    path, _ = card3
    own = tmp_path / "keys.json"
    default_key_set().save(own)
    assert run("auth", "--sim", path, "--keys", str(own))[0] == 0
    other = tmp_path / "other.json"
    generate_key_set(seed=5).save(other)  # not the keys the card was made with
    code, out = run("read", "--sim", path, "--keys", str(other))
    assert code == 1 and "[-25538]" in out  # EXTERNAL AUTHENTICATE refused: -(0x63C2)


def test_expired_card_shown_not_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    new_card("anhui", generation=2, state="expired", seed=33).save(path)
    code, out = run("read", "--sim", str(path))
    assert code == 0 and "已过期 EXPIRED" in out


def test_blocked_card_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "blocked.json"
    new_card("shanghai", generation=3, state="blocked", seed=34).save(path)
    code, out = run("read", "--sim", str(path))
    assert code == 1 and "[-27265]" in out and "社会保障应用已锁定" in out
    # What to do comes first, the codes last.
    assert out.startswith("error: social security application is locked") and "12333" in out
    code, out = run("read", "--sim", str(tmp_path / "none.json"))
    assert code == 2 and out.startswith("error: ") and "[-" in out and "Traceback" not in out


def test_trace_redacted(card3: tuple[str, CardProfile], tmp_path: Path) -> None:
    path, profile = card3
    trace = tmp_path / "t.jsonl"
    code, _ = run("read", "--sim", path, "--trace", str(trace), "--verify-pin", "--pin-stdin",
                  stdin="123456\n")  # fmt: skip
    assert code == 0
    text = trace.read_text("utf-8")
    hexes = " ".join(json.loads(line).get("hex") or "" for line in text.splitlines())
    assert "123456" not in hexes and "VERIFY" in text
    ef06 = profile.ssse.ef06
    for secret in (ef06.ssn, ef06.ssn.encode().hex().upper(), ef06.name,
                   ef06.name.encode("gbk").hex().upper()):  # fmt: skip
        assert secret not in text


def test_pin_stdin_is_bounded_and_never_echoed(card3: tuple[str, CardProfile]) -> None:
    """A pipe of junk is refused unread (usage, exit 2) and the card's try counter is
    untouched: nothing reached the card."""
    path, _ = card3
    code, out = run("pin", "verify", "--sim", path, "--pin-stdin", stdin="7" * 5_000_000 + "\n")
    assert code == 2
    assert "longer than 64 characters" in out and "超过 64 个字符" in out
    assert "7777777" not in out
    code, out = run("pin", "verify", "--sim", path, "--pin-stdin", stdin="")
    assert code == 2 and "no PIN on stdin" in out and "标准输入中没有密码" in out
    # no try was spent: one wrong PIN still leaves 2 tries
    code, out = run("pin", "verify", "--sim", path, "--pin-stdin", stdin="000000\n")
    assert code == 1 and "2 tries left" in out
