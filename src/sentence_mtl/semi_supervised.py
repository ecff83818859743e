"""What costs no labels: label descriptions and unlabeled in-domain texts (notebook 03).

Two frozen-encoder strategies for the low-data regime, both working on cached embeddings:

- **label prior**: a class's prototype is the unit mean of its few labelled examples *plus*
  the embedding of a short description of the label, so eight examples are not all that the
  class knows. Nearest prototype by cosine.
- **self-training** (Scudder 1965; Yarowsky 1995): the label prior labels the unlabeled
  training texts (their gold labels hidden); a logistic regression is fitted on the labelled
  examples plus the most confident pseudo-labels of each class, and it relabels the pool for
  the next round.

Both only help where the pretrained geometry already follows the labels: notebook 03 measures
where that holds (topic) and where it does not (sentiment). Hand-written because each is a few
lines of numpy around scikit-learn, and seeing them is the point.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from .strategies import SelfTrainingSettings


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(min=1e-12)


def class_centroids(embeddings: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """One unit vector per class: the mean direction of its examples (nearest-centroid's prototypes)."""
    x = unit(embeddings)
    return unit(np.stack([x[labels == c].mean(0) for c in range(n_classes)]))


def label_prior_prototypes(embeddings: np.ndarray, labels: np.ndarray, descriptions: np.ndarray) -> np.ndarray:
    """One unit vector per class: its examples' mean direction plus its description's, equally weighted."""
    return unit(class_centroids(embeddings, labels, len(descriptions)) + unit(descriptions))


def nearest_prototype(embeddings: np.ndarray, prototypes: np.ndarray) -> np.ndarray:
    """The class of the most cosine-similar prototype (unit rows), per embedding."""
    return (unit(embeddings) @ prototypes.T).argmax(1)


def most_confident(scores: np.ndarray, per_class: int, exclude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows predicted as each class with the largest top-1 minus top-2 margin, up to ``per_class``
    each (balanced, so one easy class cannot crowd out the others), never a row in ``exclude``."""
    predicted = scores.argmax(1)
    top2 = np.sort(scores, axis=1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    margin[exclude] = -np.inf
    chosen = []
    for c in range(scores.shape[1]):
        rows = np.flatnonzero((predicted == c) & np.isfinite(margin))
        chosen.append(rows[np.argsort(-margin[rows], kind="stable")][:per_class])
    rows = np.concatenate(chosen)
    return rows, predicted[rows]


def unlabeled_pool(n_train: int, labelled: np.ndarray, size: int | None, seed: int) -> np.ndarray:
    """Rows of the training set to read without their labels: ``size`` drawn at random (not by
    class: the labels are hidden), never a labelled row; None: every other row."""
    rest = np.setdiff1d(np.arange(n_train), labelled)
    if size is None or size >= len(rest):
        return rest
    return np.sort(np.random.default_rng(seed).choice(rest, size=size, replace=False))


def self_train(pool: np.ndarray, labelled: np.ndarray, labels: np.ndarray, prototypes: np.ndarray,
               settings: SelfTrainingSettings) -> tuple[LogisticRegression, np.ndarray, np.ndarray]:
    """Self-training from the label prior on a pool of embeddings whose rows ``labelled`` carry ``labels``.

    Returns the last classifier and the last round's pseudo-labelled rows and their pseudo-labels."""
    x = unit(pool)
    scores = x @ prototypes.T
    for _ in range(settings.rounds):
        rows, pseudo = most_confident(scores, settings.pseudo_per_class, exclude=labelled)
        weights = np.concatenate([np.full(len(labelled), settings.labelled_weight), np.ones(len(rows))])
        classifier = LogisticRegression(C=settings.inverse_regularisation, max_iter=1000)
        classifier.fit(x[np.concatenate([labelled, rows])], np.concatenate([labels, pseudo]), sample_weight=weights)
        scores = classifier.predict_log_proba(x)
    return classifier, rows, pseudo
