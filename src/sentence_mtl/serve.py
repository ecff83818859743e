"""An HTTP service for the trained models: ``sentence-mtl serve`` (FastAPI + uvicorn).

Endpoints (OpenAPI schema at ``/openapi.json``, interactive docs at ``/docs``):

* ``POST /embed``   ``{"texts": [...]}`` -> L2-normalised sentence vectors from the retrieval model.
* ``POST /predict`` ``{"texts": [...]}`` -> label, its probability and all class probabilities,
  for every task head of the multi-task model.
* ``POST /similar`` ``{"query": "...", "documents": [...], "top_k": 5}`` -> the documents ranked
  by cosine similarity to the query (retrieval model).
* ``GET /health`` -> which models are loaded, from where, and which version of each.

Input is checked strictly (a string where a list belongs is an error, not a list of characters)
and bounded (:class:`ServiceLimits`). Every 4xx answer is ``{"error": "<one sentence: what is
wrong and how to fix it>", "detail": ...}``; an unexpected failure is a logged 500 with the same
shape, and the server keeps running. Inference is CPU-bound, so endpoints are plain ``def``
functions (run in the threadpool) and each model is used under its own lock: Hugging Face fast
tokenizers are not safe to call from several threads at once.

Usage::

    sentence-mtl serve --multitask-model models/multitask --retrieval-model models/retrieval/best
    curl -s localhost:8000/predict -H 'Content-Type: application/json' -d '{"texts": ["Stocks fell."]}'
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StrictStr, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import __version__
from .encoder import SentenceEncoder, resolve_model_path
from .multitask import CONFIG_NAME, MultiTaskModel

logger = logging.getLogger(__name__)

DEFAULT_MULTITASK_DIR = "models/multitask"
DEFAULT_RETRIEVAL_DIR = "models/retrieval/best"
DEFAULT_TOP_K = 5
ENV_PREFIX = "SENTENCE_MTL_"


class ModelNotFound(RuntimeError):
    """A model folder the service needs is missing; the message names the command that builds it."""


@dataclass(frozen=True)
class ServiceLimits:
    """Per-request bounds. Each can be set by ``SENTENCE_MTL_<FIELD>`` (``SENTENCE_MTL_MAX_TEXTS``)."""

    max_texts: int = 64  # texts per /embed or /predict request
    max_text_chars: int = 2000  # characters per text, query or document
    max_documents: int = 256  # documents per /similar request
    max_body_bytes: int = 8 * 1024 * 1024  # raw request body, checked before any parsing

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ServiceLimits.{f.name} must be a positive integer (got {value!r}).")

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


# --------------------------------------------------------------------------- request / response schemas


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("is empty or whitespace only; send text with at least one non-space character")
    return text


Text = Annotated[StrictStr, AfterValidator(_not_blank)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextsRequest(_Strict):
    texts: list[Text] = Field(min_length=1, description="The texts, one string each (at least one).",
                              examples=[["Stocks rallied after the earnings report.", "What a lovely film!"]])


class SimilarRequest(_Strict):
    query: Text = Field(examples=["Who won the match?"])
    documents: list[Text] = Field(min_length=1, examples=[["The home team won 2-1.", "Oil prices rose."]])
    top_k: Annotated[StrictInt, Field(ge=1)] | None = Field(
        default=None, description=f"How many results (1..len(documents); default {DEFAULT_TOP_K} or all).")

    @model_validator(mode="after")
    def _top_k_fits(self):
        if self.top_k is not None and self.top_k > len(self.documents):
            n = len(self.documents)
            raise ValueError(f"'top_k' is {self.top_k} but only {n} document{'s' * (n != 1)} "
                             f"{'were' if n != 1 else 'was'} sent; use a top_k between 1 and {n}")
        return self


class EmbedResponse(BaseModel):
    model: str
    dim: int
    vectors: list[list[float]]


class PredictResponse(BaseModel):
    predictions: list[dict[str, Any]] = Field(description=(
        'One object per text: {"text": ..., "<task>": {"label": ..., "probability": ..., '
        '"probabilities": {"<label>": p, ...}}, ...}.'))


class SimilarResult(BaseModel):
    index: int
    document: str
    score: float


class SimilarResponse(BaseModel):
    results: list[SimilarResult]


class ErrorResponse(BaseModel):
    error: str
    detail: Any = None


ERROR_RESPONSES = {code: {"model": ErrorResponse} for code in (400, 413, 422, 500)}
EXAMPLES = {"/embed": '{"texts": ["a sentence"]}', "/predict": '{"texts": ["a sentence"]}',
            "/similar": '{"query": "a question", "documents": ["a text", "another"], "top_k": 1}'}


# --------------------------------------------------------------------------- errors


class APIError(Exception):
    def __init__(self, status_code: int, error: str, detail: Any = None):
        super().__init__(error)
        self.status_code, self.error, self.detail = status_code, error, detail


def _error_response(status_code: int, error: str, detail: Any = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status_code)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    for kind, name in ((bool, "a boolean"), ((int, float), "a number"), (str, "a string"),
                       (list, "an array"), (dict, "an object")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _show(value: Any, limit: int = 40) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _field(loc) -> str:
    """``("body", "texts", 2)`` -> ``texts[2]``."""
    out = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


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
    if not field:  # the body as a whole
        if kind == "missing":
            return f"The request body is empty; send a JSON object such as {example}."
        if isinstance(value, (bytes, bytearray)):
            content_type = request.headers.get("content-type")
            got = f"got {content_type!r}" if content_type else "no Content-Type header was sent"
            return (f"The request body must be JSON sent with the header 'Content-Type: application/json' "
                    f"({got}); send a JSON object such as {example}.")
        if kind in ("model_type", "model_attributes_type", "dict_type"):
            return f"The request body must be a JSON object such as {example}, not {_json_type(value)}."
    if kind == "missing":
        return f"The field '{field}' is missing; send a JSON object such as {example}."
    if kind == "extra_forbidden":
        return f"Unknown field '{field}'; this endpoint accepts only the fields in {example}."
    if kind == "list_type":
        return (f"'{field}' must be a JSON array of strings, not {_json_type(value)}; "
                f'wrap a single text in a list, e.g. ["{value if isinstance(value, str) else "..."}"].')
    if kind == "string_type":
        return f"'{field}' must be a string, not {_json_type(value)} ({_show(value)})."
    if kind.startswith("int_"):
        return f"'{field}' must be an integer, not {_json_type(value)} ({_show(value)})."
    if kind == "too_short" and isinstance(value, list):
        return f"'{field}' is an empty list; send at least one text."
    if kind == "greater_than_equal":
        return f"'{field}' must be at least {ctx.get('ge')} (got {value!r})."
    if kind == "value_error":
        message = str(ctx.get("error", error.get("msg", "")))
        return f"'{field}' {message}." if field else f"{message}."
    return f"'{field}': {error.get('msg', 'invalid value')}." if field else f"{error.get('msg', 'Invalid body')}."


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        # an unknown field explains the rest ({"text": [...]} also lacks "texts"), so it goes first
        errors = sorted(exc.errors(), key=lambda e: e.get("type") != "extra_forbidden")
        message = describe_validation_error(errors[0], request) if errors else "The request is invalid."
        if len(errors) > 1:
            message = message[:-1] + f" (and {len(errors) - 1} more problem(s), listed in 'detail')."
        detail = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type", "")}
                  for e in errors]
        return _error_response(422, message, detail)

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError):
        return _error_response(exc.status_code, exc.error, exc.detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        routes = "POST /embed, POST /predict, POST /similar, GET /health (docs at /docs)"
        if exc.status_code == 404:
            message = f"There is no endpoint at {request.url.path}; the endpoints are {routes}."
        elif exc.status_code == 405:
            message = (f"{request.method} is not allowed on {request.url.path}; "
                       f"the endpoints are {routes}.")
        else:
            message = str(exc.detail).rstrip(".") + "."
        return _error_response(exc.status_code, message, exc.detail)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error_response(500, "Internal server error; the request was not processed, "
                                    "and the server log has the traceback.", None)


class _BodySizeLimit:
    """Refuse bodies over ``max_bytes`` with 413 before anything parses them (pure ASGI, so it
    works for chunked bodies too): the body is buffered up to the limit, then replayed."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def _refuse(self, scope, receive, send):
        response = _error_response(413, f"The request body is over the limit of {self.max_bytes} bytes; "
                                        "send fewer or shorter texts per request.", {"max_body_bytes": self.max_bytes})
        await response(scope, receive, send)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


