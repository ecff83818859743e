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
# | 9 | `anchored_contrastive` | every weight, one task at a time: a supervised contrastive loss with each label's description as an anchor in every batch, then the label prior | as full per text; a step budget no larger than SetFit's |
# | 9b | `anchored_self_training` | 9, then self-training on its tuned encoder with 20,000 unlabeled training texts | 9, plus encoding the pool |
#
# **Protocol.** Every strategy sees the same few-shot samples (`data.few_shot_indices`: k per
# class, fixed by the seed; the 8-shot sample is inside the 32-shot one). Both heads share one
# encoder and train together in alternating batches, with the same step budget per data size
# for every encoder-changing strategy (SetFit and our recipe against it train one task at a
# time, as SetFit does). Every strategy is scored on the same fixed stratified
# subset of each official test set (size printed below, the same for every strategy, size and
# seed), so two strategies are compared item for item; the cheap frozen strategies also score
# the full test sets (`full_test_value`). Metrics: AG News accuracy, TweetEval macro recall (each
# benchmark's own), beside the majority class. Model selection uses no test data: every
# hyper-parameter is fixed in `strategies.py` before the runs. A comparison is the paired
# difference (same seeds, samples and test items) with its 95% interval; inside it, a tie.

# %%
from dataclasses import asdict

import numpy as np
import pandas as pd
from IPython.display import Markdown

from sentence_mtl import strategies
from sentence_mtl.config import figures_dir, get_profile
from sentence_mtl.data import TASKS, DataSource
from sentence_mtl.experiments import analysis, headline as grid_rule
from sentence_mtl.experiments.freezing import FreezingStudy, StudyData
from sentence_mtl.experiments.grids import GRIDS, grid_for
from sentence_mtl.experiments.store import RunStore
from sentence_mtl.references import value as published
from sentence_mtl.reporting import figures, plots
from sentence_mtl.results import Recorder

profile = get_profile()
grid = grid_for(GRIDS, profile)
source = DataSource.resolve(profile_name=profile.name)
FIGURES = figures_dir(profile)
TASK_NAMES = list(grid.tasks)
data = StudyData.load(grid, profile, source)  # splits, the pretrained encoder, its cached embeddings
train, test, test_subsets = data.train, data.test, data.test_subsets
recorder = Recorder("03_freezing_strategies", profile,
                    {"grid": asdict(grid), "strategies": {n: asdict(s) for n, s in strategies.STRATEGIES.items()},
                     "profile": profile.to_dict()}, is_sample=source.is_sample)
study = FreezingStudy(data, recorder, RunStore())  # every run below is read from the store when it holds it


def table(names):
    """Mean ± std over seeds (percent), one row per (task, strategy), one column per size."""
    return analysis.mean_std_table([r for r in recorder.records if r["strategy"] in names and not r.get("stage")])


