"""Runs of the freezing study whose encoder never changes: no training at all (zero-shot, nearest
centroid, label prior), self-training on the frozen encoder, and heads on cached embeddings.

Same samples for every strategy: ``data.few_shot_indices(train, k, seed)``. These strategies
score the full official test sets from cached embeddings.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from ..data import TASKS, TaskData, few_shot_indices
from ..evaluation import benchmark_metric
from ..results import Recorder, measure
from ..semi_supervised import class_centroids, label_prior_prototypes, self_train, unit
from ..strategies import Strategy
from ..strategy_training import EmbeddingInputs, new_model, score, trainable_parameters, train_heads


def sample(train: TaskData, k: int | None, seed: int) -> np.ndarray:
    return np.arange(len(train)) if k is None else few_shot_indices(train, k, seed)


def description_vectors(encoder, task: str) -> np.ndarray:
    """The embedding of each label's description (``data.TASKS[task].description``), in class order."""
    spec = TASKS[task]
    return encoder.encode([spec.description[name] for name in spec.label_names])


def run_zero_shot(recorder: Recorder, encoder, test: TaskData, test_embeddings: np.ndarray) -> dict:
    """Whole network frozen, no examples: the label whose description is most similar."""
    spec = TASKS[test.task]
    labels = description_vectors(encoder, test.task)
    with measure() as cost:
        predictions = (unit(test_embeddings) @ unit(labels).T).argmax(1)
    metric, value = benchmark_metric(test.task, test.labels, predictions)
    return recorder.add(task=test.task, dataset=spec.dataset, strategy="zero_shot", seed=0, n_per_class=0,
                        metric=metric, value=value, n_test=len(test), train_seconds=cost.seconds,
                        trainable_params=0, peak_memory_mb=cost.peak_memory_mb,
                        label_descriptions=[spec.description[n] for n in spec.label_names])


def run_nearest_centroid(recorder: Recorder, train: TaskData, train_embeddings: np.ndarray, test: TaskData,
                         test_embeddings: np.ndarray, k: int | None, seed: int) -> dict:
    """Whole network frozen: each class is the mean of its examples' unit vectors."""
    idx = sample(train, k, seed)
    with measure() as cost:
        centroids = class_centroids(train_embeddings[idx], train.labels[idx], len(train.label_names))
        predictions = (unit(test_embeddings) @ centroids.T).argmax(1)
    metric, value = benchmark_metric(test.task, test.labels, predictions)
    return recorder.add(task=test.task, dataset=train.dataset, strategy="nearest_centroid", seed=seed,
                        n_per_class=k, metric=metric, value=value, n_test=len(test), n_train=len(idx),
                        train_seconds=cost.seconds, trainable_params=0, peak_memory_mb=cost.peak_memory_mb)


def run_label_prior(recorder: Recorder, encoder, train: TaskData, train_embeddings: np.ndarray, test: TaskData,
                    test_embeddings: np.ndarray, k: int, seed: int) -> dict:
    """Whole network frozen: nearest prototype, each the class's centroid plus its label description."""
    idx = sample(train, k, seed)
    descriptions = description_vectors(encoder, train.task)
    with measure() as cost:
        prototypes = label_prior_prototypes(train_embeddings[idx], train.labels[idx], descriptions)
        predictions = (unit(test_embeddings) @ prototypes.T).argmax(1)
    metric, value = benchmark_metric(test.task, test.labels, predictions)
    return recorder.add(task=test.task, dataset=train.dataset, strategy="label_prior", seed=seed,
                        n_per_class=k, metric=metric, value=value, n_test=len(test), n_train=len(idx),
                        train_seconds=cost.seconds, trainable_params=0, peak_memory_mb=cost.peak_memory_mb)


def run_self_training(recorder: Recorder, strategy: Strategy, encoder, train: TaskData,
                      train_embeddings: np.ndarray, test: TaskData, test_embeddings: np.ndarray, k: int,
                      seed: int, subset: tuple[TaskData, np.ndarray] | None = None) -> dict:
    """Backbone frozen; the rest of the training set, labels hidden, is the unlabeled pool.

    ``pseudo_label_accuracy`` (the last round's pseudo-labels against the hidden gold labels) is
    a diagnostic the method never sees. ``subset`` (test subset, its embeddings): also record
    ``subset_value``, the metric on the items the encoder-changing strategies and SetFit see."""
    idx = sample(train, k, seed)
    descriptions = description_vectors(encoder, train.task)
    with measure() as cost:
        prototypes = label_prior_prototypes(train_embeddings[idx], train.labels[idx], descriptions)
        classifier, rows, pseudo = self_train(train_embeddings, idx, train.labels[idx], prototypes,
                                              strategy.self_training)
        predictions = classifier.predict(unit(test_embeddings))
    metric, value = benchmark_metric(test.task, test.labels, predictions)
    extra = {}
    if subset is not None:
        data, embeddings = subset
        extra = {"subset_value": benchmark_metric(data.task, data.labels, classifier.predict(unit(embeddings)))[1],
                 "n_subset": len(data)}
    return recorder.add(task=test.task, dataset=train.dataset, strategy=strategy.name, seed=seed,
                        n_per_class=k, metric=metric, value=value, n_test=len(test), n_train=len(idx), **extra,
                        n_unlabeled=len(train) - len(idx), n_pseudo_labelled=len(rows),
                        pseudo_label_accuracy=float((pseudo == train.labels[rows]).mean()),
                        train_seconds=cost.seconds,
                        trainable_params=int(classifier.coef_.size + classifier.intercept_.size),
                        peak_memory_mb=cost.peak_memory_mb, strategy_config=asdict(strategy))


def run_frozen_backbone(recorder: Recorder, strategy: Strategy, train: dict[str, TaskData], train_embeddings: dict,
                        test: dict[str, TaskData], test_embeddings: dict, k: int | None, seed: int,
                        grid) -> list[dict]:
    """Both heads trained on cached sentence embeddings: the encoder never runs during training.

    The heads get several epochs (they are cheap): ``PROBE_STEPS`` or 3 epochs, whichever is more."""
    model = new_model(seed, grid.max_seq_length, grid.model_name)
    idx = {t: sample(train[t], k, seed) for t in train}
    embeddings = {t: train_embeddings[t][idx[t]] for t in train}
    labels = {t: train[t].labels[idx[t]] for t in train}
    with measure() as cost:
        log, steps = train_heads(model, embeddings, labels, strategy, seed)
    return record_scores(recorder, strategy.name, model, {t: EmbeddingInputs(test_embeddings[t]) for t in test},
                          test, k, seed, cost, trainable_parameters(model, strategy.phases), steps=steps,
                          final_loss=float(np.mean(log.losses[-10:])), **log.memory)


def record_scores(recorder, strategy_name, model, test_inputs, test, k, seed, cost, trainable, **extra) -> list[dict]:
    rows = []
    for task, data in test.items():
        metric, value = score(model, test_inputs[task], data)
        rows.append(recorder.add(task=task, dataset=data.dataset, strategy=strategy_name, seed=seed, n_per_class=k,
                                 metric=metric, value=value, n_test=len(data), train_seconds=cost.seconds,
                                 trainable_params=trainable, peak_memory_mb=cost.peak_memory_mb, **extra))
    return rows

