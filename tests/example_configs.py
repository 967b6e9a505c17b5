"""The shipped example configurations, pointed at one test's files and servers.

Tests run the examples users copy (``examples/medical.toml``,
``examples/validator-bus.toml``) rather than configurations of their own, so an
example that stops working fails a test. Each edit must find its text: if an
example changes, the helper fails loudly instead of silently writing into the
user's state directory or the example's own journal.
"""

from __future__ import annotations

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

_MEDICAL_URL = 'url = "http://127.0.0.1:8080/fsi/api/rsfComIfsService/callService"'


def _edit(text: str, old: str, new: str) -> str:
    assert old in text, f"the example no longer contains {old!r}"
    return text.replace(old, new)


def medical_config(directory: Path, url: str) -> Path:
    """``examples/medical.toml`` with this test's platform URL and outbox."""
    text = (EXAMPLES / "medical.toml").read_text(encoding="utf-8")
    text = _edit(text, 'outbox = "medical-outbox.db"', f'outbox = "{directory / "outbox.db"}"')
    text = _edit(text, _MEDICAL_URL, f'url = "{url}"')
    path = directory / "medical.toml"
    path.write_text(text, encoding="utf-8")
    return path


def bus_config(directory: Path, *, repeat_tap_seconds: int | None = None) -> Path:
    """``examples/validator-bus.toml`` with its journal in ``directory``.

    ``repeat_tap_seconds=0`` switches the repeat-tap window off, for tests that
    tap the same card again and again.
    """
    text = (EXAMPLES / "validator-bus.toml").read_text(encoding="utf-8")
    text = _edit(text, 'path = "validator-bus.db"', f'path = "{directory / "bus.db"}"')
    if repeat_tap_seconds is not None:
        text = _edit(text, "repeat_tap_seconds = 60", f"repeat_tap_seconds = {repeat_tap_seconds}")
    path = directory / "bus.toml"
    path.write_text(text, encoding="utf-8")
    return path
