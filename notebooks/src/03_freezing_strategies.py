# %% [markdown]
# # 03 · What to freeze, and when: the freezing and transfer-learning study
#
# **Questions.** The take-home asks what it implies to freeze (a) the whole network, (b) only
# the backbone, (c) one task head, and how to do transfer learning. We answer with
# measurements on the two tasks of the multi-task model (AG News topic, TweetEval sentiment),
# in the low-data regime where the choice matters most: for each strategy, how good is it
# (official metric), what does it cost (training seconds on 2 CPU cores, trainable parameters,
# peak memory), and how does that change with the number of labelled examples?
#
# | # | strategy | what trains | what it costs |
# |---|---|---|---|
# | 1 | `zero_shot`, `nearest_centroid`, `label_prior` | nothing: the whole network is frozen | one encoding pass |
# | 2 | `frozen_backbone` | the heads, on cached sentence embeddings | the encoding pass; training is milliseconds |
# | 2b | `self_training` | a logistic-regression head on cached embeddings, from the labelled examples plus pseudo-labelled *unlabeled* training texts | encoding the unlabeled pool once; seconds |
# | 3 | `top1_unfrozen`, `top2_unfrozen` | top 1 or 2 blocks + heads, on cached outputs of the frozen blocks below | one pass through the lower blocks, then 1-2 blocks per step |
# | 4 | `full_finetune` | every weight | a full forward and backward per step |
# | 5 | `gradual_unfreezing` | heads, then + top block, then one more block per phase (ULMFiT) | less than full: the early phases stop the backward pass high up |
# | 6 | `llrd_0.95`, `llrd_2.6` | every weight, learning rate decayed by 0.95 (or /2.6, ULMFiT) per block going down | as full |
# | 7 | `lora` | rank-8 adapters on every linear layer + heads (peft) | as full per step, 1.5% of the parameters |
# | 7b | `lp_ft` | the heads alone on cached embeddings of the frozen encoder (a linear probe), then every weight (LP-FT) | as full, plus seconds for the probe |
# | 8 | `sequential_*` | topic first; then sentiment with the topic head frozen and the backbone frozen / trainable / LoRA | two runs |
# | peer | `setfit` | the SetFit library: contrastive pairs, then logistic regression, same backbone and samples | pairs: two passes per example |
#
# **Protocol.** Every strategy sees the same few-shot samples (`data.few_shot_indices`: k per
# class, fixed by the seed; the 8-shot sample is inside the 32-shot one). Both heads share one
# encoder and train together in alternating batches, with the same step budget per data size
# for every encoder-changing strategy. Frozen strategies score the full official test sets
# from cached embeddings; strategies that change the encoder score a fixed stratified subset
# of each test set (size printed below, the same for every strategy and seed). Metrics: AG
# News accuracy, TweetEval macro recall (each benchmark's own). Model selection uses no test
# data: every hyper-parameter is fixed in `strategies.py` before the runs.

# %%
from dataclasses import asdict

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from sentence_mtl import plots, strategies
from sentence_mtl import freezing_study as study
from sentence_mtl.cache import cached_encode
from sentence_mtl.config import figures_dir, get_profile
from sentence_mtl.data import TASKS, DataSource, load_task, stratified_subset
from sentence_mtl.encoder import SentenceEncoder
from sentence_mtl.references import value as published
from sentence_mtl.results import Recorder, summarize

profile = get_profile()
grid = study.GRIDS[profile.name]
source = DataSource.resolve(profile_name=profile.name)
FIGURES = figures_dir(profile)
TASK_NAMES = list(study.TASK_NAMES)
# the profile caps the pools (smoke: a few dozen items); standard uses whole sets
train = {t: stratified_subset(load_task(t, "train", source), profile.max_train_per_task) for t in TASK_NAMES}
test = {t: stratified_subset(load_task(t, "test", source), profile.max_test_per_task) for t in TASK_NAMES}
test_subsets = {t: stratified_subset(test[t], grid.test_subset) for t in TASK_NAMES}
recorder = Recorder("03_freezing_strategies", profile,
                    {"grid": asdict(grid), "strategies": {n: asdict(s) for n, s in strategies.STRATEGIES.items()},
                     "profile": profile.to_dict()}, is_sample=source.is_sample)
