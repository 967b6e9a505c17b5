"""The shared card model: identifiers, record layouts with vectors, regions, SSNs.

Declared once and used by both sides of the wire: the terminal applets decode
with these layouts and the simulators encode with them (shared/design/
architecture.md, "One idea"). Every layout carries inline test vectors that
``tests/test_cards_vectors.py`` walks through :func:`all_layouts`.
"""

from sscard.cards.layout import REGISTRY, Coded, Layout, LayoutError, LayoutLike, all_layouts

__all__ = ["REGISTRY", "Coded", "Layout", "LayoutError", "LayoutLike", "all_layouts"]
