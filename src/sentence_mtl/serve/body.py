"""Reading request bodies within bounds, before anything parses them (pure ASGI middleware).

* a body over ``max_body_bytes`` is refused with 413 as soon as it is declared (Content-Length) or,
  for a chunked body, as soon as the bytes received pass the limit: it is never held whole;
* a body that is not complete within ``body_timeout`` seconds gets 408;
* all bodies being received at once may hold at most ``max_buffered_bytes``: past that, 503 with
  ``Retry-After``, so many slow or unfinished uploads cannot exhaust memory;
* at most ``max_concurrency`` requests are handled at once (reading a body counts): past that,
  503 with ``Retry-After``. Idle or half-open connections do not count (the protocol bounds them).

A body read within the bounds is checked in a worker thread before anything parses it: its
items (array elements and object members, whatever their type) are counted on the raw bytes
(:func:`items_over`), and a body of more than ``max_body_items`` is refused with 422, so no body
the size cap admits builds millions of objects (``[]``, ``""`` or ``0`` alike) while the event
loop waits for the interpreter lock. Then unknown top-level fields are counted (an object of a
million unknown keys would otherwise cost a million validation errors built on the event loop),
and the body is replayed to the app in one message.

``GET /health`` (and ``HEAD``) bypasses the concurrency cap: it answers from memory, and a
service that is full must still be able to say that it is alive.
"""

from __future__ import annotations

import asyncio
import json
import re
import time

import anyio

from .errors import error_response
from .limits import ServiceLimits


_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"')
HEALTH = frozenset({("GET", "/health"), ("HEAD", "/health")})


def items_over(body: bytes, budget: int) -> int | None:
    """None when ``body`` holds at most ``budget`` items (array elements and object members,
    counted as the commas, ``[`` and ``{`` outside strings), else a count over ``budget``.
    Counting bytes is C-speed; strings are only cut out when few enough to be cheap to cut."""
    def count(data: bytes) -> int:
        return data.count(b",") + data.count(b"[") + data.count(b"{")

    if count(body) <= budget:  # an upper bound: brackets and commas inside strings counted too
        return None
    strings = (body.count(b'"') - body.count(b'\\"')) // 2  # a lower bound on the strings
    if strings > budget:
        return strings
    outside = count(_STRING.sub(b'""', body))
    return outside if outside > budget else None


def too_many_items_error(items: int, limits: ServiceLimits) -> str:
    return (f"The request body holds {items} or more items (array elements and object members), over the "
            f"limit of {limits.max_body_items} (max_body_items); a request takes at most {limits.max_texts} "
            f"texts or {limits.max_documents} documents: split them into several requests.")


def unknown_fields(body: bytes, allowed: frozenset[str]) -> list[str]:
    """The top-level keys of a JSON object body that are not ``allowed`` (none for anything else:
    the app's own validation answers malformed or non-object bodies)."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return []
    return [key for key in value if key not in allowed] if isinstance(value, dict) else []


def unknown_fields_error(unknown: list[str], path: str, allowed: frozenset[str]) -> str:
    """Names a typo (a few short names); only counts a flood of keys, so no input is echoed back."""
    takes = f"POST {path} takes only {', '.join(sorted(allowed))}."
    if len(unknown) <= 3 and all(len(k) <= 40 for k in unknown):
        return f"Unknown field{'s' * (len(unknown) > 1)} {', '.join(repr(k) for k in unknown)}; {takes}"
    return f"The body has {len(unknown)} unknown fields; {takes}"


class BodyGuard:
    def __init__(self, app, limits: ServiceLimits, fields: dict[str, frozenset[str]] | None = None):
        self.app, self.limits = app, limits
        self.fields = fields or {}  # path -> the fields its request body may have
        self.active = 0  # requests being handled now
        self.buffered = 0  # bytes held by bodies being read now (one event loop: no lock needed)

    async def _refuse(self, scope, receive, send, status: int, error: str, detail: dict, headers=None):
        await error_response(status, error, detail, headers)(scope, receive, send)

    async def _too_large(self, scope, receive, send):
        limit = self.limits.max_body_bytes
        await self._refuse(scope, receive, send, 413, f"The request body is over the limit of {limit} bytes; "
                           "send fewer or shorter texts per request.", {"max_body_bytes": limit})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if (scope.get("method"), scope.get("path")) in HEALTH:
            await self.app(scope, receive, send)
            return
        if self.active >= self.limits.max_concurrency:
            await self._refuse(scope, receive, send, 503, f"The server is handling {self.active} requests, its "
                               "limit; retry in a moment.", {"max_concurrency": self.limits.max_concurrency},
                               {"Retry-After": "1"})
            return
        self.active += 1
        try:
            await self._guarded(scope, receive, send)
        finally:
            self.active -= 1

    async def _guarded(self, scope, receive, send):
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limits.max_body_bytes:
            await self._too_large(scope, receive, send)
            return
        chunks, size = [], 0
        deadline = time.monotonic() + self.limits.body_timeout
        try:
            while True:
                try:
                    message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0.001))
                except asyncio.TimeoutError:
                    await self._refuse(scope, receive, send, 408, f"The request body was not complete within "
                                       f"{self.limits.body_timeout} s; send it in one go.",
                                       {"body_timeout": self.limits.body_timeout, "received_bytes": size},
                                       {"Connection": "close"})  # a stalled client gets its connection closed
                    return
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                if size + len(chunk) > self.limits.max_body_bytes:
                    await self._too_large(scope, receive, send)
                    return
                if self.buffered + len(chunk) > self.limits.max_buffered_bytes:
                    await self._refuse(scope, receive, send, 503, "The server is receiving too many request "
                                       "bodies at once; retry in a moment.",
                                       {"max_buffered_bytes": self.limits.max_buffered_bytes},
                                       {"Retry-After": "1"})
                    return
                size += len(chunk)
                self.buffered += len(chunk)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            body, replayed = b"".join(chunks), False
            chunks.clear()
            allowed = self.fields.get(scope.get("path", "")) if scope.get("method") == "POST" else None
            if allowed is not None and (items := await anyio.to_thread.run_sync(
                    items_over, body, self.limits.max_body_items)):
                await self._refuse(scope, receive, send, 422, too_many_items_error(items, self.limits),
                                   {"items": items, "max_body_items": self.limits.max_body_items})
                return
            if allowed is not None and (unknown := await anyio.to_thread.run_sync(unknown_fields, body, allowed)):
                await self._refuse(scope, receive, send, 422, unknown_fields_error(unknown, scope["path"], allowed),
                                   {"unknown_fields": len(unknown), "allowed": sorted(allowed)})
                return

            async def replay():
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send)
        finally:
            self.buffered -= size