print(f"profile: {profile.name}" + ("   ** hand-written SAMPLE data **" if source.is_sample else ""))
pd.DataFrame({t: {"train pool": len(train[t]), "test (frozen strategies)": len(test[t]),
                  "test subset (encoder-changing)": len(test_subsets[t]), "metric": TASKS[t].metric}
              for t in TASK_NAMES}).T

# %% [markdown]
# ## 1 · The whole network frozen
#
# *What it means:* nothing is trained; the pretrained encoder's geometry must already separate
# the classes. **Zero-shot** compares each text with a short description of each label
# (`data.TASKS[...].description`); **nearest centroid** compares it with the mean embedding of
# each class's k labelled examples; the **label prior** adds the two, so each class's prototype
# is the mean direction of its examples plus the direction of its description
# (`semi_supervised.label_prior_prototypes`): eight examples are then not all that a class
# knows. *Cost:* one encoding pass, cached on disk
# (`cache.cached_encode`, content-addressed: notebook 01 already encoded these exact texts with
# this exact model, so after it this cell reads vectors from disk). *When:* no labels at all,
# or a baseline that any training must beat.

# %%
encoder = SentenceEncoder.from_pretrained(study.DEFAULT_MODEL)  # sentence-transformers' settings
train_embeddings = {t: cached_encode(encoder, train[t].texts, batch_size=64) for t in TASK_NAMES}
test_embeddings = {t: cached_encode(encoder, test[t].texts, batch_size=64) for t in TASK_NAMES}
for t in TASK_NAMES:
    study.run_zero_shot(recorder, encoder, test[t], test_embeddings[t])
    for k in grid.sizes:
        for seed in grid.seeds_for(k):
            study.run_nearest_centroid(recorder, train[t], train_embeddings[t], test[t], test_embeddings[t], k, seed)
            if k is not None:
                study.run_label_prior(recorder, encoder, train[t], train_embeddings[t], test[t], test_embeddings[t],
                                      k, seed)

def table(names, records=None):
    """Mean ± std over seeds (percent), one row per (task, strategy), one column per size."""
    rows = [r for r in (records or recorder.records) if r["strategy"] in names and not r.get("stage")]
    summary = summarize(rows)
    summary["cell"] = [f"{100 * m:.1f} ± {100 * s:.1f}" if n > 1 else f"{100 * m:.1f}"
                       for m, s, n in zip(summary["mean"], summary["std"], summary["seeds"])]
    return summary.pivot(index=["task", "strategy"], columns="n_per_class", values="cell").fillna("")

table(["zero_shot", "nearest_centroid", "label_prior"])

# %% [markdown]
# ## 2 · The backbone frozen, the heads trained
#
# *What it means:* the encoder is a fixed feature extractor; only the two heads (a linear layer
# each, 2,695 parameters) learn. Because the encoder never changes, its output for a text is a
# constant: we encode once and train on the cached vectors. *Cost:* the one encoding pass, then
# milliseconds. *When:* little data, little compute, or many tasks sharing one encoder that must
# not drift (every head stays compatible with every other).
#
# The cache is what makes this cheap. The benchmark below (also `benchmarks/cache_speedup.py`)
# times, on the same texts and the same loop body, a heads-only epoch on cached embeddings
# against the same epoch re-encoding the texts first, and a training step of the top two blocks
# on cached outputs of the frozen lower blocks against a full forward/backward with those
# blocks frozen.

# %%
frozen = strategies.get("frozen_backbone")
grid_frozen = [(k, seed) for k in grid.sizes for seed in grid.seeds_for(k)]
for k, seed in tqdm(grid_frozen, desc="frozen_backbone"):
    study.run_frozen_backbone(recorder, frozen, train, train_embeddings, test, test_embeddings, k, seed, grid)

bench_texts = stratified_subset(train["topic"], 512 if profile.name != "smoke" else 32)
speed = study.cache_speedups(bench_texts.texts, bench_texts.labels, steps=10 if profile.name != "smoke" else 3)
for key, target in (("heads_epoch_ratio", 100), ("top2_step_ratio", 2)):
    recorder.add(task="cache_benchmark", dataset="ag_news", split="train", strategy=key, metric="speedup",
                 value=speed[key], target=target, **{k: v for k, v in speed.items() if not k.endswith("ratio")})
