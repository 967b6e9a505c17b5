"""The shared card model: identifiers, record layouts with vectors, regions, SSNs.

Declared once and used by both sides of the wire: the terminal applets decode
with these layouts and the simulators encode with them (docs/architecture.md,
"One idea"). Every layout carries inline test vectors that
``tests/test_cards_vectors.py`` walks through :func:`all_layouts`.
"""

from sscard.cards.layout import REGISTRY, Coded, Layout, LayoutError, LayoutLike


def all_layouts() -> list[LayoutLike]:
    """Every registered layout (imports the modules that declare them).

    Here, not in ``layout.py``: the declaring modules import ``layout``, so the
    walker lives above both (no import cycle).
    """
    from sscard.cards import purse, ssse  # noqa: F401  (import registers)

    return list(REGISTRY)


__all__ = ["REGISTRY", "Coded", "Layout", "LayoutError", "LayoutLike", "all_layouts"]
