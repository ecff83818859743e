"""Retrieval: fine-tune the encoder on SciFact claims -> abstracts, evaluate, version, promote.

Fine-tuning uses sentence-transformers' own trainer and ``MultipleNegativesRankingLoss``
(in-batch negatives; the ``NO_DUPLICATES`` batch sampler keeps a text from appearing twice in
a batch, where it would be a false negative), optionally with one hard negative per pair mined
by BM25 and several epochs, the one kept chosen on validation queries. Ranking metrics are
computed here, exactly, by scoring every query against the whole corpus.

The registry is the fine-tune -> version -> evaluate -> promote -> serve flow: every run is
saved under ``models/retrieval/<run-id>/`` with its metrics and config, and ``best`` (a
symlink) moves to it only when its *validation* NDCG@10 beats the current best's.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .config import DEFAULT_MODEL, REPO_ROOT
from .data import RetrievalData
from .io import make_readable, write_json

REGISTRY = REPO_ROOT / "models" / "retrieval"


def document_text(doc: dict[str, str]) -> str:
    return f"{doc['title']} {doc['text']}".strip()


# --------------------------------------------------------------------------- metrics


def rank_metrics(scores: np.ndarray, query_ids: list[str], doc_ids: list[str],
                 qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    """NDCG@10 (binary gains, log2 discount, ideal from the judged documents), MRR@10 and
    Recall@100, averaged over queries. ``scores[i, j]``: query i against document j."""
    top = np.argsort(-scores, axis=1)[:, :100]
    ndcg, mrr, recall = [], [], []
    for i, qid in enumerate(query_ids):
        relevant = {d for d, rel in qrels[qid].items() if rel > 0}
        ranked = [doc_ids[j] for j in top[i]]
        gains = [1.0 if d in relevant else 0.0 for d in ranked[:10]]
        dcg = sum(g / math.log2(rank + 2) for rank, g in enumerate(gains))
        ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(len(relevant), 10)))
        ndcg.append(dcg / ideal if ideal else 0.0)
        first = next((rank for rank, g in enumerate(gains) if g), None)
        mrr.append(1.0 / (first + 1) if first is not None else 0.0)
        recall.append(len(relevant & set(ranked[:100])) / len(relevant) if relevant else 0.0)
    return {"ndcg@10": float(np.mean(ndcg)), "mrr@10": float(np.mean(mrr)), "recall@100": float(np.mean(recall))}


def dense_scores(encoder, queries: list[str], documents: list[str], batch_size: int = 32,
                 document_vectors: np.ndarray | None = None) -> np.ndarray:
    """Cosine similarities; pass ``document_vectors`` to reuse an encoded corpus."""
    q = encoder.encode(queries, batch_size=batch_size)
    d = document_vectors if document_vectors is not None else encoder.encode(documents, batch_size=batch_size)
    q = q / np.linalg.norm(q, axis=1, keepdims=True).clip(min=1e-12)
    d = d / np.linalg.norm(d, axis=1, keepdims=True).clip(min=1e-12)
    return q @ d.T


BM25 = "bm25s 0.3, Lucene variant, k1=1.5, b=0.75, English stop words, Snowball stemmer"
"""What ``bm25_scores`` computes, named in the run store's keys: a different BM25 is a different run."""


def bm25_scores(queries: list[str], documents: list[str]) -> np.ndarray:
    """BM25 as MTEB runs it (BM25S, Lù 2024): the ``bm25s`` library's Lucene variant, English stop
    words removed and words stemmed (Snowball via PyStemmer), so "mutations" matches "mutation".
    One BM25 for the baseline, hard-negative mining, the fused hybrids and the service."""
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    tokens = lambda texts: bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False)  # noqa: E731
    corpus = tokens(documents)
    if not queries or not any(len(ids) for ids in corpus.ids):  # no query, or no word to match
        return np.zeros((len(queries), len(documents)))
    retriever = bm25s.BM25(method="lucene", k1=1.5, b=0.75)
    retriever.index(corpus, show_progress=False)
    ids, scores = retriever.retrieve(tokens(queries), k=len(documents), show_progress=False)
    full = np.zeros((len(queries), len(documents)))
    np.put_along_axis(full, ids, scores, axis=1)
    return full


# --------------------------------------------------------------------------- hybrid: BM25 + dense