print(f"heads-only epoch: cached {speed['heads_epoch_cached_s'] * 1000:.0f} ms vs re-encoding "
      f"{speed['heads_epoch_reencode_s']:.2f} s -> {speed['heads_epoch_ratio']:.0f}x (target >= 100x)")
print(f"top-2 step: cached {speed['top2_step_cached_s'] * 1000:.0f} ms vs full forward "
      f"{speed['top2_step_full_forward_s'] * 1000:.0f} ms -> {speed['top2_step_ratio']:.1f}x (target >= 2x)")
print(f"  the lower blocks' forward alone: {speed['top2_lower_forward_s'] * 1000:.0f} ms of the full step, so no "
      f"cache of them can give more than {speed['top2_step_ratio_bound']:.2f}x here")
table(["nearest_centroid", "frozen_backbone"])

# %% [markdown]
# ## 2b · The backbone frozen, and the unlabeled texts used: self-training
#
# *What it means:* labels are scarce, in-domain texts are not. The training sets hold tens of
# thousands of texts whose labels we can hide; self-training (`semi_supervised.self_train`)
# lets the label prior above label all of them, keeps the 2,048 most confident per class (by
# the margin between the top two classes, balanced across classes, never a labelled example),
# fits a logistic regression on the labelled examples (weight 3) plus those pseudo-labels, and
# repeats once with the regression as the labeller. The encoder stays frozen, so the whole
# pool is the cached embeddings of section 1. *Cost:* seconds. *When:* plenty of unlabeled
# in-domain text and a pretrained geometry that already follows the labels; it amplifies what
# the prior gets right, and what it gets wrong. It is the only strategy here that reads
# unlabeled texts, so it is marked as such wherever it is compared. The pseudo-labels'
# accuracy against the hidden gold labels is printed as a diagnostic; the method never sees it.

# %%
self_training = strategies.get("self_training")
subset_embeddings = {t: cached_encode(encoder, test_subsets[t].texts, batch_size=64) for t in TASK_NAMES}
self_grid = [(t, k, seed) for t in TASK_NAMES for k in grid.sizes if k is not None for seed in grid.seeds_for(k)]
for t, k, seed in tqdm(self_grid, desc="self_training"):
    study.run_self_training(recorder, self_training, encoder, train[t], train_embeddings[t], test[t],
                            test_embeddings[t], k, seed, subset=(test_subsets[t], subset_embeddings[t]))
pseudo = pd.DataFrame([r for r in recorder.records if r["strategy"] == "self_training"])
print("pseudo-label accuracy against the hidden labels (%):")
print((100 * pseudo.pivot_table(index="task", columns="n_per_class", values="pseudo_label_accuracy")).round(1).to_string())
table(["label_prior", "frozen_backbone", "self_training"])

# %% [markdown]
# ## 3 · Unfreezing the top of the encoder, on cached lower-block outputs
#
# *What it means:* the lower blocks stay as pretrained (general syntax and lexical features);
# the top one or two blocks, the most task-specific, adapt. Their input, the output of the
# frozen block below, is computed once per text and cached (`cache.cached_layer_states`), so a
# training step runs only the top blocks. (The lower blocks run in inference mode for the
# cache, i.e. without dropout: a small, deliberate difference from freezing them in a full
# forward pass.) *Cost:* one pass through the lower blocks, then 1/6 or 2/6 of the network per
# step. *When:* a few hundred examples or more, where the heads alone underfit.

# %%
cached_grid = [(name, k, seed) for name in ("top1_unfrozen", "top2_unfrozen")
               for k in grid.sizes if k is not None for seed in grid.seeds_for(k)]
for name, k, seed in tqdm(cached_grid, desc="top-k on cached lower blocks"):
    study.run_encoder_strategy(recorder, strategies.get(name), train, test_subsets, k, seed, grid)
table(["top1_unfrozen", "top2_unfrozen"])

