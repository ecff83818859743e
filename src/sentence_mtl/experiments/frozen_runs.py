"""Runs of the freezing study whose encoder never changes: no training at all (zero-shot, nearest
centroid, label prior), self-training on the frozen encoder, and heads on cached embeddings.

Same samples for every strategy: ``data.few_shot_indices(train, k, seed)``. Every strategy of the
study is compared on the same test items: ``value`` is the metric on the stratified test subset
the encoder-changing strategies see; these cheap strategies also score the full official test
set (``full_test_value``, ``n_full_test``), from cached embeddings.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from ..data import TASKS, TaskData, few_shot_indices
from ..evaluation import benchmark_metric, headline_fields
from ..results import Recorder, measure
from ..semi_supervised import class_centroids, label_prior_prototypes, nearest_prototype, self_train, unit
from ..strategies import Strategy
from ..strategy_training import EmbeddingInputs, new_model, predict, trainable_parameters, train_heads

# {"subset": (TaskData, embeddings), "full": (TaskData, embeddings)}; for a headline run
# {"test": (the full test set, embeddings), "val": (the validation subset, embeddings)}
Scored = dict


def scores(predict, scored: Scored) -> dict:
    """``metric``, ``value`` and ``n_test`` on the subset; ``full_test_value`` and ``n_full_test`` on the full set.
    A headline run: ``headline_fields`` of the full test set and the validation subset."""
    if "test" in scored:
        (test, test_vectors), (val, val_vectors) = scored["test"], scored["val"]
        return headline_fields(test, predict(test_vectors), val, predict(val_vectors))
    (subset, subset_vectors), (full, full_vectors) = scored["subset"], scored["full"]
    metric, value = benchmark_metric(subset.task, subset.labels, predict(subset_vectors))
    return {"metric": metric, "value": value, "n_test": len(subset),
            "full_test_value": benchmark_metric(full.task, full.labels, predict(full_vectors))[1],
            "n_full_test": len(full)}


def sample(train: TaskData, k: int | None, seed: int) -> np.ndarray:
    return np.arange(len(train)) if k is None else few_shot_indices(train, k, seed)


def description_vectors(encoder, task: str) -> np.ndarray:
    """The embedding of each label's description (``data.TASKS[task].description``), in class order."""
    return encoder.encode(TASKS[task].label_descriptions)


def run_majority_class(recorder: Recorder, train: TaskData, scored: Scored) -> dict:
    """The floor every classification result is read against: the training set's most common
    class for every text (accuracy = that class's share of the test set; macro recall = 1 / classes)."""
    majority = int(np.bincount(train.labels).argmax())
    result = scores(lambda vectors: np.full(len(vectors), majority), scored)
    return recorder.add(task=train.task, dataset=train.dataset, strategy="majority_class", seed=0, n_per_class=None,
                        **result, n_train=len(train), train_seconds=0.0, trainable_params=0, peak_memory_mb=0.0,
                        majority_label=train.label_names[majority])


def run_zero_shot(recorder: Recorder, encoder, task: str, scored: Scored) -> dict:
    """Whole network frozen, no examples: the label whose description is most similar."""
    spec = TASKS[task]
    labels = unit(description_vectors(encoder, task))
    with measure() as cost:
        result = scores(lambda vectors: nearest_prototype(vectors, labels), scored)
    return recorder.add(task=task, dataset=spec.dataset, strategy="zero_shot", seed=0, n_per_class=0,
                        **result, train_seconds=cost.seconds,
                        trainable_params=0, peak_memory_mb=cost.peak_memory_mb,
                        label_descriptions=spec.label_descriptions)


