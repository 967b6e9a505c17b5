"""The root of every error sscard raises.

Every error carries one English and one Chinese line, and the return code of
the unified reader interface (iReadCardBas table, shared/reference/ssse-card.md
§4.5) where one applies, so a CLI prints one bilingual line and never a
traceback, and hospital software gets the code it already understands.

Messages never contain keys, PINs or personal data: callers pass only what is
safe to show (counts, status words, file names).
"""

from __future__ import annotations


class SscardError(Exception):
    """Base class: one bilingual line, an optional unified-interface code."""

    #: Unified reader interface return code (ssse-card.md §4.5); -999 = unknown.
    code: int = -999
    message_en: str = "sscard error"
    message_zh: str = "sscard 错误"

    def __init__(
        self,
        message_en: str | None = None,
        message_zh: str | None = None,
        *,
        code: int | None = None,
    ) -> None:
        if message_en is not None:
            self.message_en = message_en
        if message_zh is not None:
            self.message_zh = message_zh
        if code is not None:
            self.code = code
        super().__init__(self.message_en)

    def bilingual(self) -> str:
        """The one line a CLI prints: ``English / 中文``."""
        return f"{self.message_en} / {self.message_zh}"

    def __str__(self) -> str:
        return self.bilingual()


class ConfigError(SscardError):
    """A configuration file or option is missing or malformed."""

    code = -14
    message_en = "bad configuration"
    message_zh = "配置错误"


class DependencyMissing(SscardError):
    """An optional native dependency (pyscard, a QR decoder) is not installed."""

    code = -5
    message_en = "a required library is not installed"
    message_zh = "缺少所需的库"