# %% [markdown]
# ## 4 · Changing the whole encoder: full fine-tuning, gradual unfreezing, layer-wise decay, LoRA, LP-FT
#
# *Full fine-tuning* trains all 22.7M weights: the most capacity, the most cost, and with few
# examples the most risk of overwriting what pretraining learned. *Gradual unfreezing*
# (ULMFiT) trains the randomly initialised heads first, so their large early gradients do not
# reach the pretrained blocks, then unfreezes one block per phase from the top. *Layer-wise
# learning-rate decay* keeps all blocks trainable but moves the lower ones less (x0.95 per
# block, or ULMFiT's /2.6). *LoRA* freezes every pretrained weight and learns a rank-8 update
# beside each linear layer: 1.5% of the parameters, the same forward/backward cost, and a base
# model that stays shared. *LP-FT* (Kumar et al. 2022) first fits the heads alone on cached
# embeddings of the frozen encoder, as `frozen_backbone` does, then trains every weight from
# there: the fine-tuning starts with heads that already point the right way, so the first
# gradients that reach the encoder are not the noise of random heads (gradual unfreezing
# attacks the same problem by spending part of the step budget on the heads). All use the
# same steps per data size (5 seeds at 32 per class and fewer, 3 above); full fine-tuning and
# LP-FT also run at 64 per class for the published comparison (as the top-k strategies do).

# %%
encoder_strategies = ["full_finetune", "gradual_unfreezing", "llrd_0.95", "llrd_2.6", "lora", "lp_ft"]
finetune_grid = [(name, k, seed) for k in grid.finetune_sizes for name in encoder_strategies
                 for seed in grid.seeds_for(k)]
finetune_grid += [(name, k, seed) for k in grid.target_sizes for name in ("full_finetune", "lp_ft")
                  for seed in grid.seeds]
for name, k, seed in tqdm(finetune_grid, desc="encoder-changing strategies"):
    study.run_encoder_strategy(recorder, strategies.get(name), train, test_subsets, k, seed, grid)
table(encoder_strategies)

# %% [markdown]
# ## 5 · The peer: SetFit, same backbone, same samples
#
# SetFit (Tunstall et al. 2022) fine-tunes the sentence encoder contrastively on pairs built
# from the few labelled examples, then fits a logistic-regression head. We run the library
# itself on AG News (the task its published numbers are for), at 8 and 64 examples per class,
# for the number of pair batches of 16 printed: at 8 per class that is the paper's budget (20
# iterations of a positive and a negative pair per example: 1,280 pairs); at 64 per class the
# paper's 10,240 pairs would take about 12 minutes per seed on 2 CPU cores, so it gets 960.
# Scored on the same test subset as the other encoder-changing strategies.

# %%
setfit_grid = [(k, seed) for k in grid.setfit_sizes for seed in grid.seeds_for(k)]
for k, seed in tqdm(setfit_grid, desc="setfit"):
    study.run_setfit(recorder, train["topic"], test_subsets["topic"], k, seed, dict(grid.setfit_steps)[k])
print("pair batches of 16:", dict(grid.setfit_steps))
table(["setfit", "full_finetune", "frozen_backbone", "nearest_centroid"])

# %% [markdown]
# ## 6 · One head frozen, in sequence: how much does the first task forget?
#
# A common situation: a topic model is in production and a sentiment head must be added
# later. Stage 1 fine-tunes the encoder and the topic head on topic data. Stage 2 adds the
# sentiment head with the **topic head frozen** and the backbone (a) frozen, (b) trainable, or
# (c) adapted with LoRA. The topic head cannot change, but its input can: whatever stage 2 does
# to the encoder changes the features the topic head reads. Forgetting = topic accuracy after
# stage 1 minus after stage 2, on the test subset.

# %%
sequential_seeds = grid.seeds
for seed in tqdm(sequential_seeds, desc="sequential"):
    study.run_sequential(recorder, train, test_subsets, grid.sequential_size, seed, grid,
                         strategies.get("full_finetune"), strategies.get("lora"))
forgetting = study.forgetting(recorder.records)
sentiment_after = pd.DataFrame([r for r in recorder.records if r.get("stage") and r["task"] == "sentiment"])
summary = forgetting.groupby("strategy")[["after_topic", "after_sentiment", "forgetting"]].agg(["mean", "std"])
summary[("sentiment", "mean")] = sentiment_after.groupby("strategy").value.mean()
(100 * summary).round(1)

# %%
plots.forgetting_chart(forgetting, f"Topic accuracy before and after adding sentiment "
                       f"({grid.sequential_size}/class, {len(sequential_seeds)} seeds)",
                       name="03_forgetting", figures_dir=FIGURES);

# %% [markdown]
# ## 7 · Everything side by side
#
# Learning curves: the test metric against the number of labelled examples per class, mean
# over seeds with a ±1 std band; the published numbers quoted in DESIGN.md as black stars.

