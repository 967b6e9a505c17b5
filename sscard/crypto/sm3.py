"""SM3 hash (GB/T 32905) via pyca/cryptography (platform-notes.md §5: ~430k ops/s, KATs §7.1)."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes

__all__ = ["sm3"]


def sm3(data: bytes) -> bytes:
    """Return the 32-byte SM3 digest of ``data``."""
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()
