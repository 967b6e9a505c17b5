"""The OpenAPI 3.1 document of API v1 (``GET /v1/openapi.json``), written by hand.

Hand-written rather than generated: Starlette has no schema generator without
docstring YAML, and the contract a HIS developer reads should say what the service
promises (headers, codes, masking), not what a decorator inferred.
"""

from __future__ import annotations

from typing import Any

_ERROR = {
    "type": "object",
    "required": ["code", "error", "message_en", "message_zh", "retry"],
    "properties": {
        "code": {
            "type": "integer",
            "description": "unified return code (0, -1..-52, -220x, -SW, -999) or service code -9001..-9007",
        },
        "error": {"type": "string"},
        "message_en": {"type": "string"},
        "message_zh": {"type": "string"},
        "message": {"type": "string"},
        "retry": {"type": "boolean"},
        "tries_left": {"type": "integer"},
    },
}
_READER = {
    "reader": {
        "type": ["string", "integer"],
        "description": "name, index or name substring; default: the only reader, or the only one holding a card",
    }
}


def _post(summary: str, props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "parameters": [{"$ref": "#/components/parameters/XSSCardRequest"}],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": props,
                            "required": required or [],
                        }
                    }
                },
            },
            "responses": {
                "200": {"description": "code 0, or a card outcome with its code (error object)"},
                "400": {"$ref": "#/components/responses/Error"},
                "401": {"$ref": "#/components/responses/Error"},
                "403": {"$ref": "#/components/responses/Error"},
                "409": {"$ref": "#/components/responses/Error"},
                "413": {"$ref": "#/components/responses/Error"},
                "429": {"$ref": "#/components/responses/Error"},
            },
        }
    }


def openapi(version: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "sscard local reader service",
            "version": version,
            "description": "Loopback only. Every call from a page needs an allowed Origin; "
            "API calls need the header X-SSCard-Request: 1; with pairing on, "
            "Authorization: Bearer <token from POST /v1/pair>. Personal data is masked "
            "unless the origin is configured full_data. See docs/reader-service.md.",
        },
        "servers": [{"url": "http://127.0.0.1:27301"}],
        "paths": {
            "/v1/version": {
                "get": {
                    "summary": "service version, API level, pairing on/off, TEST card keys in use",
                    "responses": {"200": {"description": "ok"}},
                }
            },
            "/v1/pair": _post(
                "exchange the console pairing code for a bearer token",
                {"code": {"type": "string"}},
                ["code"],
            ),
            "/v1/readers": {
                "get": {
                    "summary": "readers: name, state (empty|card|error), ATR",
                    "parameters": [{"$ref": "#/components/parameters/XSSCardRequest"}],
                    "responses": {"200": {"description": "ok"}},
                }
            },
            "/v1/card/read": _post("SSSE read, genuineness, the iReadCardBas string", _READER),
            "/v1/card/pin/verify": _post(
                "verify the PIN (never logged or echoed)",
                {**_READER, "pin": {"type": "string"}},
                ["pin"],
            ),
            "/v1/card/pin/change": _post(
                "change the PIN",
                {**_READER, "old_pin": {"type": "string"}, "new_pin": {"type": "string"}},
                ["old_pin", "new_pin"],
            ),
            "/v1/identity/check": _post(
                "identity check of a policy scenario (hotel, gate, counter, ...)",
                {**_READER, "scenario": {"type": "string"}, "pin": {"type": "string"}},
                ["scenario"],
            ),
            "/v1/qr/verify": _post(
                "offline e-SSC QR verification (each code once)",
                {"payload": {"type": "string"}},
                ["payload"],
            ),
            "/v1/events": {
                "get": {
                    "summary": "WebSocket: hello, reader added/removed, card "
                    "inserted/removed, status, and with ?auto_read=1 a read on insert; "
                    'the page may send {"type": "read", "id": ..., "reader": ...} '
                    "(the POST /v1/card/read read, answered as a read message with its id)",
                    "responses": {
                        "101": {"description": "switching protocols"},
                        "403": {"description": "origin or host refused"},
                    },
                }
            },
        },
        "components": {
            "parameters": {
                "XSSCardRequest": {
                    "name": "X-SSCard-Request",
                    "in": "header",
                    "required": True,
                    "schema": {"const": "1"},
                },
            },
            "schemas": {"Error": _ERROR},
            "responses": {
                "Error": {
                    "description": "error object",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                },
            },
        },
    }