# %%
compared = [r for r in recorder.records if r["task"] in TASK_NAMES and not r.get("stage")
            and r["strategy"] != "zero_shot"]
references = {"topic": [("SetFit-MiniLM 83.1", 8, published("ag_news_8_setfit_minilm")),
                        ("mpnet+LR 84.4", 64, published("ag_news_64_mpnet_logreg")),
                        ("SetFit-mpnet 88.0", 64, published("ag_news_64_setfit_mpnet"))],
              "sentiment": [("SVM (full data) 62.9", None, published("tweeteval_svm"))]}
plots.learning_curves(compared, TASK_NAMES, references=references, name="03_learning_curves", figures_dir=FIGURES);

# %% [markdown]
# Cost against quality at one data size: each point a strategy (mean over seeds, bar = std),
# training seconds on a log scale. Up and to the left is better. The table after it gives the
# cost of every strategy: trainable parameters, median training seconds, and the memory that
# training adds to holding the model (`memory.training_memory_mb`: the largest step's
# activations saved for backward, plus gradients and AdamW state, counted from the tensors
# themselves; empty for strategies without a gradient step).

# %%
cost_size = 8 if profile.name == "smoke" else 32
plots.cost_vs_quality(compared, TASK_NAMES, cost_size, "Training cost vs test metric",
                      name="03_cost_vs_quality", figures_dir=FIGURES);

# %%
cost = pd.DataFrame([r for r in compared]).groupby("strategy", sort=False).agg(
    trainable_params=("trainable_params", "max"), train_seconds_median=("train_seconds", "median"),
    training_memory_mb_max=("training_memory_mb", "max"), activation_mb_max=("activation_mb", "max"),
    runs=("seed", "count"))
cost.round(2)

# %% [markdown]
# ## 8 · Did we reach the targets?
#
# At 8 examples per class on AG News, the best strategy should beat SetFit run here and
# SetFit-MiniLM's published 83.1; at 64 per class it should reach 88.0 (SetFit with mpnet,
# a model five times larger). "Best" is by mean over seeds; test sets differ between frozen
# strategies (full test set) and the rest (the subset), as printed. Because self-training also
# reads unlabeled texts, which SetFit and the paper's baselines do not, each size is ranked
# three ways: all strategies, those that see only the labelled examples, and those minus the
# peer.

# %%
def best_at(k, task="topic"):
    """Strategies at k examples per class, best mean first (empty when none ran at k)."""
    runs = [r for r in compared if r["task"] == task and r["n_per_class"] == k]
    if not runs:
        return pd.DataFrame()
    rows = summarize(runs, by=("strategy",))
    rows["n_test"] = [next(r["n_test"] for r in compared if r["strategy"] == s and r["task"] == task) for s in rows.strategy]
    return rows.sort_values("mean", ascending=False).reset_index(drop=True)

UNLABELED = {name for name, s in strategies.STRATEGIES.items() if s.reads_unlabeled}
targets = []
for k, goal, label in ((8, published("ag_news_8_setfit_minilm"), "SetFit-MiniLM, published"),
                       (64, published("ag_news_64_setfit_mpnet"), "SetFit-mpnet, published")):
    ranking = best_at(k)
    if ranking.empty:
        continue
    setfit_here = ranking[ranking.strategy == "setfit"]["mean"]
    for among, candidates in (("all strategies", ranking),
                              ("labelled examples only", ranking[~ranking.strategy.isin(UNLABELED)]),
                              ("ours, labelled examples only", ranking[~ranking.strategy.isin(UNLABELED | {"setfit"})])):
        top = candidates.iloc[0]
        on_subset = [r.get("subset_value", r["value"]) for r in compared if r["strategy"] == top.strategy
                     and r["task"] == "topic" and r["n_per_class"] == k
                     and (r.get("subset_value") is not None or r["n_test"] == len(test_subsets["topic"]))]
        targets.append({"examples per class": k, "among": among, "best strategy": top.strategy,
                        "its accuracy": round(100 * top["mean"], 1),
                        "± std": round(100 * top["std"], 1) if top.seeds > 1 else None, "seeds": top.seeds,
                        "test items": top.n_test,
                        f"on SetFit's {len(test_subsets['topic'])} items": round(100 * np.mean(on_subset), 1)
                        if on_subset else None,
                        "SetFit here": round(100 * setfit_here.iloc[0], 1) if len(setfit_here) else None,
                        "published target": f"{100 * goal:.1f} ({label})",
                        # on the same test items as SetFit; the published numbers are on the full test set
                        "beats SetFit here": bool(np.mean(on_subset) > setfit_here.iloc[0])
                        if len(setfit_here) and on_subset else None,
                        "reaches published": bool(top["mean"] >= goal)})