# --------------------------------------------------------------------------- models


def model_version(directory: Path) -> str:
    """The ``finished`` time of the folder's ``training_summary.json`` if it has one, else the first
    12 hex digits of a SHA-256 over every file (relative path and bytes), sorted by path."""
    summary = directory / "training_summary.json"
    if summary.is_file():
        try:
            finished = json.loads(summary.read_text()).get("finished")
        except (ValueError, OSError):
            finished = None
        if finished:
            return str(finished)
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(directory)).encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return "sha256:" + digest.hexdigest()[:12]


def _check_model_dirs(multitask_dir, retrieval_dir) -> tuple[Path, Path]:
    """Both folders, resolved; a :class:`ModelNotFound` naming every missing one and its make target."""
    problems = []
    multitask = Path(multitask_dir).expanduser()
    if not (multitask / CONFIG_NAME).is_file():
        problems.append(f"no multi-task model at {multitask} (no {CONFIG_NAME}): build it with `make train` "
                        f"(writes {DEFAULT_MULTITASK_DIR}) or pass --multitask-model DIR")
    retrieval = Path(resolve_model_path(retrieval_dir))
    if not (retrieval / "config.json").is_file():
        problems.append(f"no retrieval model at {retrieval_dir}: build it with `make retrieval` "
                        f"(writes {DEFAULT_RETRIEVAL_DIR}) or pass --retrieval-model DIR")
    if problems:
        raise ModelNotFound("; ".join(problems) + ".")
    return multitask.resolve(), retrieval.resolve()


