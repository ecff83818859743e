# %% [markdown]
# # 01 · Sentence embeddings
#
# **Questions.** (1) Does our own pooling on top of `all-MiniLM-L6-v2` give exactly the vectors
# `sentence-transformers` gives? (2) Which pooling is best for similarity (STS-B), and how far is
# a trained encoder from a random one or from plain TF-IDF? (3) How much of a classification task
# do the frozen vectors already carry, from 8 examples per class to the whole training set?
# (4) What does the space look like? (5) How fast is it, and what does int8 buy?
#
# Every computation lives in `sentence_mtl`; this notebook calls it, shows the figure and says
# what it means. The run profile (`SENTENCE_MTL_PROFILE`: `smoke` for CI, `standard` for the
# committed results) sizes everything. Records go to `results/01_sentence_embeddings.json`,
# figures to `figures/`.

# %%
import numpy as np
import pandas as pd

from sentence_mtl.reporting import plots
from sentence_mtl.config import DEFAULT_MODEL, figures_dir, get_profile
from sentence_mtl.data import DataSource, load_stsb, load_task, stratified_subset, few_shot_indices
from sentence_mtl.encoder import SentenceEncoder, resolve_model_path
from sentence_mtl.references import value as published
from sentence_mtl.experiments.analysis import mean_std_table
from sentence_mtl.experiments.grids import EMBEDDING_GRIDS, grid_for
from sentence_mtl.experiments.store import RunStore, backbone_digest, content_digest
from sentence_mtl.results import Recorder

profile = get_profile()
source = DataSource.resolve(profile_name=profile.name)
FIGURES = figures_dir(profile)
grid = grid_for(EMBEDDING_GRIDS, profile)
CONFIG = {"model": DEFAULT_MODEL, "encode_batch_size": 64, "probe": "logistic regression, C=1 (scikit-learn default)",
          "probe_C": 1.0, "tfidf_C": 10.0, "profile": profile.to_dict()}
recorder = Recorder("01_sentence_embeddings", profile, CONFIG, is_sample=source.is_sample)
print(f"profile: {profile.name}" + ("   ** hand-written SAMPLE data: numbers below mean nothing **"
                                    if source.is_sample else "   data: real (checksums verified)"))
encoder = SentenceEncoder.from_pretrained(DEFAULT_MODEL)
print(encoder.settings(), "| dim", encoder.dim,
      "| parameters", sum(p.numel() for p in encoder.parameters()))

# %% [markdown]
# ## 1 · Parity with sentence-transformers
#
# `SentenceEncoder` is the Hugging Face backbone plus our pooling (`mean`, masked so padding
# never counts), an optional projection and L2 normalisation. With mean pooling and
# normalisation it should reproduce `SentenceTransformer.encode` on real sentences (STS-B test)
# to float precision. The two batch differently (we sort by token length, they by characters),
# so the last bits can differ; the bar is 1e-5.

# %%
from sentence_transformers import SentenceTransformer

stsb_test = load_stsb("test", source).head(profile.max_test_per_task)
sentences = (stsb_test.sentences1 + stsb_test.sentences2)[:512]
reference = SentenceTransformer(resolve_model_path(DEFAULT_MODEL), device="cpu")
ours = encoder.encode(sentences, batch_size=32)
theirs = reference.encode(sentences, batch_size=32, show_progress_bar=False)
max_diff = float(np.abs(ours - theirs).max())
recorder.add(task="parity", dataset="stsb", strategy="ours_vs_sentence_transformers",
             metric="max_abs_diff", value=max_diff, n_test=len(sentences))
print(f"{len(sentences)} sentences, shape {ours.shape}; max |ours - sentence-transformers| = {max_diff:.2e}")
assert max_diff < 1e-5

# %% [markdown]
# ## 2 · Pooling, and two controls, on STS-B
#
# STS-B's metric: Spearman correlation between the cosine similarity of the two sentences'
# vectors and the human score (0-5), on the official test pairs. Contenders: mean, max and
# CLS pooling over the same trained backbone; a **randomly initialised** encoder of the same
# shape (what the architecture alone gives); **TF-IDF** cosine (what word overlap alone gives);
# and our **int8** mode, two variants (every Linear layer in int8, or all but the feed-forward
# output layers, the default).

# %%
from sentence_mtl.evaluation import sts_spearman, tfidf_sts_spearman

