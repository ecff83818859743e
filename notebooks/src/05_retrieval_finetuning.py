# %% [markdown]
# # 05 · Fine-tuning the encoder for retrieval
#
# **Question.** Can a few hundred (claim, abstract) pairs teach `all-MiniLM-L6-v2` to find the
# scientific abstracts that support or refute a claim better than it does out of the box, and
# better than BM25? Data: SciFact in BEIR format, 5,183 abstracts; the 300 test queries are the
# BEIR test set; the 809 training queries are split into training pairs and a fixed validation
# set of queries that picks which run gets promoted. Metric: NDCG@10 (BEIR's), with MRR@10 and
# Recall@100 beside it.
#
# Fine-tuning uses sentence-transformers' trainer with `MultipleNegativesRankingLoss`: each
# claim must rank its own abstract above every other abstract in the batch; the
# `NO_DUPLICATES` batch sampler keeps a text from appearing twice in a batch (a duplicate would
# be a false negative). Every run is versioned under `models/retrieval/<run-id>/`, and
# `models/retrieval/best` moves to it only if its validation NDCG@10 beats the current best's:
# the fine-tune -> version -> evaluate -> promote -> serve flow of the HTTP service.

# %%
import json
import tempfile
from dataclasses import replace

import numpy as np
import pandas as pd
from IPython.display import display

from sentence_mtl.cache import cached_encode
from sentence_mtl.config import DEFAULT_MODEL, figures_dir, get_profile
from sentence_mtl.data import DataSource
from sentence_mtl.encoder import SentenceEncoder
from sentence_mtl.references import value as published
from sentence_mtl.experiments.grids import RETRIEVAL_GRIDS, RETRIEVAL_RECIPES, grid_for
from sentence_mtl.experiments.retrieval_training import scifact_splits, store_parts
from sentence_mtl.experiments.store import RunStore
from sentence_mtl.reporting import figures, plots
from sentence_mtl.results import Recorder, measure
from sentence_mtl.retrieval import (REGISTRY, RetrievalConfig, bm25_hard_negatives, bm25_scores,
                                    choose_fusion_weight, current_best, dense_scores,
                                    finetune_mnrl, fuse_scores, promote_if_better, rank_metrics,
                                    reciprocal_rank_fusion, register_run, training_pairs,
                                    validation_by_epoch)

profile = get_profile()
source = DataSource.resolve(profile_name=profile.name)
FIGURES = figures_dir(profile)
grid = grid_for(RETRIEVAL_GRIDS, profile)
registry = REGISTRY if grid.shared_registry else FIGURES.parent / "models" / "retrieval"
splits = scifact_splits(grid, source)  # the seeded query split and documents `make retrieval` trains on too
train, val, test, doc_ids, documents = splits.train, splits.val, splits.test, splits.doc_ids, splits.documents
recorder = Recorder("05_retrieval_finetuning", profile, {"profile": profile.to_dict(), "n_documents": len(documents)},
                    is_sample=source.is_sample)
print(f"profile: {profile.name}; {len(documents):,} documents, {len(train.qrels)} training queries, "
      f"{len(val.qrels)} validation queries, {len(test.qrels)} test queries")

# %% [markdown]
# ## Choosing `max_seq_length` from the data
#
# Claims are short; abstracts are long. Tokens beyond `max_seq_length` are cut off, and cost
# grows faster than linearly with length. MiniLM was trained with 256-token inputs (its
# position embeddings go to 512), so the question is how much of each abstract 128 or 256
# tokens keep.

# %%
encoder = SentenceEncoder.from_pretrained(DEFAULT_MODEL, max_seq_length=256)
tokenizer = encoder.tokenizer
doc_lengths = np.array([len(ids) for ids in tokenizer(documents, truncation=False, verbose=False)["input_ids"]])
query_lengths = np.array([len(ids) for ids in tokenizer(list(test.queries.values()), truncation=False, verbose=False)["input_ids"]])
coverage = {n: float(np.mean(doc_lengths <= n)) for n in (64, 128, 256, 512)}
kept = {n: float(np.minimum(doc_lengths, n).sum() / doc_lengths.sum()) for n in (64, 128, 256, 512)}
print("document tokens: median %d, p90 %d, max %d; claims: median %d, max %d" % (
    np.median(doc_lengths), np.percentile(doc_lengths, 90), doc_lengths.max(), np.median(query_lengths), query_lengths.max()))
pd.DataFrame({"documents entirely inside": coverage, "share of all document tokens kept": kept}).T.round(3)