class _Service:
    """The loaded models, their locks, and the computations behind the endpoints."""

    def __init__(self, multitask_dir, retrieval_dir, limits: ServiceLimits):
        self.multitask_dir, self.retrieval_dir = _check_model_dirs(multitask_dir, retrieval_dir)
        self.limits = limits
        self.multitask = MultiTaskModel.from_pretrained(self.multitask_dir)
        self.retrieval = SentenceEncoder.from_pretrained(self.retrieval_dir)
        self.multitask_lock, self.retrieval_lock = threading.Lock(), threading.Lock()
        self.versions = {"multitask": model_version(self.multitask_dir),
                         "retrieval": model_version(self.retrieval_dir)}
        logger.info("multi-task model %s (tasks %s, version %s); retrieval model %s (dim %d, version %s)",
                    self.multitask_dir, self.multitask.tasks, self.versions["multitask"],
                    self.retrieval_dir, self.retrieval.dim, self.versions["retrieval"])

    # ---- bounds (types and emptiness are the schemas' job)

    def check_texts(self, texts: list[str], name: str, limit: int, limit_name: str) -> None:
        if len(texts) > limit:
            raise APIError(413, f"Too many {name}: {len(texts)} sent, at most {limit} per request "
                                f"({limit_name}); split them into several requests.",
                           {"count": len(texts), limit_name: limit})
        self.check_lengths(texts, name)

    def check_lengths(self, texts: list[str], name: str) -> None:
        limit = self.limits.max_text_chars
        for i, text in enumerate(texts):
            if len(text) > limit:
                where = f"{name}[{i}]" if name != "query" else "query"
                raise APIError(413, f"'{where}' is {len(text)} characters long, over the limit of {limit} "
                                    "(max_text_chars); shorten or split it.",
                               {"field": where, "length": len(text), "max_text_chars": limit})

    # ---- computations

    def _embed(self, texts: list[str]) -> np.ndarray:
        with self.retrieval_lock:
            vectors = self.retrieval.encode(texts)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.clip(norms, 1e-12, None)

    def embed(self, texts: list[str]) -> dict:
        vectors = self._embed(texts)
        return {"model": self.retrieval.name or str(self.retrieval_dir), "dim": int(vectors.shape[1]),
                "vectors": vectors.tolist()}

    def predict(self, texts: list[str]) -> dict:
        with self.multitask_lock:
            proba = self.multitask.predict_proba(texts)
        predictions = [{"text": text} for text in texts]
        for task, p in proba.items():
            names = self.multitask.specs[task].label_names
            best = p.argmax(1)
            for i, row in enumerate(p.tolist()):
                predictions[i][task] = {"label": names[best[i]], "probability": row[best[i]],
                                        "probabilities": dict(zip(names, row))}
        return {"predictions": predictions}

    def similar(self, query: str, documents: list[str], top_k: int | None) -> dict:
        vectors = self._embed([query, *documents])
        scores = vectors[1:] @ vectors[0]
        k = top_k if top_k is not None else min(DEFAULT_TOP_K, len(documents))
        order = np.argsort(-scores, kind="stable")[:k]
        return {"results": [{"index": int(i), "document": documents[i], "score": float(scores[i])}
                            for i in order]}

    def health(self) -> dict:
        return {"status": "ok", "package_version": __version__, "limits": asdict(self.limits), "models": {
            "multitask": {"path": str(self.multitask_dir), "tasks": self.multitask.tasks,
                          "labels": {t: list(s.label_names) for t, s in self.multitask.specs.items()},
                          "version": self.versions["multitask"]},
            "retrieval": {"path": str(self.retrieval_dir), "name": self.retrieval.name,
                          "dim": self.retrieval.dim, "version": self.versions["retrieval"]}}}


