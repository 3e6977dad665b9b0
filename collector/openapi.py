"""GET /api/v1/openapi.json: the OpenAPI 3.1 document of every /api/v1 route, built from the pydantic models they use."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic.json_schema import models_json_schema

from collector import __version__
from collector.api_schemas import ErrorOut, OrderOut, StatsOut
from collector.schemas import OrderIn

REF = "#/components/schemas/{model}"


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorOut")}}},
    }


UNAUTHORIZED = {
    **_error("no valid API token (nothing about the site is told)"),
    "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
}
RANGE = [
    {
        "name": name,
        "in": "query",
        "required": False,
        "description": f"{what}: a date (YYYY-MM-DD, UTC midnight) or an ISO 8601 time",
        "schema": {"type": "string"},
    }
    for name, what in (("since", "from (inclusive)"), ("until", "to (exclusive)"))
]
KEY = {
    "name": "key",
    "in": "path",
    "required": True,
    "description": "the site's public key",
    "schema": {"type": "string"},
}


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    """The document (built once: it depends on the code only)."""
    _, defs = models_json_schema(
        [(OrderIn, "validation"), (OrderOut, "serialization"), (StatsOut, "validation"), (ErrorOut, "serialization")],
        ref_template=REF,
    )
    schemas = defs["$defs"]

    def ok(model: str, description: str) -> dict[str, Any]:
        return {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": REF.format(model=model)}}},
        }

    secured: list[dict[str, list[str]]] = [{"bearer": []}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Cartback server API",
            "version": __version__,
            "description": "For other programs: purchase reports, the leads CSV and the stats. See docs/reference.md.",
        },
        "paths": {
            "/api/v1/orders": {
                "post": {
                    "operationId": "postOrder",
                    "summary": "A purchase reported by the store's server; idempotent by (site, order_id)",
                    "security": secured,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": REF.format(model="OrderIn")}}},
                    },
                    "responses": {
                        "200": ok("OrderOut", "the order as stored"),
                        "400": _error("the body was cut off"),
                        "401": UNAUTHORIZED,
                        "404": _error("unknown site"),
                        "413": _error("body over 32 KiB"),
                        "422": _error("a field is wrong (named in the message)"),
                    },
                }
            },
            "/api/v1/sites/{key}/leads.csv": {
                "get": {
                    "operationId": "getLeadsCsv",
                    "summary": "The leads CSV (RFC 4180, UTF-8), as `cartback leads export` writes it",
                    "security": secured,
                    "parameters": [KEY, *RANGE],
                    "responses": {
                        "200": {"description": "the CSV", "content": {"text/csv": {"schema": {"type": "string"}}}},
                        "400": _error("since or until is not a date"),
                        "401": UNAUTHORIZED,
                        "404": _error("unknown site"),
                    },
                }
            },
            "/api/v1/sites/{key}/stats": {
                "get": {
                    "operationId": "getStats",
                    "summary": "The funnel numbers of the range, the same as the dashboard's overview",
                    "security": secured,
                    "parameters": [KEY, *RANGE],
                    "responses": {
                        "200": ok("StatsOut", "the numbers"),
                        "400": _error("since or until is not a date"),
                        "401": UNAUTHORIZED,
                        "404": _error("unknown site"),
                    },
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "This document (no token needed)",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {"schemas": schemas, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
