"""An HTTP service for the trained models: ``sentence-mtl serve`` (FastAPI + uvicorn).

Endpoints (OpenAPI schema at ``/openapi.json``, interactive docs at ``/docs``):

* ``POST /embed``   ``{"texts": [...]}`` -> L2-normalised sentence vectors from the retrieval model:
  the fine-tuned one when ``make retrieval`` has built it, else the pretrained encoder the
  multi-task model started from (:mod:`.retrieval_source`).
* ``POST /predict`` ``{"texts": [...]}`` -> label, its probability and all class probabilities,
  for every task head of the multi-task model.
* ``POST /similar`` ``{"query": "...", "documents": [...], "top_k": 5}`` -> the documents ranked
  by cosine similarity to the query (retrieval model); ``"method": "hybrid"`` fuses that with BM25
  over the documents sent (``retrieval.fuse_scores``, the dense weight chosen on validation).
* ``GET /health`` (and ``HEAD``) -> which models are loaded (folder or name, version, and for the
  retrieval model its kind and origin), the hybrid's weight and where it comes from, the limits.

Input is checked strictly (a string where a list belongs is an error, not a list of characters)
and bounded (:class:`ServiceLimits`, declared in the schema); bodies are read within a size,
time and memory budget and their items counted before parsing (:mod:`.body`), and connections
within uvicorn's limits plus a request-head timeout, a send timeout and a shutdown deadline
(:mod:`.protocol`). Every 4xx answer is ``{"error": "<one sentence:
what is wrong and how to fix it>", "detail": ...}``; an unexpected failure is a logged 500 with the
same shape, and the server keeps running. Inference is CPU-bound, so the model endpoints are
plain ``def`` functions (run in the threadpool); ``/health`` answers from the event loop, from
memory, outside the concurrency cap.

There is no authentication: bind to 127.0.0.1 (the default) or put the service behind a proxy
that authenticates.

Usage::

    sentence-mtl serve --multitask-model models/multitask [--retrieval-model models/retrieval/best]
    curl -s localhost:8000/predict -H 'Content-Type: application/json' -d '{"texts": ["Stocks fell."]}'
"""

import os  # no `from __future__ import annotations`: FastAPI reads the local request models' annotations

from fastapi import FastAPI

from .. import __version__
from .body import BodyGuard
from .errors import install_error_handlers
from .limits import ENV_PREFIX, ServiceLimits
from .models import DEFAULT_MULTITASK_DIR, ModelNotFound, Service, guarded
from .naming import model_version
from .protocol import run, uvicorn_config
from .retrieval_source import DEFAULT_RETRIEVAL_RECORDS
from .schemas import ERROR_RESPONSES, EmbedResponse, PredictResponse, SimilarResponse, request_models

__all__ = ["ModelNotFound", "ServiceLimits", "create_app", "create_app_from_env", "model_version", "run",
           "uvicorn_config"]


def create_app(multitask_dir=DEFAULT_MULTITASK_DIR, retrieval_dir=None, limits: ServiceLimits | None = None,
               int8: bool = False, retrieval_records=DEFAULT_RETRIEVAL_RECORDS) -> FastAPI:
    """Load both models and build the app. Raises :class:`ModelNotFound` if the multi-task folder,
    or a ``retrieval_dir`` given, is missing. ``retrieval_dir`` None: ``models/retrieval/best`` when
    it is there, else the pretrained encoder, its hybrid weight read from ``retrieval_records``.
    ``int8``: both transformers run in ONNX Runtime with int8 weights (``sentence_mtl.onnx_int8``)."""
    limits = limits or ServiceLimits()
    service = Service(multitask_dir, retrieval_dir, limits, int8=int8, retrieval_records=retrieval_records)
    TextsRequest, SimilarRequest = request_models(limits)
    app = FastAPI(title="sentence-mtl", version=__version__,
                  description="Sentence embeddings, multi-task predictions and similarity search. "
                              "Every error is JSON: {\"error\": \"what is wrong and how to fix it\", \"detail\": ...}. "
                              "No authentication: expose it only through a proxy that authenticates.")
    app.state.service = service
    install_error_handlers(app, limits.max_body_bytes)
    fields = {"/embed": TextsRequest, "/predict": TextsRequest, "/similar": SimilarRequest}
    app.add_middleware(BodyGuard, limits=limits,
                       fields={path: frozenset(model.model_fields) for path, model in fields.items()})

    @app.post("/embed", response_model=EmbedResponse, responses=ERROR_RESPONSES,
              summary="L2-normalised sentence vectors from the retrieval model")
    def embed(request: TextsRequest):
        return guarded("embeddings", service.embed, request.texts)

    @app.post("/predict", response_model=PredictResponse, responses=ERROR_RESPONSES,
              summary="Label, probability and class probabilities for every task head")
    def predict(request: TextsRequest):
        return guarded("predictions", service.predict, request.texts)

    @app.post("/similar", response_model=SimilarResponse, responses=ERROR_RESPONSES,
              summary="Documents ranked by cosine similarity to the query (best first)")
    def similar(request: SimilarRequest):
        return guarded("similarities", service.similar, request.query, request.documents, request.top_k,
                       request.method)

    async def health():
        return service.health()

    app.get("/health", summary="Loaded models (folder and version) and the limits")(health)
    app.head("/health", summary="Whether the service is up (no body)")(health)
    return app


def create_app_from_env() -> FastAPI:
    """For ``uvicorn --factory sentence_mtl.serve:create_app_from_env``: model folders from
    ``SENTENCE_MTL_MULTITASK_MODEL`` / ``SENTENCE_MTL_RETRIEVAL_MODEL`` (unset: the service chooses,
    as :func:`create_app` does), limits from ``SENTENCE_MTL_MAX_*``,
    ``SENTENCE_MTL_INT8=1`` for the ONNX Runtime int8 path.
    (``sentence-mtl serve`` also applies the connection limits, which plain ``uvicorn`` does not.)"""
    int8 = os.environ.get(ENV_PREFIX + "INT8", "0").strip().lower()
    if int8 not in ("0", "1", "true", "false", ""):
        raise ValueError(f"{ENV_PREFIX}INT8 must be 1 or 0, got {int8!r}.")
    return create_app(os.environ.get(ENV_PREFIX + "MULTITASK_MODEL", DEFAULT_MULTITASK_DIR),
                      os.environ.get(ENV_PREFIX + "RETRIEVAL_MODEL") or None,
                      ServiceLimits.from_env(), int8=int8 in ("1", "true"))