FUSION_WEIGHTS = tuple(round(w / 10, 1) for w in range(11))  # the dense share, chosen on validation
DEFAULT_DENSE_WEIGHT = 0.5  # equal shares: the service's hybrid when its model records no chosen weight


def min_max_rows(scores: np.ndarray) -> np.ndarray:
    """Each query's scores mapped onto [0, 1]: BM25 and cosine scores live on different scales."""
    low, high = scores.min(axis=1, keepdims=True), scores.max(axis=1, keepdims=True)
    return (scores - low) / np.where(high > low, high - low, 1.0)


def fuse_scores(dense: np.ndarray, sparse: np.ndarray, dense_weight: float) -> np.ndarray:
    """Convex combination of the per-query normalised scores (score fusion; Bruch et al. 2023 find
    it at least as good as reciprocal-rank fusion when its weight is tuned)."""
    return dense_weight * min_max_rows(dense) + (1.0 - dense_weight) * min_max_rows(sparse)


def reciprocal_rank_fusion(*scores: np.ndarray, k: int = 60) -> np.ndarray:
    """Sum of 1 / (k + rank) over the rankings (Cormack et al. 2009): no weight to choose."""
    fused = np.zeros_like(scores[0], dtype=float)
    for s in scores:
        ranks = np.argsort(np.argsort(-s, axis=1), axis=1) + 1
        fused += 1.0 / (k + ranks)
    return fused


def choose_fusion_weight(dense: np.ndarray, sparse: np.ndarray, query_ids: list[str], doc_ids: list[str],
                         qrels: dict, weights=FUSION_WEIGHTS) -> tuple[float, dict[float, float]]:
    """The dense weight with the best NDCG@10 on these (validation) queries, and the whole curve."""
    curve = {w: rank_metrics(fuse_scores(dense, sparse, w), query_ids, doc_ids, qrels)["ndcg@10"] for w in weights}
    return max(curve, key=lambda w: (curve[w], -abs(w - 0.5))), curve


