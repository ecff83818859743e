"""Reading request bodies within bounds, before anything parses them (pure ASGI middleware).

* a body over ``max_body_bytes`` is refused with 413 as soon as it is declared (Content-Length) or,
  for a chunked body, as soon as the bytes received pass the limit: it is never held whole;
* a body that is not complete within ``body_timeout`` seconds gets 408;
* all bodies being received at once may hold at most ``max_buffered_bytes``: past that, 503 with
  ``Retry-After``, so many slow or unfinished uploads cannot exhaust memory.

A body read within the bounds is replayed to the app in one message.
"""

from __future__ import annotations

import asyncio
import time

from .errors import error_response
from .limits import ServiceLimits


class BodyGuard:
    def __init__(self, app, limits: ServiceLimits):
        self.app, self.limits = app, limits
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

            async def replay():
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send)
        finally:
            self.buffered -= size