pd.DataFrame(targets)

# %% [markdown]
# ## 9 · Recommendation by data size
#
# The best strategy per task and data size, by mean test metric over seeds, with its cost.

# %%
recommendation = []
for task in TASK_NAMES:
    for k in sorted({r["n_per_class"] for r in compared if r["task"] == task}, key=lambda k: (k is None, k)):
        ranking = best_at(k, task)
        top, second = ranking.iloc[0], ranking.iloc[1] if len(ranking) > 1 else None
        seconds = np.mean([r["train_seconds"] for r in compared if r["task"] == task and r["n_per_class"] == k
                           and r["strategy"] == top.strategy])
        recommendation.append({"task": task, "examples per class": "all" if k is None else k, "best": top.strategy,
                               "metric": round(100 * top["mean"], 1), "runner-up": None if second is None else second.strategy,
                               "gap (pts)": None if second is None else round(100 * (top["mean"] - second["mean"]), 1),
                               "train s": round(seconds, 1)})
pd.DataFrame(recommendation)

# %% [markdown]
# ## 10 · What it means
#
# *(Written from the standard-profile run above. Topic: AG News accuracy; sentiment: TweetEval
# macro recall, chance 33.3. Frozen strategies on the full test sets, the rest on the
# 800-item subsets.)*
#
# - **Whole network frozen.** Zero-shot from four short label descriptions reaches 74.3 on AG
#   News, as good as a nearest-centroid or linear head on 8 labelled examples per class
#   (73.6, 72.9). Centroids improve quickly to 32 per class, then flatten (85.6 with all
#   22,773 examples): the pretrained geometry separates topics, and averaging cannot learn
#   more than that geometry offers. On tweets it offers much less (49.6 zero-shot, 55.7 with
#   every example): sentiment is not what a general sentence-similarity model was trained to
#   encode. *Use it* with no labels, or as the floor any training must beat.
# - **The label names are data.** Adding each label's description to its class centroid (the
#   label prior) costs nothing and is the best way to use 8 examples per class without training:
#   79.5 ± 1.0 on topic against 73.6 ± 3.0 for the centroid alone, with a third of the seed
#   spread. On sentiment it is the best strategy of the whole study at 8 and 32 per class (51.8
#   and 58.0), 2.9 and 1.8 points above the best trained strategy there: with few tweets,
#   "negative / neutral / positive" said in words beats what the examples teach. From 64 per
#   class on, LP-FT overtakes it (60.2 against 58.2 at 64, 63.0 against 59.8 at 128). On topic
#   its advantage fades by 64 per class, where the examples say more than the names.
# - **Backbone frozen.** Heads on cached embeddings train in seconds and reach 87.6 (topic) and
#   64.5 (sentiment, above the published SVM's 62.9) on the whole training sets. With few
#   labels they are no better than centroids. The cache makes a heads-only epoch about 670x
#   cheaper than re-encoding (target 100x: met). *Use it* when the encoder is shared by many
#   tasks and must not drift, when compute is tiny, or when labels are plentiful but training
#   the encoder is not affordable.
# - **Backbone frozen, unlabeled texts used (self-training).** On topic this is the strongest
#   strategy we measured at 8 per class: 84.0 ± 0.9 on the full test set (85.0 on the 800 items
#   the encoder-changing strategies see), and 87.0 at 512 (88.9 on the subset), in about half
#   a second of training once the pool is encoded (the pool's embeddings are the cached ones of
#   section 1; encoding 22,773 texts costs about 2.5 minutes once). In this execution five of
#   its runs at 8 and 32 per class took 4-8 s instead, because other work shared the two cores
#   at the time, and its median seconds in the tables carry that; the fine-tuning runs' seconds
#   match the previous execution within 2%. Its pseudo-labels are 94-96% correct,
#   because the pretrained geometry already clusters by topic. On sentiment the same recipe
#   *hurts* below 512 per class (47.2 at 8, against 51.8 for the prior it starts from):
#   pseudo-labels are only 59-73% correct there, and self-training amplifies the errors. *Use
#   it* when in-domain unlabeled text is plentiful and a zero-shot or few-shot check shows the
#   embedding already separates the classes; check pseudo-label quality on a few hand-labelled
#   items first.
# - **Top-k unfrozen on a cache.** Unfreezing the top two blocks is the cheapest strategy that
#   changes the encoder and still pays: +1.5 to +2.4 points over the frozen backbone on topic
#   from 8 to 512 per class (test subset against full test set, so read it as a trend), at a
#   quarter to a third of full fine-tuning's seconds (4-17 s against 16-57 s) and a quarter of
#   its training memory (221 MB against 808 MB). On topic it stays 0.6-2.2 points behind full
#   fine-tuning, LLRD 0.95 and LP-FT from 32 per class on (5 points at 8), though ahead of
#   ULMFiT's decay and gradual unfreezing; on sentiment it is no better than the frozen
#   backbone. One block is not enough (no better than the frozen backbone). The top-2 step on
#   cached lower-block outputs measured 1.97x faster than a full forward with those blocks
#   frozen (136 ms against 268 ms): just *below* the 2x target, and at its ceiling. Of the
#   268 ms, 127 are the embeddings' and lower blocks' forward and a few more collate the token
#   batch; the cache removes exactly these and nothing else (the top blocks' forward and
#   backward remain), so the cached step is already what is left (268 - 127 = 141 ms, less the
#   collation), and 2x is out of reach for a top-2 step on this 6-block model. The ceiling
#   printed in section 2 (1.90x) leaves the collation out, which is why the measured ratio
#   exceeds it; `freezing_study.lower_forward_seconds` now times the collation too.
# - **Whole-encoder strategies.** With a few labels, moving every weight is what pays among the
#   labelled-only strategies on topic: full fine-tuning gains 7 points over the frozen backbone
#   at 8 per class (79.9 vs 72.9) and 4 at 32, but with a wide seed spread (±3.1 at 8); at 512
#   per class it reaches 88.3 (topic) and 63.3 (sentiment). Layer-wise decay of 0.95 matches it
#   at every size. ULMFiT's /2.6 decays so fast that the lower blocks barely move in a short
#   run, and it lands at or below top-2 unfreezing, at full cost. Gradual unfreezing is the
#   worst at 8 per class: with a 32-step budget it spends a quarter on the heads alone and most
#   of the rest with only 1-3 blocks open. LoRA (1.5% of the weights trained) is 0.5-3 points
#   behind full fine-tuning on topic on the same steps and, on a CPU, no faster: every block
#   still runs forward and backward. Nor does it save memory where it matters here: its
#   gradients and optimiser state are over 60x smaller, but its saved activations are *larger*
#   than full fine-tuning's (732 MB against 549 MB per step: every adapted layer also keeps its
#   input and dropout mask for the adapter), so its total training memory is 735 MB against 808.
# - **LP-FT: fit the heads first, then fine-tune.** The best labelled-only strategy of ours from
#   64 per class on (at 32 it ties full fine-tuning and LLRD 0.95 on topic and trails the label
#   prior on sentiment), and the clearest gain of the study on sentiment. On topic it matches full
#   fine-tuning at 32 (85.7 against 85.9) and is ahead above: 87.2 against 86.3 at 64, 88.8
#   against 87.9 at 128, 89.1 against 88.3 at 512, with a smaller seed spread at 64 and 128. On
#   sentiment the gap is larger: 56.2 against 54.7 at 32, 60.2 against 52.7 at 64, 63.0 against
#   59.0 at 128, 64.2 against 63.3 at 512; at 512 tweets per class it is within the seed spread
#   of a frozen head on all 47,453 (64.2 ± 1.9 against 64.5). Random heads send noisy gradients into the encoder for the first steps of full
#   fine-tuning, and with a budget of 48-128 steps those first steps are a large part of the run;
#   a probe on cached embeddings (300 steps, a second or two) removes them. At 8 per class it
#   gains nothing (topic 79.3 ± 4.1, sentiment 48.8): with 32 examples the probe itself is
#   weak. It costs what full fine-tuning costs, plus the probe and the encoding of the sample it
#   reads (within 2 s of it up to 64 per class, about 4 s more at 128 and 13 s at 512).
# - **The peer.** SetFit, run here on the same samples and backbone with the paper's pair budget
#   at 8 per class, is the best strategy that sees only the labelled examples at 8 and 64 per
#   class: 82.1 ± 1.3 at 8 (full fine-tuning 79.9 ± 3.1, LP-FT 79.3) and 88.4 ± 0.6 at 64 (1.2
#   points above LP-FT, 2.1 above full fine-tuning). It costs the most: about 86 s and 1.2 GB
#   of training memory per model at 8 per class (pairs double the sentences per step), against
#   16 s and 0.7 GB for full fine-tuning. It stays 1 point short of its published 83.1 at 8 per
#   class, on a different test subset and training sample.
# - **One head frozen.** A frozen topic head does not protect the topic task by itself: when
#   stage 2 trains the whole backbone for sentiment, topic accuracy drops by 1.4 ± 1.8 points
#   (3.1 in one seed), because the head's input moved. A frozen backbone forgets nothing
#   by construction, but sentiment then gets only a head (49.1). LoRA sits between: sentiment
#   51.0, and no measurable forgetting (−0.1 ± 0.1) on this budget. Plasticity for the new task
#   is paid for with stability of the old one. Adapters, or training both tasks together as in
#   notebook 04, are the ways to have both.
#
# **Did we reach the targets?** At 8 per class, yes, with unlabeled texts: self-training (84.0
# on the full test set, 85.0 on SetFit's 800 items) beats SetFit run here (82.1 on those items)
# and SetFit-MiniLM's published 83.1. It does so by using something SetFit and the published
# baselines do not: the unlabeled rest of the training set. Among strategies that see only the
# labelled sample, SetFit is best (82.1), and our best (full fine-tuning, 79.9) reaches neither
# target. At 64 per class, only SetFit reaches 88.0 (88.4); our best there is LP-FT at 87.2 ± 0.6,
# 0.8 short. LP-FT passes 88.0 from 128 per class (88.8 ± 0.4). Fine-tuning on self-training's
# pseudo-labels (noisy student) and self-training on fine-tuned embeddings were also tried
# outside the recorded grid: 84.1 at 8 and 87.8 at 64 per class, no better.
#
# **Transfer learning, in short.**
# - *Which pretrained model:* a sentence-embedding model rather than a raw masked-language
#   model. all-MiniLM-L6-v2's contrastive training already lines its vectors up with topics: 74%
#   zero-shot, 84% from 8 examples per class plus unlabeled text, without training a single
#   encoder weight. It is small enough to fine-tune on a laptop CPU. For tweets, domain matters
#   more than any freezing choice: Twitter-trained models report 73-74 macro recall (BERTweet,
#   TimeLMs) against 64.5 for our best frozen head on all the data.
# - *Which layers:* the top blocks carry the most task-specific features and the lower blocks
#   general lexical ones, which is why unfreezing from the top pays first. Under a tight budget,
#   freeze everything below the top two blocks and cache their output. With 32 or more
#   examples per class and the compute for full passes, fit the heads on the frozen encoder
#   first, then unfreeze everything (LP-FT); a mild layer-wise decay (0.95) changes nothing
#   measurable here. Avoid aggressive decay and slow gradual unfreezing when the step budget is
#   small: they spend it on the heads, and LP-FT gets the heads right for a fraction of a step.
# - *By data size* (topic): no labels → zero-shot; 8 per class → self-training on the frozen
#   encoder if unlabeled in-domain text exists, otherwise SetFit, or the label prior when no
#   training at all is wanted; 32 → full fine-tuning, LLRD 0.95 or LP-FT, within 0.3 points of
#   each other (85.7-86.0); 64-512 → LP-FT (87.2-89.1), full fine-tuning and LLRD 0.95 0.8-0.9
#   below; top-2 on a cache when fine-tuning seconds matter (83.7-87.2 at a third of the
#   cost), and at 512 self-training on the frozen encoder is as good as top-2 for a second of
#   training (87.0). Notebook 04's `make train` model reaches 91.6 with full fine-tuning on
#   4,000 per class. For sentiment: the label prior at 8-32 per class, LP-FT from 64 (60.2-64.2),
#   a frozen head when every label is available (64.5).
# %%
assert not study.duplicate_runs(recorder.records), study.duplicate_runs(recorder.records)
path = recorder.save()
print(f"{len(recorder.records)} records -> {path.relative_to(path.parents[1])}")
