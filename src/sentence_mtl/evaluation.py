"""Metrics, each the one its benchmark reports (docs/design.md): accuracy for AG News, macro recall
for TweetEval sentiment, Spearman of cosine similarity for STS-B."""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from .data import TASKS
from .results import encode_labels


def classification_metrics(y_true, y_pred, n_classes: int) -> dict:
    """Accuracy, macro precision/recall/F1 and the confusion matrix (rows: true class)."""
    labels = list(range(n_classes))
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average="macro", zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_precision": float(precision),
        "macro_recall": float(recall),
        "macro_f1": float(f1),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def benchmark_metric(task: str, y_true, y_pred) -> tuple[str, float]:
    """(metric name, value) of the metric the task's benchmark reports."""
    spec = TASKS[task]
    return spec.metric, classification_metrics(y_true, y_pred, len(spec.label_names))[spec.metric]


def cosine_spearman(emb1: np.ndarray, emb2: np.ndarray, gold: np.ndarray) -> float:
    """STS-B's metric: Spearman between the pairs' cosine similarities and the gold scores."""
    emb1 = emb1 / np.linalg.norm(emb1, axis=1, keepdims=True).clip(min=1e-12)
    emb2 = emb2 / np.linalg.norm(emb2, axis=1, keepdims=True).clip(min=1e-12)
    return float(spearmanr((emb1 * emb2).sum(1), gold).statistic)


def sts_spearman(encoder, pairs, batch_size: int = 32) -> float:
    """Encode both sides of every pair once and score the cosines against the gold."""
    n = len(pairs)
    embeddings = encoder.encode(pairs.sentences1 + pairs.sentences2, batch_size=batch_size)
    return cosine_spearman(embeddings[:n], embeddings[n:], pairs.scores)


def tfidf_sts_spearman(pairs, fit_texts: list[str]) -> float:
    """The lexical baseline: cosine of TF-IDF vectors, vocabulary and idf from ``fit_texts``."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(sublinear_tf=True).fit(fit_texts)
    a = vectorizer.transform(pairs.sentences1)
    b = vectorizer.transform(pairs.sentences2)
    cosines = np.asarray(a.multiply(b).sum(1)).ravel()  # rows are already L2-normalised
    return float(spearmanr(cosines, pairs.scores).statistic)


def task_metrics(task: str, data, probabilities: np.ndarray) -> dict:
    """A task's classification metrics from the model's class probabilities on ``data``, with the
    benchmark's own metric named (``benchmark_metric``) and its value (``benchmark_value``)."""
    metrics = classification_metrics(data.labels, probabilities.argmax(1), len(data.label_names))
    metrics["benchmark_metric"] = TASKS[task].metric if task in TASKS else "accuracy"
    metrics["benchmark_value"] = metrics[metrics["benchmark_metric"]]
    metrics["n"] = len(data)
    return metrics


def headline_fields(test, test_predictions, val, val_predictions) -> dict:
    """What a headline run records for one task: the benchmark metric on the full test set, every
    predicted test label (``results.encode_labels``: comparisons are then paired on items), and
    the metric on the validation subset that choices are made on."""
    metric, value = benchmark_metric(test.task, test.labels, test_predictions)
    return {"metric": metric, "value": value, "n_test": len(test), "predictions": encode_labels(test_predictions),
            "val_value": benchmark_metric(val.task, val.labels, val_predictions)[1], "n_val": len(val),
            "headline": True}