def run_nearest_centroid(recorder: Recorder, train: TaskData, train_embeddings: np.ndarray, scored: Scored,
                         k: int | None, seed: int) -> dict:
    """Whole network frozen: each class is the mean of its examples' unit vectors."""
    idx = sample(train, k, seed)
    with measure() as cost:
        centroids = class_centroids(train_embeddings[idx], train.labels[idx], len(train.label_names))
        result = scores(lambda vectors: nearest_prototype(vectors, centroids), scored)
    return recorder.add(task=train.task, dataset=train.dataset, strategy="nearest_centroid", seed=seed,
                        n_per_class=k, **result, n_train=len(idx),
                        train_seconds=cost.seconds, trainable_params=0, peak_memory_mb=cost.peak_memory_mb)


def run_label_prior(recorder: Recorder, encoder, train: TaskData, train_embeddings: np.ndarray, scored: Scored,
                    k: int, seed: int) -> dict:
    """Whole network frozen: nearest prototype, each the class's centroid plus its label description."""
    idx = sample(train, k, seed)
    descriptions = description_vectors(encoder, train.task)
    with measure() as cost:
        prototypes = label_prior_prototypes(train_embeddings[idx], train.labels[idx], descriptions)
        result = scores(lambda vectors: nearest_prototype(vectors, prototypes), scored)
    return recorder.add(task=train.task, dataset=train.dataset, strategy="label_prior", seed=seed,
                        n_per_class=k, **result, n_train=len(idx),
                        train_seconds=cost.seconds, trainable_params=0, peak_memory_mb=cost.peak_memory_mb)


def run_self_training(recorder: Recorder, strategy: Strategy, encoder, train: TaskData,
                      train_embeddings: np.ndarray, scored: Scored, k: int, seed: int) -> dict:
    """Backbone frozen; the rest of the training set, labels hidden, is the unlabeled pool.

    ``pseudo_label_accuracy`` (the last round's pseudo-labels against the hidden gold labels) is
    a diagnostic the method never sees."""
    idx = sample(train, k, seed)
    descriptions = description_vectors(encoder, train.task)
    with measure() as cost:
        prototypes = label_prior_prototypes(train_embeddings[idx], train.labels[idx], descriptions)
        classifier, rows, pseudo = self_train(train_embeddings, idx, train.labels[idx], prototypes,
                                              strategy.self_training)
        result = scores(lambda vectors: classifier.predict(unit(vectors)), scored)
    return recorder.add(task=train.task, dataset=train.dataset, strategy=strategy.name, seed=seed,
                        n_per_class=k, **result, n_train=len(idx),
                        n_unlabeled=len(train) - len(idx), n_pseudo_labelled=len(rows),
                        pseudo_label_accuracy=float((pseudo == train.labels[rows]).mean()),
                        train_seconds=cost.seconds,
                        trainable_params=int(classifier.coef_.size + classifier.intercept_.size),
                        peak_memory_mb=cost.peak_memory_mb, strategy_config=asdict(strategy))


def run_frozen_backbone(recorder: Recorder, strategy: Strategy, train: dict[str, TaskData], train_embeddings: dict,
                        scored: dict[str, Scored], k: int | None, seed: int, grid) -> list[dict]:
    """Both heads trained on cached sentence embeddings: the encoder never runs during training.

    The heads get several epochs (they are cheap): ``PROBE_STEPS`` or 3 epochs, whichever is more."""
    model = new_model(seed, grid.max_seq_length, grid.model_name)
    idx = {t: sample(train[t], k, seed) for t in train}
    embeddings = {t: train_embeddings[t][idx[t]] for t in train}
    labels = {t: train[t].labels[idx[t]] for t in train}
    with measure() as cost:
        log, steps = train_heads(model, embeddings, labels, strategy, seed)
    rows = []
    for task, sets in scored.items():
        result = scores(lambda vectors: predict(model, EmbeddingInputs(vectors), task), sets)
        rows.append(recorder.add(task=task, dataset=TASKS[task].dataset, strategy=strategy.name, seed=seed,
                                 n_per_class=k, **result, train_seconds=cost.seconds,
                                 trainable_params=trainable_parameters(model, strategy.phases),
                                 peak_memory_mb=cost.peak_memory_mb, steps=steps,
                                 final_loss=float(np.mean(log.losses[-10:])), **log.memory))
    return rows

