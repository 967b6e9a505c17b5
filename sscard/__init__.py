"""sscard: terminal SDK and reader middleware for China's social security card.

Layers (imports point down only): cli -> applets -> services -> cards ->
terminals -> apdu / crypto; simulators build on apdu, crypto and cards only.
See docs/architecture.md.
"""

__version__ = "0.1.0"
