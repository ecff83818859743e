"""Linear probes: how much of a task a frozen embedding already carries, by training-set size.

The same few-shot samples (``few_shot_indices``) feed every featuriser, so the embedding
probe and the TF-IDF baseline are compared on identical examples.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from tqdm.auto import tqdm

from ..data import TaskData, few_shot_indices
from ..evaluation import benchmark_metric
from ..results import Recorder, measure

# fit on the chosen training indices and seed -> (test predictions, trainable parameter count)
FitPredict = Callable[[np.ndarray, int], tuple[np.ndarray, int]]


def embedding_probe(train_emb: np.ndarray, train_labels: np.ndarray, test_emb: np.ndarray,
                    C: float = 1.0) -> FitPredict:
    def fit_predict(idx: np.ndarray, seed: int):
        clf = LogisticRegression(C=C, max_iter=3000, random_state=seed)
        clf.fit(train_emb[idx], train_labels[idx])
        return clf.predict(test_emb), clf.coef_.size + clf.intercept_.size
    return fit_predict


def tfidf_probe(train_texts: list[str], train_labels: np.ndarray, test_texts: list[str],
                C: float = 10.0) -> FitPredict:
    """TF-IDF (uni+bigrams, sublinear tf) + logistic regression, vocabulary fit on the sample only."""
    def fit_predict(idx: np.ndarray, seed: int):
        model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
                              LogisticRegression(C=C, max_iter=3000, random_state=seed))
        model.fit([train_texts[i] for i in idx], train_labels[idx])
        clf = model[-1]
        return model.predict(test_texts), clf.coef_.size + clf.intercept_.size
    return fit_predict


def learning_curve(recorder: Recorder, train: TaskData, test: TaskData, fit_predict: FitPredict,
                   strategy: str, sizes, seeds) -> list[dict]:
    """One record per (examples per class, seed) on the given test set, with cost measured."""
    rows = []
    grid = [(k, seed) for k in sizes for seed in seeds]
    for k, seed in tqdm(grid, desc=f"{strategy}/{train.task}", leave=False):
        idx = np.arange(len(train)) if k is None else few_shot_indices(train, k, seed)
        with measure() as cost:
            predictions, n_params = fit_predict(idx, seed)
        metric, value = benchmark_metric(train.task, test.labels, predictions)
        rows.append(recorder.add(
            task=train.task, dataset=train.dataset, split=test.split, strategy=strategy,
            seed=seed, n_per_class=k, metric=metric, value=value, n_train=int(len(idx)),
            n_test=len(test), train_seconds=cost.seconds, trainable_params=int(n_params),
            peak_memory_mb=cost.peak_memory_mb))
    return rows
