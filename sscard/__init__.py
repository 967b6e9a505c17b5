"""sscard: terminal SDK and reader middleware for China's social security card.

Layers (imports point down only): cli -> applets -> services -> cards ->
terminals -> apdu / crypto; simulators build on apdu, crypto and cards only.
See docs/architecture.md. Docstrings cite facts as ``reference §P4.5`` (purse),
``§C`` (social security card), ``§M`` (medical insurance), ``§K`` (clearing), ``§N``
(platform) and ``regulation Art. n``: the sections of docs/reference.md, which name
the public standard or source of each and the sscard profile choices.
"""

__version__ = "0.1.0"