# %%
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(7, 3.4))
ax.hist(doc_lengths, bins=60, color=plots.PALETTE[0], alpha=0.8, label="abstracts (title + text)")
ax.hist(query_lengths, bins=20, color=plots.PALETTE[1], alpha=0.8, label="claims")
for n, style in ((128, ":"), (256, "--")):  # in the legend: side by side, the two notes collide
    ax.axvline(n, ls=style, color="k", lw=1, label=f"{n} tokens: {coverage[n]:.0%} of abstracts whole")
ax.set(xlabel="tokens", ylabel="count", title="SciFact lengths (MiniLM tokenizer)")
ax.legend()
plots.save(fig, "05_length_distribution", FIGURES);

# %% [markdown]
# **Choice: 256.** It is what the model was trained with, keeps the whole abstract for a
# sizeable share of documents and most of the tokens overall; 512 would cost about four
# times the attention compute for the tail, and the opening of an abstract (title, aim,
# main finding) carries most of what a claim matches.

# %% [markdown]
# ## Baselines: BM25, the pretrained encoder, and the two together
#
# BM25 matches rare terms exactly; a dense encoder matches meaning. A **hybrid** adds their
# per-query scores, each first mapped onto [0, 1], with the dense share chosen on the
# validation queries (score fusion); **reciprocal-rank fusion** adds 1/(60 + rank) from each
# ranking and has nothing to choose.
#
# One BM25 throughout (the baseline, the hard negatives, every fusion and the service): BM25S,
# the `bm25s` library's Lucene variant with English stop words removed and words stemmed, which is
# how MTEB runs BM25 (Lù 2024). Stemming lets "mutations" in a claim match "mutation" in an
# abstract.

# %%
query_ids, val_ids = list(test.qrels), list(val.qrels)
queries, val_queries = [test.queries[q] for q in query_ids], [val.queries[q] for q in val_ids]
with measure() as cost:
    bm25_test = bm25_scores(queries, documents)
bm25 = rank_metrics(bm25_test, query_ids, doc_ids, test.qrels)
bm25_val = bm25_scores(val_queries, documents)
for metric, value in bm25.items():
    recorder.add(task="retrieval", dataset="scifact", strategy="bm25", metric=metric, value=value,
                 n_test=len(query_ids), train_seconds=cost.seconds)

pretrained_docs = cached_encode(encoder, documents, batch_size=32)
pretrained_test = dense_scores(encoder, queries, documents, document_vectors=pretrained_docs)
pretrained = rank_metrics(pretrained_test, query_ids, doc_ids, test.qrels)
pretrained_val_scores = dense_scores(encoder, val_queries, documents, document_vectors=pretrained_docs)
pretrained_val = rank_metrics(pretrained_val_scores, val_ids, doc_ids, val.qrels)
weight, _ = choose_fusion_weight(pretrained_val_scores, bm25_val, val_ids, doc_ids, val.qrels)
hybrid_pretrained = rank_metrics(fuse_scores(pretrained_test, bm25_test, weight), query_ids, doc_ids, test.qrels)
for strategy, metrics, extra in (("pretrained", pretrained, {}),
                                 ("hybrid_bm25_pretrained", hybrid_pretrained, {"fusion_dense_weight": weight})):
    for metric, value in metrics.items():
        recorder.add(task="retrieval", dataset="scifact", strategy=strategy, metric=metric, value=value,
                     n_test=len(query_ids), **extra)
pd.DataFrame({"BM25S (here)": bm25, "pretrained MiniLM": pretrained,
              f"hybrid, dense weight {weight} (validation)": hybrid_pretrained}).T.round(4)

# %% [markdown]
# ## Fine-tuning: two recipes, 3 seeds each
#
# Both use MultipleNegativesRankingLoss with batch 32 (31 in-batch negatives per claim) and
# learning rate 2e-5 with warm-up; the recipes are declared in `grids.RETRIEVAL_RECIPES`.
#
# - **`finetuned_mnrl`**: one epoch over the (claim, abstract) pairs.
# - **`finetuned_bm25_negatives`**: each pair also carries one *hard negative*, the abstract BM25
#   ranks highest for the claim among those not judged relevant. In-batch negatives are random
#   abstracts, mostly easy; a BM25 negative shares the claim's words but not its finding, which
#   is what the encoder must learn to tell apart (one BM25 negative per question was DPR's best
#   addition to in-batch negatives, Karpukhin et al. 2020). A candidate that the pretrained
#   encoder scores at 95% or more of the claim's relevant abstract is skipped: it is more likely
#   an unjudged positive than a negative (false-negative filtering, Moreira et al. 2024).
#   Two epochs; the validation queries pick which epoch's weights are kept.
#
# Each run is scored on the validation queries (for promotion) and the test queries (for
# this table), registered, and promoted if it beats the best so far on validation.
#
# Not tried: a larger effective batch (more in-batch negatives, e.g. sentence-transformers'
# `CachedMultipleNegativesRankingLoss`). With a few hundred training pairs, a batch four times
# larger leaves a handful of optimiser steps per epoch, and the hard-negative recipe is already
# the costliest run of this notebook (its seconds are in the table).

