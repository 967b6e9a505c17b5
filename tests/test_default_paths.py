"""Nothing is written into the current directory or beside a configuration by
default; what sscard keeps lives in the state directory (XDG), explicit paths as given."""

from __future__ import annotations

from pathlib import Path

import pytest

from sscard.applets.medical import DeskConfig
from sscard.sqlite import state_dir


def test_state_dir_follows_sscard_then_xdg_then_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSCARD_STATE_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert state_dir() == tmp_path / "xdg" / "sscard"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/ignored")  # XDG: relative paths are invalid
    assert state_dir() == Path.home() / ".local" / "state" / "sscard"
    monkeypatch.setenv("SSCARD_STATE_DIR", str(tmp_path / "mine"))
    assert state_dir() == tmp_path / "mine"


def test_the_desk_outbox_is_never_in_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSCARD_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    assert DeskConfig(url="http://127.0.0.1:1/").outbox == tmp_path / "state" / "medical-outbox.db"
    config = tmp_path / "desk.toml"
    config.write_text('[platform]\nurl = "http://127.0.0.1:1/"\n[desk]\noutbox = "o.db"\n')
    assert DeskConfig.load(config).outbox == tmp_path / "state" / "o.db"
    config.write_text(
        f'[platform]\nurl = "http://127.0.0.1:1/"\n[desk]\noutbox = "{tmp_path}/a.db"\n'
    )
    assert DeskConfig.load(config).outbox == tmp_path / "a.db"  # absolute: as given
