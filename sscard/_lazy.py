"""Lazy package façades (PEP 562): a public name resolves to its module on first use.

Why: ``from sscard.simulators import new_card`` should work without making every
``import sscard.simulators.x`` load the whole package (the insurance platform, the
vpcd bridge...). Each façade lists ``name -> module`` once; this builds its
``__getattr__`` and ``__dir__``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, where: Mapping[str, str], names: list[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, whose public ``names`` live in
    the modules ``where`` maps them to."""

    def getattr_(name: str) -> Any:
        try:
            module = where[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        return getattr(importlib.import_module(module), name)

    def dir_() -> list[str]:
        return sorted([*names, *importlib.import_module(package).__dict__])

    return getattr_, dir_
