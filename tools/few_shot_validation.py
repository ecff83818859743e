"""How the settings of ``anchored_contrastive`` and of SetFit were chosen: on validation texts,
never on test, with the same budget for both (a handful of runs at 8 per class on topic).

Usage: ``python tools/few_shot_validation.py TASK K SEED [--val-items N] [--base | key=value,... ...]``;
with ``--setfit``, each ``steps=...,lr=...`` trains SetFit (pair batches of 16, the body's
learning rate) on the same sample and scores its logistic-regression head on the same items.
``--base`` scores the heads on the pretrained encoder; each ``key=value,...`` (fields of
``strategies.ContrastiveSettings``) trains the recipe on the k-per-class sample of ``seed`` and
scores the label prior, logistic regression, logistic regression with the descriptions as extra
rows, and prior + regression ensembles on a stratified subset of the validation split
(AG News: carved from train; TweetEval: its own). One line per setting; the runs behind the
chosen defaults are in ``results/few_shot_validation.log``.
"""

import argparse
import copy
import time

import numpy as np
import torch
from scipy.special import softmax
from sklearn.linear_model import LogisticRegression

from sentence_mtl.anchored_contrastive import train_anchored
from sentence_mtl.data import TASKS, DataSource, few_shot_indices, load_task, stratified_subset
from sentence_mtl.encoder import SentenceEncoder
from sentence_mtl.evaluation import benchmark_metric
from sentence_mtl.semi_supervised import label_prior_prototypes, nearest_prototype, unit
from sentence_mtl.strategies import ContrastiveSettings

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("task")
parser.add_argument("k", type=int)
parser.add_argument("seed", type=int)
parser.add_argument("settings", nargs="*", help="key=value,... of ContrastiveSettings (one run each)")
parser.add_argument("--base", action="store_true", help="the heads on the pretrained encoder")
parser.add_argument("--setfit", action="store_true", help="settings are SetFit's: steps=N,lr=X")
parser.add_argument("--val-items", type=int, default=2000)
args = parser.parse_intermixed_args()

torch.set_num_threads(2)
source = DataSource.resolve()
train = load_task(args.task, "train", source)
val = stratified_subset(load_task(args.task, "val", source), args.val_items)
idx = few_shot_indices(train, args.k, args.seed)
texts, labels = [train.texts[i] for i in idx], train.labels[idx]
descriptions = TASKS[args.task].label_descriptions
base = SentenceEncoder.from_pretrained("sentence-transformers/all-MiniLM-L6-v2", max_seq_length=128)


def heads(encoder) -> dict[str, float]:
    e, d, v = encoder.encode(texts, 64), encoder.encode(descriptions), encoder.encode(val.texts, 64)
    prototypes = label_prior_prototypes(e, labels, d)
    regression = LogisticRegression(max_iter=1000).fit(unit(e), labels)
    with_descriptions = LogisticRegression(max_iter=1000).fit(unit(np.vstack([e, d])),
                                                              np.concatenate([labels, np.arange(len(d))]))
    out = {"prior": nearest_prototype(v, prototypes), "logreg": regression.predict(unit(v)),
           "logreg+desc": with_descriptions.predict(unit(v))}
    for t in (0.02, 0.05):
        out[f"ens{t}"] = (softmax(unit(v) @ prototypes.T / t, axis=1)
                          + with_descriptions.predict_proba(unit(v))).argmax(1)
    return {h: round(100 * benchmark_metric(args.task, val.labels, p)[1], 1) for h, p in out.items()}


if args.base:
    print(args.task, args.k, args.seed, f"val {len(val)}", "pretrained", heads(base), flush=True)
if args.setfit:
    from sentence_mtl.experiments.finetune_runs import train_setfit

    for setting in args.settings:
        fields = dict(item.split("=") for item in setting.split(","))
        model, cost, _, _ = train_setfit(train, args.k, args.seed, int(fields.get("steps", 80)),
                                         float(fields.get("lr", 2e-5)))
        predictions = np.asarray(model.predict(val.texts, batch_size=64, show_progress_bar=False))
        print(args.task, args.k, args.seed, f"val {len(val)}", "setfit", fields, f"{cost.seconds:.0f}s",
              {"logreg": round(100 * benchmark_metric(args.task, val.labels, predictions)[1], 1)}, flush=True)
    raise SystemExit(0)
for setting in args.settings:
    fields = dict(item.split("=") for item in setting.split(","))
    settings = ContrastiveSettings(**{k: int(v) if k in ("steps", "per_class") else float(v) for k, v in fields.items()})
    encoder = copy.deepcopy(base)
    start = time.time()
    losses = train_anchored(encoder, texts, labels, descriptions, settings, args.seed)
    print(args.task, args.k, args.seed, f"val {len(val)}", fields, f"{time.time() - start:.0f}s",
          f"loss {losses[0]:.2f}->{np.mean(losses[-5:]):.2f}", heads(encoder), flush=True)
