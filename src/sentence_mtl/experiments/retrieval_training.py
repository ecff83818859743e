"""``make retrieval``: fine-tune the one retrieval recipe validation chose, one seed, and promote it.

    python -m sentence_mtl.experiments.retrieval_training [--records results/05_retrieval_finetuning.json]
        [--seed 0] [--output results/retrieval_timing.json] [--registry DIR] [--data-dir DIR]

Notebook 05 is the study: every recipe of ``grids.RETRIEVAL_RECIPES``, over the profile's seeds,
in the run store. Its records say which recipe the validation queries choose
(``analysis.retrieval_summary``); this trains that recipe once, on the notebook's pairs, query
split and settings (the profile's ``RETRIEVAL_GRIDS`` entry), scores it on the validation and test
queries, chooses its hybrid weight on validation as the notebook does, saves it in the registry
and promotes it to ``best`` when its validation NDCG@10 beats the current best's: the model the
service loads. Its wall time (data, negatives, training, scoring, saving) and its scores go to
``--output``.
It executes no notebook and writes no study record.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..config import Profile, get_profile, output_root, results_dir
from ..data import DataSource, RetrievalData, load_scifact
from ..io import InputError, write_json
from ..results import load_records, measure
from ..retrieval import (BM25, FUSION_WEIGHTS, REGISTRY, RetrievalConfig, bm25_hard_negatives_encoding_few, bm25_scores,
                         choose_fusion_weight, dense_scores, document_text, finetune_mnrl, promote_if_better,
                         rank_metrics, register_run, split_queries, training_pairs, validation_by_epoch)
from .analysis import retrieval_summary
from .grids import RETRIEVAL_GRIDS, RETRIEVAL_RECIPES, RetrievalGrid, RetrievalRecipe, grid_for

EXPERIMENT = "05_retrieval_finetuning"
DEFAULT_RECORDS = f"results/{EXPERIMENT}.json"


@dataclass(frozen=True)
class SciFactSplits:
    """Notebook 05's data: training queries, validation queries held out of them, test queries, and
    the documents every query is scored against."""

    train: RetrievalData
    val: RetrievalData
    test: RetrievalData
    doc_ids: list[str]
    documents: list[str]


def scifact_splits(grid: RetrievalGrid, source: DataSource) -> SciFactSplits:
    """The splits and documents notebook 05 builds for ``grid`` (its sizes; the same seeded split)."""
    test = load_scifact("test", source)
    train, val = split_queries(load_scifact("train", source), n_val=grid.n_val)
    doc_ids = sorted(test.corpus)
    if grid.test_queries is not None:  # the first test queries only
        kept = list(test.qrels)[:grid.test_queries]
        test = replace(test, queries={q: test.queries[q] for q in kept}, qrels={q: test.qrels[q] for q in kept})
    if grid.train_queries is not None:
        train = replace(train, qrels=dict(list(train.qrels.items())[:grid.train_queries]))
    if grid.extra_documents is not None:  # the judged documents plus a few others
        judged = {d for split in (test, val) for docs in split.qrels.values() for d in docs}
        doc_ids = sorted(judged | set(doc_ids[:grid.extra_documents]))
    return SciFactSplits(train, val, test, doc_ids, [document_text(test.corpus[d]) for d in doc_ids])


def chosen_recipe(records_path) -> tuple[RetrievalRecipe, dict]:
    """The recipe the validation queries choose in notebook 05's records, and their summary."""
    path = Path(records_path)
    try:
        records = load_records(path)
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read notebook 05's records at {path} ({e}); give --records FILE, or "
                         "execute notebook 05 (`make notebooks`) to write them.") from e
    summary = retrieval_summary(records) if isinstance(records, list) else None
    if summary is None:
        raise InputError(f"{path} holds no fine-tuning records to choose a recipe from; execute notebook 05 "
                         "(`make notebooks`) or give --records FILE.")
    recipe = next((r for r in RETRIEVAL_RECIPES if r.dense == summary["chosen"]), None)
    if recipe is None:
        raise InputError(f"validation chose {summary['chosen']!r} in {path}, a recipe grids.RETRIEVAL_RECIPES "
                         f"does not declare ({[r.dense for r in RETRIEVAL_RECIPES]}); re-execute notebook 05.")
    return recipe, summary