# %%
config = RetrievalConfig(max_seq_length=256, batch_size=grid.batch_size)
train_ids = list(train.qrels)
train_queries = [train.queries[q] for q in train_ids]
train_sparse = bm25_scores(train_queries, documents)
negatives = bm25_hard_negatives(train_sparse, dense_scores(encoder, train_queries, documents,
                                                           document_vectors=pretrained_docs),
                                train_ids, doc_ids, train.qrels)
pairs = {False: training_pairs(train), True: training_pairs(train, negatives)}
validation = ({q: val.queries[q] for q in val_ids}, dict(zip(doc_ids, documents)),
              {q: {d for d, rel in val.qrels[q].items() if rel > 0} for q in val_ids})
top_unjudged = [next(doc_ids[j] for j in np.argsort(-train_sparse[i], kind="stable") if doc_ids[j] not in train.qrels[q])
                for i, q in enumerate(train_ids)]
skipped = sum(negatives[q] != d for q, d in zip(train_ids, top_unjudged))
print(f"{len(pairs[False][0])} training pairs; one hard negative for each of {len(negatives)} claims; the "
      f"false-negative filter passed over BM25's top unjudged abstract for {skipped} of them")
store = RunStore()  # a seed already fine-tuned on the same pairs and settings is read back, not retrained
parts = store_parts(splits, DEFAULT_MODEL)  # documents, backbone, query splits, fusion weights, the BM25


def finetune(recipe, run_config):
    """Fine-tune one seed, score it, register it (and promote it when its validation NDCG@10 is the best)."""
    run_pairs = pairs[run_config.hard_negatives]

    def compute(rec):
        with tempfile.TemporaryDirectory() as scratch, measure() as cost:
            model, history = finetune_mnrl(run_pairs, run_config, scratch, validation)
        doc_vectors = model.encode(documents, batch_size=32, convert_to_numpy=True)
        dense_test = dense_scores(model, queries, documents, document_vectors=doc_vectors)
        dense_val = dense_scores(model, val_queries, documents, document_vectors=doc_vectors)
        test_metrics = rank_metrics(dense_test, query_ids, doc_ids, test.qrels)
        val_metrics = rank_metrics(dense_val, val_ids, doc_ids, val.qrels)
        weight, curve = choose_fusion_weight(dense_val, bm25_val, val_ids, doc_ids, val.qrels)
        metrics = {**{f"test_{k}": v for k, v in test_metrics.items()}, **{f"val_{k}": v for k, v in val_metrics.items()},
                   "fusion_dense_weight": weight}  # the service's /similar hybrid reads it
        run_dir = register_run(model, metrics, {**run_config.to_dict(), "train_seconds": cost.seconds}, registry)
        promoted = promote_if_better(run_dir, registry=registry)
        n_params = sum(p.numel() for p in model.parameters())
        by_epoch = validation_by_epoch(history)
        selection = {"val_ndcg10_by_epoch": by_epoch, "best_epoch": int(np.argmax(by_epoch)) + 1} if by_epoch else {}
        for metric, value in test_metrics.items():
            rec.add(task="retrieval", dataset="scifact", strategy=recipe.dense, seed=run_config.seed, metric=metric,
                    value=value, n_test=len(query_ids), train_seconds=cost.seconds, trainable_params=n_params,
                    peak_memory_mb=cost.peak_memory_mb, run_id=run_dir.name, promoted=promoted,
                    val_ndcg10=val_metrics["ndcg@10"], retrieval_config=run_config.to_dict(), **selection)
        fused = {recipe.hybrid: (fuse_scores(dense_test, bm25_test, weight), {"fusion_dense_weight": weight,
                                 "fusion_val_ndcg10": {str(w): v for w, v in curve.items()}}),
                 recipe.rrf: (reciprocal_rank_fusion(dense_test, bm25_test), {})}
        for strategy, (scores, extra) in fused.items():
            for metric, value in rank_metrics(scores, query_ids, doc_ids, test.qrels).items():
                rec.add(task="retrieval", dataset="scifact", strategy=strategy, seed=run_config.seed, metric=metric,
                        value=value, n_test=len(query_ids), run_id=run_dir.name, **extra)
    return store.run(recorder, {**parts, "pairs": run_pairs, "config": run_config}, compute)


