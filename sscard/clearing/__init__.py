"""Clearing (清分结算) of T-Union purse uploads: dedup, TAC checks, grey rows, netting.

The back office that takes every validator's upload (the journal's Parquet export,
:mod:`sscard.services.clearing_export`), throws out duplicates and forgeries, notices
lost uploads, settles grey taps from the card's later transactions and nets what each
card-issuing city owes each operator, in integer fen. Reference and profile:
docs/reference.md part K; user guide: docs/clearing.md.

* :func:`clear` (:mod:`sscard.clearing.run`): one run, any engine;
* engines: DuckDB (embedded default), Spark (``mapInArrow``), a plain-Python baseline;
* keys: :class:`~sscard.clearing.keys.IssuerKeys` behind the
  :class:`~sscard.clearing.keys.IssuerKeyProvider` / :class:`~sscard.clearing.keys.TacVerifier`
  protocols, so an HSM can take the key file's place.

Needs the ``clearing`` extra (pyarrow, duckdb, numpy); Spark the ``spark`` extra and Java.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "clear": "sscard.clearing.run",
    "IssuerKeys": "sscard.clearing.keys",
    "IssuerKeyProvider": "sscard.clearing.keys",
    "MasterKeyVerifier": "sscard.clearing.keys",
    "TacVerifier": "sscard.clearing.keys",
    "REASONS": "sscard.clearing.schema",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    try:
        module = _WHERE[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), name)