stsb_train = load_stsb("train", source)
contenders = {  # how to build each encoder; built only when the store lacks its score
    "mean_pooling": lambda: encoder,
    "max_pooling": lambda: SentenceEncoder.from_pretrained(DEFAULT_MODEL, pooling="max"),
    "cls_pooling": lambda: SentenceEncoder.from_pretrained(DEFAULT_MODEL, pooling="cls"),
    "random_init_mean": lambda: SentenceEncoder.from_pretrained(DEFAULT_MODEL, random_init=True),
    "int8_mean": lambda: encoder.quantized_int8(),
    "int8_all_linear_mean": lambda: encoder.quantized_int8(keep_ffn_output_fp32=False),
    "tfidf": None,
}
store = RunStore()  # scores already computed on the same pairs with the same backbone are read back
pairs_digest = content_digest(stsb_test.sentences1 + stsb_test.sentences2)


def score_sts(name, build):
    def compute(rec):
        spearman = tfidf_sts_spearman(stsb_test, stsb_train.sentences1 + stsb_train.sentences2) if build is None \
            else sts_spearman(build(), stsb_test)
        rec.add(task="sts", dataset="stsb", strategy=name, metric="spearman_cosine", value=spearman,
                n_test=len(stsb_test))
    parts = {"sts": name, "pairs": pairs_digest, "backbone": backbone_digest(DEFAULT_MODEL),
             "scores": stsb_test.scores, "idf_texts": content_digest(stsb_train.sentences1 + stsb_train.sentences2)}
    return store.run(recorder, parts, compute)[0]["value"]


sts = {name: score_sts(name, build) for name, build in contenders.items()}
pd.Series(sts, name=f"Spearman (n={len(stsb_test)} pairs)").round(4).to_frame()

# %%
plots.bar_chart(list(sts), list(sts.values()), "Spearman × 100 (cosine vs gold)",
                f"STS-B test ({len(stsb_test)} pairs)",
                reference=("published 82.03", published("stsb_minilm_spearman")),
                name="01_stsb_pooling", figures_dir=FIGURES);

# %%
gap = abs(sts["mean_pooling"] - published("stsb_minilm_spearman"))
print(f"mean pooling: {100 * sts['mean_pooling']:.2f}  (published 82.03, gap {100 * gap:.2f} points)")
if grid.check_published_sts:  # the full test set (smoke scores a few pairs)
    assert gap <= 0.0005, "mean pooling must reproduce the published 82.03 within 0.05"

# %% [markdown]
# **What it means.** Mean pooling reproduces the published STS-B score, which confirms the
# parity above end to end. Max and CLS pooling are clearly worse: the model was trained with
# mean pooling, so the [CLS] vector was never asked to summarise the sentence. The random
# encoder shows that the architecture alone carries little; TF-IDF shows how far word overlap
# alone goes. int8 quantisation costs a fraction of a point. Dynamic quantisation picks one
# activation scale per batch tensor, so the loss depends a little on what else is in the batch
# (more outliers in a bigger batch, coarser steps); all encoders here use batch size 32, the
# size the throughput comparison uses. Keeping the feed-forward output layers, which see the
# widest activations, in fp32 is the default int8 mode (section 5 measures the speed).

# %% [markdown]
# ## 3 · Linear probes: what frozen vectors know about topic and sentiment
#
# The encoder stays frozen; a logistic regression is fit on its vectors (`C=1`, scikit-learn's
# default, fixed in advance, not tuned on test). Training sets: 8, 64 and 512 examples per class (the same
# seeded samples for every featuriser, 3 seeds) and the whole training set we have (AG News:
# 22,773 after carving out a validation split; TweetEval: 47,453 reconstructed). Scored on the
# official test sets with the benchmark metrics: accuracy on AG News (7,600), macro-averaged
# recall on TweetEval (12,284). The peer: TF-IDF (uni+bigrams) + logistic regression on the
# same samples. Vectors are cached on disk (`sentence_mtl.cache`), so re-running is cheap.
# On the whole training set the samples cannot vary and the fit is convex, so its 3 seeds agree
# exactly: their spread is 0 by construction, not by luck.

# %%
from sentence_mtl.cache import cached_encode
from sentence_mtl.experiments.probes import embedding_probe, learning_curve, tfidf_probe

splits = {}
for task in ["topic", "sentiment"]:
    train = stratified_subset(load_task(task, "train", source), profile.max_train_per_task)
    test = stratified_subset(load_task(task, "test", source), profile.max_test_per_task)
    splits[task] = (train, test)
    print(f"{task}: train {len(train):,}, test {len(test):,} ({test.dataset} official test)")