def split_queries(data: RetrievalData, n_val: int, seed: int = 0) -> tuple[RetrievalData, RetrievalData]:
    """A fixed validation set of training queries, for model selection (the test set is not used)."""
    from dataclasses import replace

    qids = sorted(data.queries, key=lambda q: (len(q), q))
    rng = np.random.default_rng(seed)
    val = set(rng.choice(qids, size=min(n_val, len(qids) // 2), replace=False).tolist())
    part = lambda keep: replace(data, queries={q: t for q, t in data.queries.items() if keep(q)},  # noqa: E731
                                qrels={q: r for q, r in data.qrels.items() if keep(q)})
    return part(lambda q: q not in val), replace(part(lambda q: q in val), split="val")


def training_pairs(data: RetrievalData, negatives: dict[str, str] | None = None) -> tuple[list[str], ...]:
    """(claim, relevant abstract) pairs, one per judged pair; with ``negatives`` (query id -> document
    id, from ``bm25_hard_negatives``) a third column holds the query's hard negative."""
    anchors, positives, hard = [], [], []
    for qid, docs in sorted(data.qrels.items()):
        for did, rel in sorted(docs.items()):
            if rel > 0:
                anchors.append(data.queries[qid])
                positives.append(document_text(data.corpus[did]))
                if negatives is not None:
                    hard.append(document_text(data.corpus[negatives[qid]]))
    return (anchors, positives, hard) if negatives is not None else (anchors, positives)


FALSE_NEGATIVE_RATIO = 0.95  # NV-Retriever's "TopK-PercPos" threshold (Moreira et al. 2024)


def bm25_hard_negatives(sparse: np.ndarray, dense: np.ndarray, query_ids: list[str], doc_ids: list[str],
                        qrels: dict, max_ratio: float = FALSE_NEGATIVE_RATIO) -> dict[str, str]:
    """Per query, the highest-ranked BM25 document that is neither judged relevant nor suspiciously
    close to the query: its cosine score under the pretrained encoder (``dense``) must stay below
    ``max_ratio`` times that of the least similar relevant document. A candidate the encoder ranks
    with the true positives is more likely an unjudged positive than a negative (false-negative
    filtering after Moreira et al. 2024). ``sparse``, ``dense``: queries x ``doc_ids`` scores."""
    position = {d: j for j, d in enumerate(doc_ids)}
    negatives = {}
    for i, qid in enumerate(query_ids):
        relevant = [position[d] for d, rel in qrels[qid].items() if rel > 0 and d in position]
        ceiling = max_ratio * dense[i, relevant].min() if relevant else np.inf
        for j in np.argsort(-sparse[i], kind="stable"):
            if j not in relevant and dense[i, j] < ceiling:
                negatives[qid] = doc_ids[j]
                break
        else:
            raise ValueError(f"no hard negative passes the false-negative filter for query {qid!r}")
    return negatives


def bm25_hard_negatives_encoding_few(sparse: np.ndarray, query_vectors: np.ndarray, encode_documents,
                                     query_ids: list[str], doc_ids: list[str], qrels: dict,
                                     first: int = 4) -> tuple[dict[str, str], int]:
    """:func:`bm25_hard_negatives` without encoding the whole corpus. The filter walks a query's
    BM25 ranking from the top, so the pretrained scores of its first ``k`` documents and of the
    judged ones decide it whenever its negative lies among those ``k``; an unscored document never
    passes, and a query whose negative is not found within its ``k`` is walked again with ``k``
    four times larger (at worst, every document is scored). ``query_vectors``: unit rows;
    ``encode_documents(indices)``: unit vectors of those documents. Returns the negatives and how
    many documents were encoded."""
    order = np.argsort(-sparse, axis=1, kind="stable")  # the walk's order
    position = {d: j for j, d in enumerate(doc_ids)}
    judged = {position[d] for q in query_ids for d, rel in qrels[q].items() if rel > 0 and d in position}
    vectors: dict[int, np.ndarray] = {}
    window = dict.fromkeys(range(len(query_ids)), first)  # the queries still walked, and their k
    negatives = {}
    while window:
        needed = sorted(set(judged).union(*(order[i, :k].tolist() for i, k in window.items())) - vectors.keys())
        if needed:
            vectors.update(zip(needed, encode_documents(needed)))
        columns, complete = sorted(vectors), len(vectors) == len(doc_ids)
        rows = list(window)
        dense = np.full((len(rows), len(doc_ids)), np.inf)  # an unscored document is never taken
        dense[:, columns] = query_vectors[rows] @ np.stack([vectors[j] for j in columns]).T
        for row, i in enumerate(rows):
            qid = query_ids[i]
            try:
                negative = bm25_hard_negatives(sparse[i:i + 1], dense[row:row + 1], [qid], doc_ids, qrels)[qid]
            except ValueError:
                if complete:
                    raise
                negative = None
            if negative is not None and (complete or position[negative] in order[i, :window[i]]):
                negatives[qid] = negative
                del window[i]
            else:
                window[i] *= 4
    return {q: negatives[q] for q in query_ids}, len(vectors)


# --------------------------------------------------------------------------- fine-tuning


@dataclass
class RetrievalConfig:
    model: str = DEFAULT_MODEL
    max_seq_length: int = 256
    batch_size: int = 32
    epochs: int = 1
    learning_rate: float = 2e-5
    warmup_ratio: float = 0.1
    scale: float = 20.0  # MultipleNegativesRankingLoss temperature (1/scale)
    seed: int = 0
    n_val_queries: int = 100
    # keyed only when set: the run store's keys of the runs stored before these existed stay valid
    hard_negatives: bool = field(default=False, metadata={"keyed_when_set": True})  # a third column
    select_epoch: bool = field(default=False, metadata={"keyed_when_set": True})  # best epoch on validation

    def to_dict(self) -> dict:
        return asdict(self)


VALIDATION_METRIC = "eval_val_cosine_ndcg@10"  # what the trainer logs for the evaluator named "val"


def finetune_mnrl(pairs: tuple[list[str], ...], config: RetrievalConfig, output_dir: str | Path,
                  validation: tuple[dict, dict, dict] | None = None, corpus_vectors: list | None = None):
    """Fine-tune with sentence-transformers' trainer and MNRL; returns the SentenceTransformer and
    the trainer's log. ``pairs``: (anchors, positives) or (anchors, positives, hard negatives).
    With ``config.select_epoch``, ``validation`` = (queries, corpus, relevant ids) scores every
    epoch (NDCG@10) and the best epoch's weights are the ones returned; ``corpus_vectors``, a list,
    then receives each epoch's vectors of the validation corpus (in its order), so that scoring the
    kept epoch on that corpus need not encode it again."""
    from datasets import Dataset
    from sentence_transformers import (SentenceTransformer, SentenceTransformerTrainer,
                                       SentenceTransformerTrainingArguments)
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from .encoder import resolve_model_path

    if config.hard_negatives != (len(pairs) == 3):
        raise ValueError("config.hard_negatives says whether pairs carry a third column of hard negatives")
    if config.select_epoch and validation is None:
        raise ValueError("config.select_epoch needs validation = (queries, corpus, relevant ids)")
    model = SentenceTransformer(resolve_model_path(config.model), device="cpu" if not _cuda() else None)
    model.max_seq_length = config.max_seq_length
    dataset = Dataset.from_dict(dict(zip(("anchor", "positive", "negative"), pairs)))
    selection = {}
    if config.select_epoch:
        selection = {"eval_strategy": "epoch", "save_strategy": "epoch", "save_only_model": True,
                     "load_best_model_at_end": True, "metric_for_best_model": VALIDATION_METRIC,
                     "greater_is_better": True, "save_total_limit": 2}
    args = SentenceTransformerTrainingArguments(
        output_dir=str(output_dir), num_train_epochs=config.epochs, per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate, warmup_steps=config.warmup_ratio, seed=config.seed,
        batch_sampler=BatchSamplers.NO_DUPLICATES, **({"save_strategy": "no", "eval_strategy": "no"} | selection),
        logging_steps=5, report_to=[], disable_tqdm=False, use_cpu=not _cuda())
    evaluator = _retaining(InformationRetrievalEvaluator, corpus_vectors)(
        *validation, name="val", batch_size=32, write_csv=False, ndcg_at_k=[10], mrr_at_k=[10], accuracy_at_k=[10],
        precision_recall_at_k=[10], map_at_k=[10]) if config.select_epoch else None
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, evaluator=evaluator,
                                         loss=MultipleNegativesRankingLoss(model, scale=config.scale))
    trainer.train()
    return model, trainer.state.log_history


def _retaining(evaluator_class, corpus_vectors: list | None):
    """``evaluator_class``, appending the corpus vectors of each evaluation to ``corpus_vectors``."""
    if corpus_vectors is None:
        return evaluator_class

    class Retaining(evaluator_class):
        def compute_all_metrics(self, *args, **kwargs):
            self._chunks = []
            metrics = super().compute_all_metrics(*args, **kwargs)
            corpus_vectors.append(np.concatenate(self._chunks))
            return metrics

        def embed_inputs(self, model, sentences, encode_fn_name=None, **kwargs):
            vectors = super().embed_inputs(model, sentences, encode_fn_name=encode_fn_name, **kwargs)
            if encode_fn_name == "document":  # a chunk of the corpus, in order
                self._chunks.append(vectors.float().cpu().numpy())
            return vectors

    return Retaining


def validation_by_epoch(history: list[dict]) -> list[float]:
    """The validation NDCG@10 after each epoch, from the trainer's log (empty without selection)."""
    return [entry[VALIDATION_METRIC] for entry in history if VALIDATION_METRIC in entry]


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


# --------------------------------------------------------------------------- registry


def register_run(model, metrics: dict, config: dict, registry: Path = REGISTRY, run_id: str | None = None) -> Path:
    """Save a run as ``registry/<run-id>/`` (model + metrics.json + run_config.json), written atomically."""
    import shutil

    run_id = run_id or time.strftime("%Y%m%d-%H%M%S") + f"-seed{config.get('seed', 0)}"
    target = registry / run_id
    tmp = registry / f".{run_id}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(str(tmp))
    write_json(tmp / "metrics.json", metrics)
    write_json(tmp / "run_config.json", config)  # not config.json: that is the model's own
    make_readable(tmp)
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)
    return target


def current_best(registry: Path = REGISTRY) -> dict | None:
    best = registry / "best"
    return json.loads((best / "metrics.json").read_text()) if (best / "metrics.json").is_file() else None


def promote_if_better(run_dir: Path, metric: str = "val_ndcg@10", registry: Path = REGISTRY) -> bool:
    """Point ``registry/best`` at ``run_dir`` if its validation metric beats the current best's."""
    candidate = json.loads((run_dir / "metrics.json").read_text())[metric]
    best = current_best(registry)
    if best is not None and best[metric] >= candidate:
        return False
    link = registry / "best"
    tmp_link = registry / ".best.tmp"
    if tmp_link.is_symlink() or tmp_link.exists():
        tmp_link.unlink()
    os.symlink(run_dir.name, tmp_link)  # relative: the registry can move
    os.replace(tmp_link, link)
    return True