print(f"profile: {profile.name}" + ("   ** hand-written SAMPLE data **" if source.is_sample else ""))
pd.DataFrame({t: {"train pool": len(train[t]), "full test set": len(test[t]),
                  "test subset (every strategy)": len(test_subsets[t]), "metric": TASKS[t].metric}
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
for t in TASK_NAMES:
    study.run("majority_class", task=t)
    study.run("zero_shot", task=t)
for k, seed in grid.cheap_runs():
    study.run("nearest_centroid", k, seed)
    if k is not None:
        study.run("label_prior", k, seed)
table(["majority_class", "zero_shot", "nearest_centroid", "label_prior"])

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
for k, seed in grid.cheap_runs():
    study.run("frozen_backbone", k, seed)
speed = {r["strategy"]: r for r in study.measure_cache_speedups()}
heads, top2 = speed["heads_epoch_ratio"], speed["top2_step_ratio"]
print(f"heads-only epoch: cached {heads['heads_epoch_cached_s'] * 1000:.0f} ms vs re-encoding "
      f"{heads['heads_epoch_reencode_s']:.2f} s -> {heads['value']:.0f}x (target >= 100x)")
print(f"top-2 step: cached {top2['top2_step_cached_s'] * 1000:.0f} ms vs full forward "
      f"{top2['top2_step_full_forward_s'] * 1000:.0f} ms -> {top2['value']:.1f}x (target >= 2x)")
print(f"  the lower blocks' forward alone: {top2['top2_lower_forward_s'] * 1000:.0f} ms of the full step, so no "
      f"cache of them can give more than {top2['top2_step_ratio_bound']:.2f}x here")
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
for k, seed in grid.cheap_runs(labelled_only=True):
    study.run("self_training", k, seed)
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
for name, k, seed in grid.cached_runs():
    study.run(name, k, seed)
table(list(grid.cached_strategies))

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
for name, k, seed in grid.finetune_runs():
    study.run(name, k, seed)
table(list(grid.encoder_strategies))

# %% [markdown]
# ## 5 · The peer, and a labelled-only recipe above it
#
# SetFit (Tunstall et al. 2022) fine-tunes the sentence encoder contrastively on pairs built
# from the few labelled examples, then fits a logistic-regression head. We run the library
# itself on both tasks at 8, 32 and 64 examples per class, for the number of pair batches of 16
# printed: at 8 per class that is the paper's budget (20 iterations of a positive and a
# negative pair per example: 1,280 pairs); at 32 and 64 per class the paper's 5,120 and 10,240
# pairs would take 6 to 12 minutes per seed on 2 CPU cores, so they get 1,280 and 960.
#
# **Our recipe against it: `anchored_contrastive`** (`anchored_contrastive.py`). Same backbone,
# sample, seeds and test subset; it reads only the labelled examples and the label descriptions.
# Two changes to SetFit's idea: each label's description joins every batch as one more member
# of its class (an anchor, after AncSetFit, Pauli et al. 2023), and a supervised contrastive
# loss over the whole batch (Khosla et al. 2020) replaces the cosine loss on independent pairs.
# The classifier is then the label prior on the tuned encoder (class mean plus description,
# nearest by cosine; section 1). Its settings (`strategies.ContrastiveSettings`, printed below:
# steps, examples per class in a batch, learning rate, temperature) were chosen on the
# validation split at 8 examples per class before any test run (`tools/few_shot_validation.py`;
# its runs are in `results/few_shot_validation.log`), with no more sentence passes than
# SetFit's; the training seconds of both are in the table. The difference is paired: the
# same seed's sample, the same test items.

# %%
for task, k, seed in grid.peer_runs():
    study.run_setfit(k, seed, task)
    study.run("anchored_contrastive", k, seed, task)
print("SetFit pair batches of 16:", dict(grid.setfit_steps), "  ours:", strategies.get("anchored_contrastive").contrastive)
peer_rows = []
for task, k in dict.fromkeys((t, k) for t, k, _ in grid.peer_runs()):
    vs = analysis.paired(recorder.records, "anchored_contrastive", "setfit", task, k)
    cell = {s: [r for r in recorder.records if r["strategy"] == s and r["task"] == task and r["n_per_class"] == k]
            for s in ("setfit", "anchored_contrastive")}
    peer_rows.append({"task": task, "examples per class": k, "seeds": vs["seeds"],
                      **{f"{s} (%)": round(100 * np.mean([r["value"] for r in rs]), 1) for s, rs in cell.items()},
                      "ours minus SetFit (paired, 95% CI)": f"{100 * vs['mean']:+.1f} [{100 * vs['low']:+.1f}, "
                                                            f"{100 * vs['high']:+.1f}]: {vs['verdict']}",
                      **{f"{s} train s": round(np.median([r["train_seconds"] for r in rs])) for s, rs in cell.items()}})
pd.DataFrame(peer_rows)

# %%
peer_differences = [{"task": task, "label": f"{k} per class", **analysis.paired(
    recorder.records, "anchored_contrastive", "setfit", task, k)} for task, k in dict.fromkeys(
    (t, k) for t, k, _ in grid.peer_runs())]
plots.paired_differences(peer_differences, "anchored_contrastive",
                         "Our labelled-only recipe minus SetFit (test subsets): paired by seed, 95% interval",
                         name="03_peer_differences", figures_dir=FIGURES);

# %% [markdown]
# Right of the dashed line, our recipe is ahead of SetFit on the same items; an interval that
# crosses it is a tie. The table above gives both means and their training seconds.

# %% [markdown]
# **With unlabeled texts on top: `anchored_self_training`.** The same contrastive stage, then
# self-training (section 1's recipe) on the *tuned* encoder: the label prior pseudo-labels
# 20,000 training texts drawn at random with their labels hidden, and a logistic regression
# learns from the labelled examples plus the most confident pseudo-labels of each class, for
# two rounds. It reads texts SetFit never sees, so it answers a different question: what the
# unlabeled texts a deployment usually has add to the labelled-only recipe. Run at 8 per class,
# where labels are scarcest; the pseudo-label accuracy (against the hidden gold labels) is a
# diagnostic the method never sees.

# %%
for task, k, seed in grid.unlabeled_peer_runs():
    study.run("anchored_self_training", k, seed, task)
unlabeled_rows = []
for task, k in dict.fromkeys((t, k) for t, k, _ in grid.unlabeled_peer_runs()):
    runs_ = [r for r in recorder.records if r["strategy"] == "anchored_self_training" and r["task"] == task
             and r["n_per_class"] == k]
    row = {"task": task, "examples per class": k, "seeds": len(runs_),
           "with unlabeled (%)": round(100 * np.mean([r["value"] for r in runs_]), 1),
           "pseudo-label accuracy (%)": round(100 * np.mean([r["pseudo_label_accuracy"] for r in runs_]), 1)}
    for other in ("anchored_contrastive", "setfit"):
        vs = analysis.paired(recorder.records, "anchored_self_training", other, task, k)
        row[f"minus {other} (paired, 95% CI)"] = (f"{100 * vs['mean']:+.1f} [{100 * vs['low']:+.1f}, "
                                                 f"{100 * vs['high']:+.1f}]: {vs['verdict']}")
    row["train s"] = round(np.median([r["train_seconds"] for r in runs_]))
    unlabeled_rows.append(row)
pd.DataFrame(unlabeled_rows)

# %%
said = []
for row in unlabeled_rows:
    vs = analysis.paired(recorder.records, "anchored_self_training", "anchored_contrastive", row["task"],
                         row["examples per class"])
    said.append(f"On {row['task']} at {row['examples per class']} per class, the unlabeled texts move the recipe "
                f"{100 * vs['mean']:+.1f} points ({analysis.VERDICT_WORDS[vs['verdict']]}), with pseudo-labels "
                f"{row['pseudo-label accuracy (%)']}% right.")
Markdown(" ".join(said) + " Self-training can only add what the tuned encoder's geometry already separates: its "
         "pseudo-labels are the label prior's guesses, so they help where those guesses are mostly right.")

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
for seed in grid.seeds:
    study.run_sequential(seed)
forgetting = analysis.forgetting(recorder.records)
sentiment_after = pd.DataFrame([r for r in recorder.records if r.get("stage") and r["task"] == "sentiment"])
summary = forgetting.groupby("strategy")[["after_topic", "after_sentiment", "forgetting"]].agg(["mean", "std"])
summary[("sentiment", "mean")] = sentiment_after.groupby("strategy").value.mean()
(100 * summary).round(1)

# %%
figures.forgetting_chart(recorder.records, FIGURES);

# %% [markdown]
# ## 7 · Everything side by side
#
# Learning curves: the test metric against the number of labelled examples per class, mean
# over seeds with a ±1 std band, one row of panels per family of strategies (what each freezes),
# at most five lines a panel; the last row shows the frozen backbone, dashed, for reference.

# %%
compared = [r for r in recorder.records if r["task"] in TASK_NAMES and not r.get("stage")
            and r["strategy"] not in ("zero_shot", "majority_class") and not r.get("headline")]
figures.learning_curves(recorder.records, FIGURES);

# %% [markdown]
# Cost against quality at one data size: each point a strategy (mean over seeds, bar = std),
# training seconds on a log scale. Up and to the left is better. The table after it gives the
# cost of every strategy: trainable parameters, median training seconds, and the memory that
# training adds to holding the model (`memory.training_memory_mb`: the largest step's
# activations saved for backward, plus gradients and AdamW state, counted from the tensors
# themselves; empty for strategies without a gradient step).

# %%
plots.cost_vs_quality(compared, TASK_NAMES, grid.cost_size, "Training cost vs test metric",
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
# SetFit-MiniLM's published 83.1 (Tunstall et al. 2022); at 64 per class it should reach 88.0
# (SetFit with mpnet, a model five times larger). "Best" is the highest mean over seeds; against
# SetFit run here it is a paired difference on the same test items, with its 95% interval.
# Because self-training also reads unlabeled texts, which SetFit and the paper's baselines do
# not, each size is ranked three ways: all strategies, those that see only the labelled
# examples, and those minus the peer. Reading a maximum off the test set flatters it a little;
# the intervals, not the ranking, carry the claim.

# %%
UNLABELED = {r["strategy"] for r in compared if r.get("uses_unlabeled")}  # each record says what it read
targets = []
for k, goal, label in ((8, published("ag_news_8_setfit_minilm"), "SetFit-MiniLM, published"),
                       (64, published("ag_news_64_setfit_mpnet"), "SetFit-mpnet, published")):
    ranking = analysis.best_at(compared, k, "topic")
    if ranking.empty:
        continue
    for among, candidates in (("all strategies", ranking),
                              ("labelled examples only", ranking[~ranking.strategy.isin(UNLABELED)]),
                              ("ours, labelled examples only", ranking[~ranking.strategy.isin(UNLABELED | {"setfit"})])):
        top = candidates.iloc[0]
        values = [r["value"] for r in compared if r["strategy"] == top.strategy and r["task"] == "topic"
                  and r["n_per_class"] == k]
        vs = analysis.paired(compared, top.strategy, "setfit", "topic", k) if top.strategy != "setfit" else None
        targets.append({"examples per class": k, "among": among, "best strategy": top.strategy, "seeds": top.seeds,
                        "accuracy": analysis.interval_text(*analysis.interval(values, top.n_test)),
                        "minus SetFit here (paired)": None if vs is None else
                        f"{100 * vs['mean']:+.1f} pts [{100 * vs['low']:+.1f}, {100 * vs['high']:+.1f}]: {vs['verdict']}",
                        "published target": f"{100 * goal:.1f} ({label})", "mean reaches it": bool(top["mean"] >= goal)})
pd.DataFrame(targets)

# %% [markdown]
# ## 9 · The headline comparisons: ten seeds, the full test sets, paired on seeds and items
#
# With 3 to 5 seeds on test subsets, most differences above are ties. The comparisons that
# answer "what to freeze" run again in the headline grid (`grids.HeadlineGrid`): the strategies
# below at 8 and 64 labelled examples per class, ten seeds (the same ten samples for every
# strategy), each run scored on the full official test sets with every predicted label kept, and
# on a validation subset on which choices are made. A difference between two strategies is
# bootstrapped over seeds and test items at once (`analysis.paired_items`), so items that both
# get right or both get wrong cancel. SetFit runs with the settings its own validation search
# chose, on the same validation texts and with a budget like our recipe's
# (`tools/few_shot_validation.py --setfit`; both searches are in `results/few_shot_validation.log`).
# The grid takes hours on 2 CPU cores, so `make headline` computes it apart from this notebook,
# which reads the runs the store holds (the smoke profile's small grid runs here).

# %%
held = study.read_headline(compute_missing=profile.name == "smoke")
headline = [r for r in recorder.records if r.get("headline") and not r.get("stage")]
resamples = {t: analysis.ItemResamples(test[t].labels) for t in TASK_NAMES}
floors = analysis.majority_floors(recorder.records)
cells = [(t, k) for t in TASK_NAMES for k in grid.headline.sizes]
print(f"headline runs in the store: {held['held']} of {held['runs']}; differences: {analysis.BOOTSTRAP_METHOD}")
pd.DataFrame([{"task": r["task"], "per class": r["k"], "strategy": r["strategy"], "seeds": r["seeds"],
               "validation (%)": round(100 * r["val_value"], 1),
               "test (%)": analysis.interval_text(r["value"], r["low"], r["high"]),
               "majority class (%)": round(100 * floors.get(r["task"], float("nan")), 1),
               "minus best on validation (points)": "best on validation" if r["minus_best"] is None else
               f"{100 * r['minus_best']['mean']:+.1f} [{100 * r['minus_best']['low']:+.1f}, "
               f"{100 * r['minus_best']['high']:+.1f}]: {r['minus_best']['verdict']}",
               "train s": round(r["train_seconds"], 1)}
              for r in grid_rule.headline_rows(headline, resamples, cells)])

# %% [markdown]
# **The decision rule.** At each size and task, the cheapest strategy (median training seconds)
# whose paired validation difference to the best-on-validation strategy is not "behind"
# (`headline.recommendation`). Both choices read validation scores only; the test score and the
# test difference are reported. A cell is decided only when every strategy has every seed.

# %%
pd.DataFrame(grid_rule.recommendation(headline, cells, grid.headline.strategies, grid.headline.seeds,
                                     labels=resamples)).drop(columns=["difference", "val_difference"], errors="ignore")

# %% [markdown]
# **Our labelled-only recipe against SetFit**, on the same seeds, samples and test items:

# %%
peer_headline = [{"task": t, "label": f"{k} per class (seeds: {d['seeds']})", **d} for t, k in cells
                 if (d := analysis.paired_items(headline, "anchored_contrastive", "setfit", t, k, resamples[t]))]
if peer_headline:
    plots.paired_differences(peer_headline, "anchored_contrastive",
                             "Our recipe minus SetFit, headline grid (full test sets): paired by seed and test "
                             "item, 95% interval", name="03_headline_peer", figures_dir=FIGURES);
pd.DataFrame(peer_headline)

# %% [markdown]
# ## 10 · Appendix: the leaders of the other runs
#
# The other strategies stay at their 3 to 5 seeds on the test subsets. The leader per task and
# data size (highest mean over seeds on the test subset), the strategies it does not separate
# from (paired by seed; 95% interval of the difference holds zero), and its cost. Read off the
# test set, this is a description, not a choice: the recommendation above chooses on validation.

# %%
recommendation = []
for task in TASK_NAMES:
    for k in sorted({r["n_per_class"] for r in compared if r["task"] == task} - {0}, key=lambda k: (k is None, k)):
        ranking = analysis.best_at(compared, k, task)
        top = ranking.iloc[0]
        ties = [s for s in ranking.strategy[1:] if (d := analysis.paired(compared, top.strategy, s, task, k))
                and d["verdict"] == "tie"]
        seconds = np.mean([r["train_seconds"] for r in compared if r["task"] == task and r["n_per_class"] == k
                           and r["strategy"] == top.strategy])
        recommendation.append({"task": task, "examples per class": "all" if k is None else k, "leader": top.strategy,
                               "metric": round(100 * top["mean"], 1), "seeds": top.seeds,
                               "tied with (paired 95% CI holds 0)": ", ".join(ties) or "none",
                               "train s": round(seconds, 1)})
pd.DataFrame(recommendation)

# %% [markdown]
# <!-- conclusion:start -->
# ## 11 · What it means
#
# *Rendered from `results/claims.json` by `make docs` (template
# `templates/notebooks/03_freezing_strategies.md.j2`).*
#
# **The answer, from the headline grid** (10 seeds, the full official test sets,
# choices on validation): the recommendation by data size is the table at the end of this section.
# Two contrasts carry the scenarios. Freezing the whole network, the label prior is
# ahead of a linear head on the frozen vectors with
# 8 labels per class on topic (+7.0 points,
# 95% CI +5.3 to +9.2); training the whole encoder, full fine-tuning is
# ahead of the frozen backbone with
# 64 on topic (+2.4 points,
# 95% CI +1.8 to +3.0) and
# ahead on sentiment
# (+1.8 points, 95% CI +0.6 to +3.0).
# Against SetFit, our label-anchored recipe is +0.6 points and
# -0.7 points on topic (a tie and
# behind with 8 and 64 per class), and
# +7.7 points and +6.3 points on sentiment
# (ahead and
# ahead).
#
# *The scenarios, on the wider study's test subsets (800 AG News items,
# 798 tweets) with 3 to 5 seeds; a
# difference is paired by seed and called a tie when its 95% interval holds zero.*
#
# - **Whole network frozen.** Nothing learns: class centroids and each label's description decide.
#   At 8 labels per class this label prior scores 81.2% on
#   topic (95% CI 77.9–84.5), +7.5 points over a linear
#   head trained on the same frozen vectors, and is
#   not separated from
#   full fine-tuning (+1.5 points). Use it for a new task with a
#   handful of labels, or as the floor any training must beat.
# - **Backbone frozen.** Only the heads learn, in 0.5 s on
#   cached vectors, and every task keeps one encoder. At 64 per class full fine-tuning is
#   not separated from it on
#   topic (+3.7 points, 95% CI -0.3 to +7.6).
#   Self-training on the frozen encoder adds the unlabeled texts: at 512 per class it
#   scores 88.9% on the topic subset and
#   87.0% on the full AG News test set.
# - **One head frozen while the encoder trains.** The head keeps its weights, but the features it
#   reads move: after a sentiment stage, topic accuracy changed by -2.3 points
#   (95% CI -3.8 to -0.9; 10 seeds, the full AG News test set, paired on seeds and items). Only with the backbone frozen as well is the first task safe by
#   construction.
# - **Whole encoder trained.** At 512 per class LP-FT (a linear probe, then every
#   layer) is ahead of the
#   frozen backbone on topic (+4.3 points, 95% CI +0.8 to +7.9)
#   and ahead of it on
#   sentiment (+8.5 points), for 121 s
#   of training against 0.5 s; against plain full fine-tuning
#   it is +1.5 points (95% CI -3.4 to +6.3).
#
# **Transfer learning, in short.** Start from a sentence-embedding model (all-MiniLM-L6-v2): its
# pretrained vectors already separate topics, so the label prior works with no training at all. Fit
# the heads on the frozen encoder first and unfreeze the encoder only afterwards (LP-FT), which is
# meant to keep random heads from sending noise into it (Kumar et al. 2022); here LP-FT is
# not separated from plain
# fine-tuning at 512 per class on topic (+1.5 points). Which strategy to take at each data size is chosen by one rule,
# `headline.recommendation`: the cheapest strategy whose paired validation difference to the
# best-on-validation strategy is not behind. Both choices read validation scores only; the test sets
# report.
#
# | task | labels per class | recommended | its full-test score | best on validation |
# |---|---|---|---|---|
# | topic | 8 | self-training on the frozen encoder | 83.8% (95% CI 82.8–84.9) | self-training on the frozen encoder |
# | topic | 64 | linear probe, then full fine-tuning (LP-FT) | 86.6% (95% CI 85.7–87.5) | SetFit |
# | sentiment | 8 | label-anchored contrastive fine-tuning | 56.5% (95% CI 53.5–59.4) | label-anchored contrastive fine-tuning |
# | sentiment | 64 | label-anchored contrastive fine-tuning | 63.6% (95% CI 62.5–64.6) | label-anchored contrastive fine-tuning |
# <!-- conclusion:end -->

# %%
assert not analysis.duplicate_runs(recorder.records), analysis.duplicate_runs(recorder.records)
path = recorder.save()
print(f"{len(recorder.records)} records -> {path.relative_to(path.parents[1])}; {study.store.summary()}")