def _guarded(what: str, compute, *args):
    """Run model code; an unexpected exception becomes a logged 500, never a dead server."""
    try:
        return compute(*args)
    except APIError:
        raise
    except Exception:
        logger.exception("%s failed", what)
        raise APIError(500, f"Internal server error while computing {what}; the request was not "
                            "processed, and the server log has the traceback.") from None


# --------------------------------------------------------------------------- the app


def create_app(multitask_dir=DEFAULT_MULTITASK_DIR, retrieval_dir=DEFAULT_RETRIEVAL_DIR,
               limits: ServiceLimits | None = None) -> FastAPI:
    """Load both models and build the app. Raises :class:`ModelNotFound` if either folder is missing."""
    limits = limits or ServiceLimits()
    service = _Service(multitask_dir, retrieval_dir, limits)
    app = FastAPI(title="sentence-mtl", version=__version__,
                  description="Sentence embeddings, multi-task predictions and similarity search. "
                              "Every error is JSON: {\"error\": \"what is wrong and how to fix it\", \"detail\": ...}.")
    app.state.service = service
    _install_error_handlers(app)
    app.add_middleware(_BodySizeLimit, max_bytes=limits.max_body_bytes)

    @app.post("/embed", response_model=EmbedResponse, responses=ERROR_RESPONSES,
              summary="L2-normalised sentence vectors from the retrieval model")
    def embed(request: TextsRequest):
        service.check_texts(request.texts, "texts", limits.max_texts, "max_texts")
        return _guarded("embeddings", service.embed, request.texts)

    @app.post("/predict", response_model=PredictResponse, responses=ERROR_RESPONSES,
              summary="Label, probability and class probabilities for every task head")
    def predict(request: TextsRequest):
        service.check_texts(request.texts, "texts", limits.max_texts, "max_texts")
        return _guarded("predictions", service.predict, request.texts)

    @app.post("/similar", response_model=SimilarResponse, responses=ERROR_RESPONSES,
              summary="Documents ranked by cosine similarity to the query (best first)")
    def similar(request: SimilarRequest):
        service.check_texts(request.documents, "documents", limits.max_documents, "max_documents")
        service.check_lengths([request.query], "query")
        return _guarded("similarities", service.similar, request.query, request.documents, request.top_k)

    @app.get("/health", summary="Loaded models, their paths and versions")
    def health():
        return service.health()

    return app


def create_app_from_env() -> FastAPI:
    """For ``uvicorn --factory sentence_mtl.serve:create_app_from_env``: model folders from
    ``SENTENCE_MTL_MULTITASK_MODEL`` / ``SENTENCE_MTL_RETRIEVAL_MODEL``, limits from ``SENTENCE_MTL_MAX_*``."""
    return create_app(os.environ.get(ENV_PREFIX + "MULTITASK_MODEL", DEFAULT_MULTITASK_DIR),
                      os.environ.get(ENV_PREFIX + "RETRIEVAL_MODEL", DEFAULT_RETRIEVAL_DIR),
                      ServiceLimits.from_env())