def probe_curve(task, featuriser):
    """One learning curve (every size and seed), from the store when it holds it."""
    train, test = splits[task]

    def compute(rec):
        if featuriser == "frozen_minilm_logreg":
            fit = embedding_probe(cached_encode(encoder, train.texts, batch_size=64), train.labels,
                                  cached_encode(encoder, test.texts, batch_size=64), C=CONFIG["probe_C"])
        else:
            fit = tfidf_probe(train.texts, train.labels, test.texts, C=CONFIG["tfidf_C"])
        learning_curve(rec, train, test, fit, featuriser, profile.n_per_class, profile.seeds)
    parts = {"probe": featuriser, "task": task, "C": CONFIG["probe_C" if "minilm" in featuriser else "tfidf_C"],
             "train": content_digest(train.texts, train.labels), "test": content_digest(test.texts, test.labels),
             "sizes": profile.n_per_class, "seeds": profile.seeds, "backbone": backbone_digest(DEFAULT_MODEL)}
    return store.run(recorder, parts, compute)


for task in splits:
    for featuriser in ("frozen_minilm_logreg", "tfidf_logreg"):
        probe_curve(task, featuriser)
probe_records = [r for r in recorder.records if r["strategy"] in ("frozen_minilm_logreg", "tfidf_logreg")]
mean_std_table(probe_records)

# %%
plots.learning_curves(
    probe_records, ["topic", "sentiment"],
    references={"topic": [("SetFit-MiniLM 83.1", 8, published("ag_news_8_setfit_minilm")),
                          ("mpnet+LR 74.3", 8, published("ag_news_8_mpnet_logreg")),
                          ("mpnet+LR 84.4", 64, published("ag_news_64_mpnet_logreg")),
                          ("DistilBERT (120k) 93.4", None, published("ag_news_full_distilbert"))],
                "sentiment": [("SVM 62.9", None, published("tweeteval_svm")),
                              ("RoBERTa-base 71.3", None, published("tweeteval_roberta_base"))]},
    name="01_linear_probe_learning_curves", figures_dir=FIGURES);

# %% [markdown]
# **What it means.** Frozen MiniLM vectors against TF-IDF, each size and task, as a paired
# difference (same seeds, samples and test items) with its 95% interval, rendered from the
# records above:

# %%
from IPython.display import Markdown

from sentence_mtl.experiments.analysis import paired

sizes = sorted({r["n_per_class"] for r in probe_records}, key=lambda k: (k is None, k))
cells = {(t, k): paired(probe_records, "frozen_minilm_logreg", "tfidf_logreg", t, k) for t in splits for k in sizes}
Markdown("| task | " + " | ".join("all" if k is None else f"{k}/class" for k in sizes) + " |\n|---|"
         + "---|" * len(sizes) + "\n" + "\n".join(
             f"| {t} | " + " | ".join(f"{100 * d['mean']:+.1f} [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}] {d['verdict']}"
                                      for d in (cells[t, k] for k in sizes)) + " |" for t in splits))

# %% [markdown]
# With few labels the frozen vectors sort news by topic where TF-IDF has almost no shared
# vocabulary to go on; with the whole training set topic becomes largely a matter of words,
# which a bigram model learns from 22k articles, so read the last column of the topic row for
# whether TF-IDF has caught up. With 8 examples per class the spread over seeds is large: which
# 8 examples you draw matters. The gap to fine-tuned models (the stars on the right) is what
# notebooks 03 and 04 try to close by training the encoder itself. Sentiment is the harder task
# for a frozen encoder: `all-MiniLM-L6-v2` was trained to place sentences by *topic and
# meaning*, and "I love this phone" and "I hate this phone" are close in that space.

# %% [markdown]
# ## 4 · The shape of the space
#
# AG News test vectors (a stratified sample), reduced to 2-D three ways: PCA (linear, keeps
# global distances), t-SNE (keeps neighbourhoods), UMAP (neighbourhoods plus some global
# layout). Then cosine similarities between a few hand-written sentences, and the nearest
# AG News test articles to three queries.

# %%
from sentence_mtl.geometry import cosine_matrix, nearest_neighbours, project_2d

