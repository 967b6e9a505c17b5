"""Terminal text helpers for bilingual output.

Chinese characters take two terminal columns, so aligned Chinese/English
tables (CLI, receipts, the demo) pad by display width, not by ``len``.
"""

from __future__ import annotations

import unicodedata


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: East Asian wide/fullwidth characters count two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def pad(text: str, width: int) -> str:
    """``text`` padded with spaces to ``width`` display columns (never truncated)."""
    return text + " " * max(0, width - display_width(text))