def _step(message: str) -> None:
    print(f"==> [{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _hard_negatives(data: SciFactSplits, model: str) -> tuple[dict[str, str], int]:
    """One BM25 negative per training claim, false negatives filtered by the pretrained ``model`` as
    notebook 05 filters them, encoding only the documents the filter reads (the content-addressed
    cache keeps them for the next run). Returns the negatives and how many documents were encoded."""
    from ..cache import cached_encode
    from ..encoder import SentenceEncoder

    def unit(vectors):
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(min=1e-12)

    encoder = SentenceEncoder.from_pretrained(model, max_seq_length=256)
    train_ids = list(data.train.qrels)
    queries = [data.train.queries[q] for q in train_ids]
    def encode(indices):
        return unit(cached_encode(encoder, [data.documents[j] for j in indices], batch_size=32))

    query_vectors = unit(encoder.encode(queries, batch_size=32))
    return bm25_hard_negatives_encoding_few(bm25_scores(queries, data.documents), query_vectors, encode, train_ids,
                                            data.doc_ids, data.train.qrels)


def store_parts(data: SciFactSplits, model: str) -> dict:
    """What every fine-tuning run of notebook 05 is keyed by besides its pairs and settings: the
    documents, the backbone, the query splits, the fusion weights searched and the BM25 that mines
    negatives and is fused (``retrieval.BM25``)."""
    from .store import backbone_digest, content_digest

    return {"documents": content_digest(data.documents), "backbone": backbone_digest(model),
            "test": sorted(data.test.qrels.items()), "val": sorted(data.val.qrels.items()),
            "fusion_weights": FUSION_WEIGHTS, "bm25": BM25}


def notebook_run(data: SciFactSplits, pairs, config: RetrievalConfig, profile: Profile,
                 source: DataSource) -> str | None:
    """The key of notebook 05's stored run on the same documents, splits, pairs and settings (the
    parts its fine-tuning runs are keyed by), when its run store holds one: this command then
    trains what the study trained."""
    from ..results import Recorder
    from .store import RunStore

    parts = {**store_parts(data, config.model), "pairs": pairs, "config": config}
    recorder = Recorder(EXPERIMENT, profile, {}, is_sample=source.is_sample)
    store = RunStore(mode="reuse")
    return store.key(recorder, parts) if store.holds(recorder, parts) else None


def train_chosen(records_path, profile: Profile, source: DataSource, registry: Path, seed: int = 0) -> dict:
    """Train, score, register and maybe promote the chosen recipe; returns what ``--output`` records."""
    recipe, summary = chosen_recipe(records_path)
    grid = grid_for(RETRIEVAL_GRIDS, profile)
    config = RetrievalConfig(max_seq_length=256, batch_size=grid.batch_size, seed=seed,
                             **dict(recipe.settings))
    _step(f"recipe {recipe.dense} (validation NDCG@10 {summary['recipes'][recipe.dense]['val']:.4f} in "
          f"{records_path}, chosen over {len(summary['recipes'])} recipes), seed {seed}, profile {profile.name}")
    data = scifact_splits(grid, source)
    val_ids, test_ids = list(data.val.qrels), list(data.test.qrels)
    val_queries, test_queries = [data.val.queries[q] for q in val_ids], [data.test.queries[q] for q in test_ids]
    negatives, encoded = None, 0
    if config.hard_negatives:
        _step(f"BM25 hard negatives for {len(data.train.qrels)} training claims over {len(data.documents):,} documents")
        negatives, encoded = _hard_negatives(data, config.model)
        _step(f"negatives chosen; the false-negative filter read {encoded:,} documents' pretrained vectors")
    pairs = training_pairs(data.train, negatives)
    same_run = notebook_run(data, pairs, config, profile, source)
    _step(f"notebook 05's run store holds this run (seed {seed}): {same_run[:12]}" if same_run else
          f"notebook 05's run store holds no run with these pairs and settings (seed {seed})")
    validation = ({q: data.val.queries[q] for q in val_ids}, dict(zip(data.doc_ids, data.documents)),
                  {q: {d for d, rel in data.val.qrels[q].items() if rel > 0} for q in val_ids})
    _step(f"fine-tuning on {len(pairs[0])} pairs ({config.epochs} epoch(s), batch {config.batch_size})")
    epoch_vectors = []  # the documents' vectors at each validation, the kept epoch's among them
    with tempfile.TemporaryDirectory() as scratch, measure() as cost:
        encoder, history = finetune_mnrl(pairs, config, scratch, validation, corpus_vectors=epoch_vectors)
    _step("scoring on the validation and test queries")
    by_epoch = validation_by_epoch(history)
    if by_epoch and len(epoch_vectors) == len(by_epoch):  # the trainer keeps the first best epoch
        vectors = epoch_vectors[int(np.argmax(by_epoch))]
    else:
        vectors = encoder.encode(data.documents, batch_size=32, convert_to_numpy=True, show_progress_bar=True)
    dense_val = dense_scores(encoder, val_queries, data.documents, document_vectors=vectors)
    dense_test = dense_scores(encoder, test_queries, data.documents, document_vectors=vectors)
    weight, _ = choose_fusion_weight(dense_val, bm25_scores(val_queries, data.documents), val_ids, data.doc_ids,
                                     data.val.qrels)
    metrics = {**{f"test_{k}": v for k, v in rank_metrics(dense_test, test_ids, data.doc_ids, data.test.qrels).items()},
               **{f"val_{k}": v for k, v in rank_metrics(dense_val, val_ids, data.doc_ids, data.val.qrels).items()},
               "fusion_dense_weight": weight}  # the service's /similar hybrid reads it
    run_dir = register_run(encoder, metrics, {**config.to_dict(), "recipe": recipe.dense,
                                              "train_seconds": cost.seconds}, registry)
    promoted = promote_if_better(run_dir, registry=registry)
    return {"recipe": recipe.dense, "chosen_on": f"mean validation NDCG@10 over the seeds of {records_path}",
            "seed": seed, "profile": profile.name, "run_id": run_dir.name, "promoted": promoted,
            "best": (registry / "best").resolve().name, "metrics": metrics, "train_seconds": cost.seconds,
            "peak_memory_mb": cost.peak_memory_mb, "val_ndcg10_by_epoch": by_epoch, "training_pairs": len(pairs[0]),
            "n_documents": len(data.documents), "is_sample": source.is_sample, "notebook_run": same_run,
            "documents_encoded_for_negatives": encoded}


def main(argv=None) -> int:
    from ..data import DataError

    start = time.perf_counter()  # the clock of `make retrieval`: data, negatives, training, scoring, saving
    profile = get_profile()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", default=DEFAULT_RECORDS, help="notebook 05's records (the choice of recipe)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=results_dir(profile) / "retrieval_timing.json")
    parser.add_argument("--registry", type=Path, default=None,
                        help="default: models/retrieval (standard profile, what the service loads), "
                             "else runs/<profile>/models/retrieval")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    grid = grid_for(RETRIEVAL_GRIDS, profile)
    registry = args.registry or (REGISTRY if grid.shared_registry else output_root(profile) / "models" / "retrieval")
    try:
        result = train_chosen(args.records, profile, DataSource.resolve(args.data_dir, profile.name), registry,
                              args.seed)
    except (InputError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    import torch

    result |= {"make_retrieval_seconds": time.perf_counter() - start, "cpu_cores": os.cpu_count(),
               "torch_threads": torch.get_num_threads(), "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
    write_json(args.output, result)
    where = "promoted to best" if result["promoted"] else f"not promoted: best stays {result['best']}"
    _step(f"{result['run_id']} ({where}); validation NDCG@10 {result['metrics']['val_ndcg@10']:.4f}, test "
          f"{result['metrics']['test_ndcg@10']:.4f}, hybrid dense weight {result['metrics']['fusion_dense_weight']}; "
          f"{result['make_retrieval_seconds'] / 60:.1f} min -> {args.output}")
    print(json.dumps({k: result[k] for k in ("recipe", "run_id", "promoted", "best")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
