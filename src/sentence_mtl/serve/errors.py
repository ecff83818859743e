"""Every error of the HTTP service as ``{"error": "<what is wrong and how to fix it>", "detail": ...}``.

The detail of a validation error lists at most :data:`MAX_LISTED_ERRORS` problems (and how many
there were), never the input itself: the answer to a bad request stays small whatever was sent.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from .schemas import EXAMPLES

logger = logging.getLogger("sentence_mtl.serve")

MAX_LISTED_ERRORS = 10
ROUTES = "POST /embed, POST /predict, POST /similar, GET /health (docs at /docs)"


class APIError(Exception):
    def __init__(self, status_code: int, error: str, detail: Any = None, headers: dict | None = None):
        super().__init__(error)
        self.status_code, self.error, self.detail, self.headers = status_code, error, detail, headers


def error_response(status_code: int, error: str, detail: Any = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status_code, headers=headers)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    for kind, name in ((bool, "a boolean"), ((int, float), "a number"), (str, "a string"),
                       (list, "an array"), (dict, "an object")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _show(value: Any, limit: int = 40) -> str:
    """A short JSON rendering; containers are not serialised (they may be huge)."""
    if isinstance(value, (list, dict)):
        return f"[{len(value)} items]" if isinstance(value, list) else f"{{{len(value)} keys}}"
    if isinstance(value, str):
        value = value[:limit]
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)[:limit]
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _field(loc) -> str:
    """``("body", "texts", 2)`` -> ``texts[2]``."""
    out = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _limit_name(field: str, kind: str) -> str:
    if kind.startswith("string_"):
        return "max_text_chars"
    return "max_documents" if field == "documents" else "max_texts"


def _describe_body(kind: str, value: Any, request: Request, example: str) -> str | None:
    """The body as a whole: missing, not JSON, or not an object."""
    if kind == "missing":
        return f"The request body is empty; send a JSON object such as {example}."
    if isinstance(value, (bytes, bytearray)):
        content_type = request.headers.get("content-type")
        got = f"got {content_type[:60]!r}" if content_type else "no Content-Type header was sent"
        return (f"The request body must be JSON sent with the header 'Content-Type: application/json' "
                f"({got}); send a JSON object such as {example}.")
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"The request body must be a JSON object such as {example}, not {_json_type(value)}."
    return None


def describe_validation_error(error: dict, request: Request) -> str:
    """One sentence for one pydantic / FastAPI validation error: what is wrong, how to fix it."""
    kind, loc = error.get("type", ""), tuple(error.get("loc", ()))
    ctx, value = error.get("ctx") or {}, error.get("input")
    example = EXAMPLES.get(request.url.path, "{...}")
    if kind == "json_invalid":
        position = f" at character {loc[1]}" if len(loc) > 1 else ""
        return (f"The request body is not valid JSON ({ctx.get('error', 'decode error')}{position}); "
                f"send a JSON object such as {example}.")
    field = _field(loc)
    if not field and (message := _describe_body(kind, value, request, example)):
        return message
    if kind == "missing":
        return f"The field '{field}' is missing; send a JSON object such as {example}."
    if kind == "extra_forbidden":
        return f"Unknown field '{field}'; this endpoint accepts only the fields in {example}."
    if kind == "list_type":
        # a lone surrogate cannot be encoded in the answer: shown escaped, as JSON writes it
        shown = value[:40].encode("utf-8", "backslashreplace").decode() if isinstance(value, str) else "..."
        return (f"'{field}' must be a JSON array of strings, not {_json_type(value)}; "
                f'wrap a single text in a list, e.g. ["{shown}"].')
    if kind == "string_type":
        return f"'{field}' must be a string, not {_json_type(value)} ({_show(value)})."
    if kind == "string_unicode":
        where = f"'{field}'" if field else "The request body"
        return (f"{where} is not valid Unicode (it contains a lone surrogate such as \\ud800); "
                "send text that encodes as UTF-8.")
    if kind == "string_too_short":
        return f"'{field}' is empty; send text with at least one non-space character."
    if kind == "string_too_long":
        length = len(value) if isinstance(value, str) else "too many"
        return (f"'{field}' is {length} characters long, over the limit of {ctx.get('max_length')} "
                f"({_limit_name(field, kind)}); shorten or split it.")
    if kind == "too_long" and isinstance(value, list):
        name = field or "items"
        return (f"Too many {name}: {len(value)} sent, at most {ctx.get('max_length')} per request "
                f"({_limit_name(field, kind)}); split them into several requests.")
    if kind.startswith("int_"):
        return f"'{field}' must be an integer, not {_json_type(value)} ({_show(value)})."
    if kind == "too_short" and isinstance(value, list):
        return f"'{field}' is an empty list; send at least one text."
    if kind == "greater_than_equal":
        return f"'{field}' must be at least {ctx.get('ge')} (got {_show(value)})."
    if kind == "less_than_equal":
        return f"'{field}' must be at most {ctx.get('le')} (got {_show(value)})."
    if kind == "value_error":
        message = str(ctx.get("error", error.get("msg", "")))
        return f"'{field}' {message}." if field else f"{message}."
    return f"'{field}': {error.get('msg', 'invalid value')}." if field else f"{error.get('msg', 'Invalid body')}."


def validation_error_response(errors: list[dict], request: Request) -> JSONResponse:
    """422 naming the first problem; ``detail`` lists the first few (no input echoed) and the count."""
    # an unknown field explains the rest ({"text": [...]} also lacks "texts"), so it goes first
    errors = sorted(errors, key=lambda e: e.get("type") != "extra_forbidden")
    message = describe_validation_error(errors[0], request) if errors else "The request is invalid."
    if len(errors) > 1:
        message = message[:-1] + f" (and {len(errors) - 1} more problem(s); the first are in 'detail')."
    listed = [{"loc": list(e.get("loc", ()))[:8], "msg": str(e.get("msg", ""))[:200], "type": e.get("type", "")}
              for e in errors[:MAX_LISTED_ERRORS]]
    detail = {"errors": listed, "count": len(errors)}
    return error_response(422, message, detail)


def _allowed_methods(request: Request) -> str:
    """The methods of every route at this path: the ``Allow`` header of a 405 (RFC 9110)."""
    methods = set()
    for route in request.app.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match != Match.NONE and getattr(route, "methods", None):
            methods |= set(route.methods)
    return ", ".join(sorted(methods))


def install_error_handlers(app: FastAPI, max_body_bytes: int) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        return validation_error_response(list(exc.errors()), request)

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError):
        return error_response(exc.status_code, exc.error, exc.detail, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        headers = dict(exc.headers or {})
        if exc.status_code == 404:
            message = f"There is no endpoint at {request.url.path[:100]}; the endpoints are {ROUTES}."
        elif exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
            message = (f"{request.method[:20]} is not allowed on {request.url.path[:100]} (allowed: "
                       f"{headers['Allow']}); the endpoints are {ROUTES}.")
        elif exc.status_code == 413:
            message = (f"The request body is over the limit of {max_body_bytes} bytes; "
                       "send fewer or shorter texts per request.")
        elif exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            message = ("The request body could not be parsed as JSON (too deeply nested or malformed); "
                       "send a JSON object.")
        else:
            message = str(exc.detail).rstrip(".") + "."
        return error_response(exc.status_code, message, exc.detail, headers or None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "Internal server error; the request was not processed, "
                                   "and the server log has the traceback.", None)
