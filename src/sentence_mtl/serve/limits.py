"""The service's bounds on requests and connections (:class:`ServiceLimits`), each settable by an
environment variable, so that no single client can take the whole server's time or memory."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

ENV_PREFIX = "SENTENCE_MTL_"


@dataclass(frozen=True)
class ServiceLimits:
    """Bounds per request and per server. Each can be set by ``SENTENCE_MTL_<FIELD>``
    (``SENTENCE_MTL_MAX_TEXTS``); the request-body limits are also declared in the OpenAPI schema."""

    max_texts: int = 64  # texts per /embed or /predict request
    max_text_chars: int = 2000  # characters per text, query or document
    max_documents: int = 256  # documents per /similar request (and the largest top_k)
    max_body_bytes: int = 8 * 1024 * 1024  # raw request body, counted while it streams in
    max_buffered_bytes: int = 64 * 1024 * 1024  # request bodies held at once, all requests together
    max_concurrency: int = 100  # requests handled at once, bodies being read included
    max_connections: int = 1000  # open connections, idle and half-open ones included
    header_timeout: int = 10  # seconds to send the request line and headers
    body_timeout: int = 30  # seconds to send the whole body once the headers are in
    keep_alive_timeout: int = 5  # seconds an idle keep-alive connection stays open
    send_timeout: int = 30  # seconds an answer may wait for its client to read it (then: closed)
    shutdown_timeout: int = 30  # seconds SIGTERM waits for requests in flight before cancelling them
    max_body_items: int = 100_000  # array elements and object members in a body, counted before parsing

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ServiceLimits.{f.name} must be a positive integer (got {value!r}).")
        if self.max_buffered_bytes < self.max_body_bytes:
            raise ValueError(f"ServiceLimits.max_buffered_bytes ({self.max_buffered_bytes}) must be at least "
                             f"max_body_bytes ({self.max_body_bytes}), or no request of the largest size "
                             f"could ever be read; raise {ENV_PREFIX}MAX_BUFFERED_BYTES.")
        needed = max(self.max_texts, self.max_documents + 1) + 8
        if self.max_body_items < needed:
            raise ValueError(f"ServiceLimits.max_body_items ({self.max_body_items}) must be at least {needed} "
                             f"(max_texts, or max_documents plus the query, plus the other fields), or no "
                             f"request of the largest size could be read; raise {ENV_PREFIX}MAX_BODY_ITEMS.")

    @classmethod
    def from_env(cls, environ=None, **overrides) -> "ServiceLimits":
        """Defaults, then ``SENTENCE_MTL_*`` environment variables, then ``overrides`` not None."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            name = ENV_PREFIX + f.name.upper()
            if environ.get(name, "").strip():
                try:
                    values[f.name] = int(environ[name])
                except ValueError:
                    raise ValueError(f"{name} must be a positive integer (got {environ[name]!r}).") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
