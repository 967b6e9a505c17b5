"""The local reader service (``sscard serve``): HTTP + WebSocket on loopback for web HIS pages.

See docs/reader-service.md. ``ReaderService(config, backend)`` + ``build_app`` give the
ASGI app; ``ServiceThread`` runs it in a thread (tests, demo); ``serve_forever`` in the
foreground (CLI). Needs the ``serve`` extra (starlette, uvicorn, websockets).
"""

from sscard.serve.app import ReaderService, build_app
from sscard.serve.backend import PcscBackend, ReaderInfo, SimBackend
from sscard.serve.config import DEFAULT_PORT, OriginRule, ServeConfig, normalize_origin
from sscard.serve.server import ServiceThread, serve_forever

__all__ = [
    "DEFAULT_PORT",
    "OriginRule",
    "PcscBackend",
    "ReaderInfo",
    "ReaderService",
    "ServeConfig",
    "ServiceThread",
    "SimBackend",
    "build_app",
    "normalize_origin",
    "serve_forever",
]
