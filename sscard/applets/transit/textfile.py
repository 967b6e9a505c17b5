"""The one reader of the validator's text files (TOML configuration, fare tables).

A module of its own so that ``config`` (which reads fare tables through ``fares``)
and ``fares`` (which reads fare table files) share it without importing each other.
"""

from __future__ import annotations

import os
from pathlib import Path

from sscard.applets.transit.errors import TransitConfigError
from sscard.files import read_text

__all__ = ["read_config_file"]


def read_config_file(path: str | os.PathLike[str], what_en: str, what_zh: str) -> str:
    """The text of a validator TOML or fare table: the one place that reads them."""
    p = Path(path)
    try:
        return read_text(p)  # bounded: regular files only, size limit (sscard.files)
    except OSError as exc:
        raise TransitConfigError(
            f"cannot read {what_en} {p.name}: {exc.strerror}", f"无法读取{what_zh}{p.name}"
        ) from exc
    except UnicodeDecodeError as exc:
        raise TransitConfigError(
            f"{what_en} {p.name} is not UTF-8 text", f"{what_zh}{p.name}不是UTF-8文本"
        ) from exc