runs = []
for recipe in RETRIEVAL_RECIPES:
    for seed in profile.seeds:
        seed_records = finetune(recipe, replace(config, seed=seed, **dict(recipe.settings)))
        records = {r["metric"]: r for r in seed_records if r["strategy"] == recipe.dense}
        hybrid = next(r for r in seed_records if r["strategy"] == recipe.hybrid and r["metric"] == "ndcg@10")
        first = next(iter(records.values()))
        runs.append({"recipe": recipe.dense, "run": first["run_id"], "seed": seed,
                     "val NDCG@10 by epoch": ", ".join(f"{v:.3f}" for v in first.get("val_ndcg10_by_epoch", [])),
                     "val NDCG@10": first["val_ndcg10"], **{f"test {m}": r["value"] for m, r in records.items()},
                     "promoted": first["promoted"], "train s": round(first["train_seconds"]),
                     "hybrid dense weight": hybrid["fusion_dense_weight"], "hybrid test NDCG@10": hybrid["value"]})
pd.DataFrame(runs).round(4)

# %%
records = pd.DataFrame(recorder.records)
ndcg = records[records.metric == "ndcg@10"]
order = ["bm25", "pretrained", "hybrid_bm25_pretrained",
         *(name for r in RETRIEVAL_RECIPES for name in (r.dense, r.hybrid, r.rrf))]
stats = ndcg.groupby("strategy").value.agg(["mean", "std"]).reindex(order)
figures.scifact_ndcg(recorder.records, FIGURES);
for recipe in RETRIEVAL_RECIPES:
    print(f"{recipe.dense}: {100 * stats.loc[recipe.dense, 'mean']:.2f} NDCG@10, "
          f"{100 * (stats.loc[recipe.dense, 'mean'] - stats.loc['pretrained', 'mean']):+.2f} points over the pretrained "
          f"encoder; its hybrid {100 * stats.loc[recipe.hybrid, 'mean']:.2f} (BM25 here {100 * bm25['ndcg@10']:.2f})")

# %% [markdown]
# ## The registry
#
# What the service will load: `best` points at the run with the highest validation NDCG@10.
# The table lists the runs this execution trained and registered, each once; runs read from the
# run store were registered where they were trained.

# %%
best = current_best(registry)
best_name = (registry / "best").resolve().name if (registry / "best").exists() else None
print(f"models/retrieval/best -> {best_name or 'none on this machine (`make retrieval` trains and promotes one)'}")
rows = []
this_run = {r["run_id"] for r in recorder.records if r.get("run_id")}  # each of this notebook's runs, once
registered = registry.iterdir() if registry.is_dir() else ()  # a fresh clone has trained no model
for run in sorted(p for p in registered if p.is_dir() and not p.is_symlink() and p.name in this_run
                  and (p / "metrics.json").is_file()):
    metrics = json.loads((run / "metrics.json").read_text())
    rows.append({"run": run.name, "val NDCG@10": metrics["val_ndcg@10"], "test NDCG@10": metrics["test_ndcg@10"],
                 "is best": (registry / "best").resolve() == run.resolve()})
if rows:
    display(pd.DataFrame(rows).round(4))
else:
    print("No run of this execution was trained here (each was read from the run store): none is registered.")

# %% [markdown]
# <!-- conclusion:start -->
# **What it means** *(rendered from `results/claims.json` by `make docs`; the intervals cover the
# seeds, the queries being fixed).* Validation queries choose two epochs with one BM25 hard negative per claim among
# 2 recipes. Alone, the fine-tuned encoder reaches an NDCG@10 of 67.6
# (95% CI 67.1–68.1) on the 300 test queries, up from 64.5 for the
# pretrained encoder and behind BM25 measured here
# (68.6; BM25S's published 68.7), which the encoder alone
# falls short of. The chosen recipe gains
# +1.4 points over the other (95% CI +1.1 to +1.7) for 3.92x the
# training time. Fused with BM25's scores it reaches 74.9 (95% CI 74.7–75.1),
# +6.3 points over BM25, above bge-small-en-v1.5's published
# 71.3 and above the
# 74.4 published for BM25 fused with bge-base-en-v1.5 (QuackIR), an encoder five
# times the size; the same fusion with the pretrained encoder gives
# 73.2. BM25 is likely strong on SciFact because claims and abstracts share
# rare technical terms, which a dense encoder blurs; the fusion keeps both signals.
# <!-- conclusion:end -->

# %%
path = recorder.save()
print(f"{len(recorder.records)} records -> {path.relative_to(path.parents[1])}; {store.summary()}")