topic_test = splits["topic"][1]
shown = few_shot_indices(topic_test, min(profile.viz_points, len(topic_test)) // 4, seed=0)
topic_test_vectors = cached_encode(encoder, topic_test.texts, batch_size=64)
maps = project_2d(topic_test_vectors[shown], seed=0)
plots.projections(maps, topic_test.labels[shown], topic_test.label_names,
                  f"AG News test, {len(shown)} articles, frozen all-MiniLM-L6-v2",
                  name="01_ag_news_projections", figures_dir=FIGURES);

# %%
examples = [
    "The central bank raised interest rates by half a point.",
    "Interest rates went up after the central bank's decision.",
    "The striker scored twice in the cup final.",
    "Two late goals won the final for the home side.",
    "A new chip doubles battery life in smartphones.",
    "I absolutely love this new phone!",
    "I really hate this new phone.",
    "Peace talks resumed between the two governments.",
]
plots.similarity_heatmap(cosine_matrix(encoder.encode(examples)), examples,
                         "Cosine similarity, all-MiniLM-L6-v2", name="01_similarity_heatmap",
                         figures_dir=FIGURES);

# %% [markdown]
# Paraphrases score high although they share few words (rows 1-2, 3-4). Rows 6 and 7 have
# opposite sentiment yet are more similar to each other than to anything else: the embedding
# encodes *what a sentence is about* more than *how the writer feels*, which is what the probe
# results in section 3 showed for TweetEval.

# %%
queries = ["oil prices and the stock market", "a new vaccine trial", "the world cup qualifiers"]
top, scores = nearest_neighbours(encoder.encode(queries), topic_test_vectors, k=3)
pd.DataFrame([{"query": q, "rank": r + 1, "cosine": round(float(scores[i, r]), 3),
               "label": topic_test.label_names[topic_test.labels[top[i, r]]],
               "article": topic_test.texts[top[i, r]][:110]}
              for i, q in enumerate(queries) for r in range(top.shape[1])])

# %% [markdown]
# ## 5 · Throughput: ours against sentence-transformers, fp32 and int8
#
# Same sentences (STS-B test), same batch size (32), one process, runs alternated and the
# median of 5 taken (`sentence_mtl.throughput`). Ratios are against sentence-transformers.
# `benchmarks/encode_throughput.py` runs the same comparison from the command line.

# %%
from sentence_mtl.throughput import compare_throughput, sentence_transformers_peer

pool = load_stsb("test", source)
bench_texts = (pool.sentences1 + pool.sentences2)[: profile.throughput_sentences]


def measure_throughput(rec):
    """A measurement, stored like a run (never spot-checked: timings do not repeat exactly)."""
    int8 = encoder.quantized_int8()
    speed = compare_throughput({
        "sentence_transformers": sentence_transformers_peer(resolve_model_path(DEFAULT_MODEL), 32),
        "ours_fp32": lambda t: encoder.encode(t, batch_size=32),
        "ours_int8": lambda t: int8.encode(t, batch_size=32),
    }, bench_texts, repeats=5)
    for name, r in speed.items():
        rec.add(task="throughput", dataset="stsb", strategy=name, metric="sentences_per_second",
                value=r["sentences_per_second"], n_test=len(bench_texts),
                ratio_vs_sentence_transformers=r["ratio_vs_sentence_transformers"])


parts = {"throughput": "batch 32, 5 repeats", "texts": content_digest(bench_texts), "backbone": backbone_digest(DEFAULT_MODEL)}
speed = {r["strategy"]: {"sentences_per_second": r["value"],
                         "ratio_vs_sentence_transformers": r["ratio_vs_sentence_transformers"]}
         for r in store.run(recorder, parts, measure_throughput, check=False)}
pd.DataFrame(speed).T[["sentences_per_second", "ratio_vs_sentence_transformers"]].astype(float).round(2)

plots.bar_chart(list(speed), [r["sentences_per_second"] for r in speed.values()], "sentences / s",
                f"Encoding throughput, {len(bench_texts)} STS-B sentences, batch 32, CPU", scale=1, fmt="%.0f",
                name="01_throughput", figures_dir=FIGURES);
int8_speedup = speed["ours_int8"]["sentences_per_second"] / speed["ours_fp32"]["sentences_per_second"]
int8_loss = 100 * (sts["mean_pooling"] - sts["int8_mean"])
print(f"ours vs sentence-transformers: {speed['ours_fp32']['ratio_vs_sentence_transformers']:.2f}x")
print(f"int8 vs fp32: {int8_speedup:.2f}x faster (our own target >= 1.5x); "
      f"STS-B Spearman {sts['int8_mean'] * 100:.2f} vs {sts['mean_pooling'] * 100:.2f}, "
      f"{int8_loss:.2f} points lower (target <= 0.5)")

# %% [markdown]
# **What it means.** Our encoder is at least as fast as sentence-transformers on the same texts
# and batch size: it tokenises the whole input once and batches by *token* length, so each
# batch pads only to its own longest sentence. Dynamic int8 quantisation (weights per channel,
# activations quantised on the fly) speeds CPU inference up substantially for a small STS-B
# cost; it is an inference-only mode (no training through it).

# %%
path = recorder.save()
print(f"{len(recorder.records)} records -> {path.relative_to(path.parents[1])}; {store.summary()}")
