"""The saved multi-task model at work on real test items: a sample of its predictions, right and
wrong, with probabilities, and the confusions it makes most, each with examples.

``tools/show_predictions.py`` (the last step of ``make train``) writes them to
``results/train_predictions.json``; the README and the report render that file.
"""

from __future__ import annotations

import numpy as np

from ..data import TaskData


def _item(data: TaskData, i: int, predicted: int, probability: float) -> dict:
    return {"text": data.texts[i], "gold": data.label_names[data.labels[i]],
            "predicted": data.label_names[predicted], "probability": round(float(probability), 4),
            "correct": bool(predicted == data.labels[i])}


def prediction_report(probabilities: np.ndarray, data: TaskData, per_outcome: int = 4, confusions: int = 3,
                      examples_per_confusion: int = 2, seed: int = 0) -> dict:
    """From the model's class probabilities on ``data`` (items x classes): ``per_outcome`` right and
    as many wrong predictions drawn at random, and the ``confusions`` most frequent (gold, predicted)
    pairs with their share of the gold class and the model's most confident mistakes among them."""
    predicted = probabilities.argmax(1)
    confidence = probabilities[np.arange(len(predicted)), predicted]
    rng = np.random.default_rng(seed)
    right, wrong = np.flatnonzero(predicted == data.labels), np.flatnonzero(predicted != data.labels)
    picks = [*rng.choice(right, min(per_outcome, len(right)), replace=False),
             *rng.choice(wrong, min(per_outcome, len(wrong)), replace=False)]
    n_classes = len(data.label_names)
    counts = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(counts, (data.labels, predicted), 1)
    pairs = sorted(((counts[g, p], g, p) for g in range(n_classes) for p in range(n_classes) if g != p), reverse=True)
    top = []
    for count, gold, guess in pairs[:confusions]:
        among = np.flatnonzero((data.labels == gold) & (predicted == guess))
        surest = among[np.argsort(-confidence[among])[:examples_per_confusion]]
        top.append({"gold": data.label_names[gold], "predicted": data.label_names[guess], "count": int(count),
                    "share_of_gold": float(count / max(1, counts[gold].sum())),
                    "examples": [_item(data, i, predicted[i], confidence[i]) for i in surest]})
    return {"task": data.task, "dataset": data.dataset, "n_test": len(data),
            "accuracy": float((predicted == data.labels).mean()),
            "examples": [_item(data, int(i), predicted[i], confidence[i]) for i in picks], "confusions": top}
