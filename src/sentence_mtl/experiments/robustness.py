"""Sentiment in and out of domain: the model ``make train`` saves, the frozen-encoder baseline,
and the weight-space ensembles between them (WiSE-FT, ``sentence_mtl.weight_ensembles``).

    python -m sentence_mtl.experiments.robustness --model models/multitask \
        [--baseline models/baseline_recipe] [--output results/robustness.json]

1. The baseline: the pretrained encoder with logistic-regression heads fitted on its embeddings of
   the very texts the model was trained on (the training sample is rebuilt from its saved config).
2. For each alpha of the grid, the interpolated model on the validation sets (in domain, what the
   choice reads) and on the out-of-domain sets (``sentence_mtl.out_of_domain``: shown, never used
   to choose). The chosen alpha has the best mean validation metric over the two tasks.
3. alpha = 0, the chosen alpha and alpha = 1 on the official test sets and the out-of-domain sets,
   with 95% intervals and paired differences from one bootstrap over the items (every model is
   scored on the same resamples). News (AG News test texts) read by the sentiment head shows how
   often factual text is called neutral. ``--baseline``: another fine-tuned model (the previous
   recipe, ``configs/baseline_recipe.json``) scored beside them on the same items, with its
   validation metric, so the recipe is chosen on validation in the same run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ..data import SENTIMENT_LABELS, TASKS, DataSource, load_task
from ..io import write_json
from ..multitask import MultiTaskModel
from ..out_of_domain import LOADERS, NEUTRAL, correct, score
from ..train_config import TrainConfig
from ..training import evaluate
from ..weight_ensembles import interpolate, pretrained_start
from .analysis import bootstrap

ALPHAS = tuple(round(a / 10, 1) for a in range(11))


def macro_recall(gold: np.ndarray, predicted: np.ndarray, n_classes: int) -> float:
    hits = np.bincount(gold[predicted == gold], minlength=n_classes)
    counts = np.bincount(gold, minlength=n_classes)
    return float((hits[counts > 0] / counts[counts > 0]).mean())


def task_metric(task: str, gold: np.ndarray, predicted: np.ndarray) -> float:
    if TASKS[task].metric == "macro_recall":
        return macro_recall(gold, predicted, len(TASKS[task].label_names))
    return float((gold == predicted).mean())


def training_sample(model: MultiTaskModel, source: DataSource):
    """The texts and labels the model was trained on, and its validation sets (from its config)."""
    from ..batch_plan import load_training_data

    config = TrainConfig.from_dict(model.training_config) if model.training_config else TrainConfig()
    sources, val_sets = load_training_data(config, source)
    texts = {s.name: list(s.texts) for s in sources}
    labels = {s.name: np.asarray(s.labels[s.name]) for s in sources}
    return config.model, texts, labels, val_sets


BASELINE, TUNED = "baseline recipe (fine-tuned)", "fine-tuned (make train)"


def validation_scores(model: MultiTaskModel, val_sets) -> dict[str, float]:
    return {task: m["benchmark_value"] for task, m in evaluate(model, val_sets).items()}


def run(model_dir: Path, source: DataSource, alphas=ALPHAS, reps: int = 1000, baseline_dir: Path | None = None) -> dict:
    start_time = time.perf_counter()
    fine_tuned = MultiTaskModel.from_pretrained(model_dir)
    pretrained_name, texts, labels, val_sets = training_sample(fine_tuned, source)
    start = pretrained_start(fine_tuned, pretrained_name, texts, labels)
    out_of_domain = {name: load(source) for name, load in LOADERS.items()}

    curve = []
    for alpha in alphas:
        model = interpolate(start, fine_tuned, alpha)
        val = validation_scores(model, val_sets)
        ood = {name: score(model.predict_proba(d.texts)["sentiment"], d) for name, d in out_of_domain.items()}
        curve.append({"alpha": alpha, "validation": val, "validation_mean": float(np.mean(list(val.values()))),
                      "out_of_domain": ood})
        print(f"alpha {alpha:.1f}: validation {val}; out of domain "
              f"{ {n: round(s['value'], 4) for n, s in ood.items()} }", flush=True)
    chosen = max(curve, key=lambda c: (c["validation_mean"], c["alpha"]))["alpha"]

    compared = {"frozen encoder + logistic regression": 0.0, f"WiSE-FT, alpha {chosen:.1f}": chosen,
                TUNED: 1.0}
    if chosen in (0.0, 1.0):  # the best ensemble is one of the two ends: nothing more to compare
        del compared[f"WiSE-FT, alpha {chosen:.1f}"]
    models = {name: interpolate(start, fine_tuned, alpha) for name, alpha in compared.items()}
    validation = {name: next(c["validation"] for c in curve if c["alpha"] == alpha) for name, alpha in compared.items()}
    if baseline_dir is not None:
        models[BASELINE] = MultiTaskModel.from_pretrained(baseline_dir)
        validation[BASELINE] = validation_scores(models[BASELINE], val_sets)
    sets = {task: load_task(task, "test", source) for task in val_sets}
    per_item = {}  # set -> model -> what the bootstrap resamples
    extra = {}
    for set_name, data in {**sets, **out_of_domain}.items():
        gold = np.asarray(data.labels)
        per_item[set_name] = {"gold": gold, "models": {}}
        for name, model in models.items():
            proba = model.predict_proba(data.texts)
            if set_name in out_of_domain:
                per_item[set_name]["models"][name] = correct(proba["sentiment"], data) if data.binary \
                    else proba["sentiment"].argmax(1)
                extra.setdefault(set_name, {})[name] = score(proba["sentiment"], data)
            else:
                per_item[set_name]["models"][name] = proba[set_name].argmax(1)
                if set_name == "topic":  # news texts, read by the sentiment head
                    extra.setdefault("news_called_neutral", {})[name] = float(
                        (proba["sentiment"].argmax(1) == NEUTRAL).mean())
    summary = {}
    for set_name, items in per_item.items():
        gold = items["gold"]

        def metric(pred, idx, set_name=set_name, gold=gold):
            if set_name in out_of_domain and out_of_domain[set_name].binary:
                return float(pred[idx].mean())
            task = set_name if set_name in TASKS else "sentiment"
            return task_metric(task, gold[idx], pred[idx])
        fns = {name: (lambda idx, p=pred: metric(p, idx)) for name, pred in items["models"].items()}
        full = {name: fn(np.arange(len(gold))) for name, fn in fns.items()}
        draws = bootstrap(fns, len(gold), reps=reps)
        names = list(fns)
        summary[set_name] = {
            "n": len(gold),
            "models": {n: {"value": full[n], "low": float(np.percentile(draws[n], 2.5)),
                           "high": float(np.percentile(draws[n], 97.5)), **extra.get(set_name, {}).get(n, {})}
                       for n in names},
            "paired": [{"a": a, "b": b, "mean": full[a] - full[b],
                        "low": float(np.percentile(draws[a] - draws[b], 2.5)),
                        "high": float(np.percentile(draws[a] - draws[b], 97.5))}
                       for i, a in enumerate(names) for b in names[i + 1:]]}
    return {"model": str(model_dir), "alphas": curve, "chosen_alpha": chosen, "chosen_on": "validation_mean",
            "compared": compared,
            "baseline": {"model": str(baseline_dir), "name": BASELINE} if baseline_dir else None,
            "validation": {name: {"tasks": v, "mean": float(np.mean(list(v.values())))} for name, v in validation.items()},
            "training": {name: _training_summary(path) for name, path in
                         ((TUNED, model_dir), (BASELINE, baseline_dir)) if path is not None},
            "sets": summary, "news_called_neutral": extra.get("news_called_neutral", {}),
            "bootstrap_reps": reps, "sentiment_labels": list(SENTIMENT_LABELS),
            "seconds": time.perf_counter() - start_time}


def _training_summary(model_dir: Path) -> dict | None:
    """What ``sentence-mtl train --save-to`` wrote beside the model (time, examples, checkpoint averaging)."""
    import json

    path = Path(model_dir) / "training_summary.json"
    return json.loads(path.read_text()) if path.is_file() else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="models/multitask", type=Path)
    parser.add_argument("--output", default="results/robustness.json", type=Path)
    parser.add_argument("--baseline", default=None, type=Path,
                        help="another fine-tuned model folder scored beside the others (the previous recipe)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--reps", type=int, default=1000)
    args = parser.parse_args(argv)
    result = run(args.model, DataSource.resolve(args.data_dir), reps=args.reps, baseline_dir=args.baseline)
    write_json(args.output, result)  # its figure: `make figures` (reporting.figures)
    print(f"chosen alpha {result['chosen_alpha']} (validation); {result['seconds']:.0f} s -> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
