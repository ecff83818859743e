"""Label prior and self-training (notebook 03) on synthetic clusters whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from sentence_mtl.experiments import frozen_runs
from sentence_mtl import strategies
from sentence_mtl.config import get_profile
from sentence_mtl.data import TaskData
from sentence_mtl.results import Recorder
from sentence_mtl.semi_supervised import label_prior_prototypes, most_confident, self_train, unit
from sentence_mtl.strategies import SelfTrainingSettings


def clusters(n_per_class=200, n_classes=3, dim=16, spread=0.6, seed=0):
    """Gaussian clusters around orthogonal directions: the geometry follows the labels."""
    rng = np.random.default_rng(seed)
    centres = np.eye(dim)[:n_classes] * 3
    labels = np.repeat(np.arange(n_classes), n_per_class)
    return centres[labels] + spread * rng.standard_normal((len(labels), dim)), labels, centres


def test_label_prior_prototypes_are_unit_and_blend_examples_with_descriptions():
    x, y, centres = clusters()
    labelled = np.concatenate([np.flatnonzero(y == c)[:2] for c in range(3)])
    prototypes = label_prior_prototypes(x[labelled], y[labelled], centres)
    np.testing.assert_allclose(np.linalg.norm(prototypes, axis=1), 1.0, rtol=1e-6)
    # the description alone would give back the description's direction; with the examples it moves
    # toward them but stays the nearest prototype of its own class
    assert (np.argmax(prototypes @ unit(centres).T, axis=1) == np.arange(3)).all()
    # when the description equals the examples' mean direction, the prototype is that direction
    mean_direction = unit(np.stack([unit(x[labelled])[y[labelled] == c].mean(0) for c in range(3)]))
    np.testing.assert_allclose(label_prior_prototypes(x[labelled], y[labelled], mean_direction), mean_direction,
                               atol=1e-6)


def test_most_confident_is_balanced_ranked_by_margin_and_skips_excluded_rows():
    scores = np.array([[0.9, 0.1], [0.6, 0.4], [0.95, 0.05], [0.2, 0.8], [0.45, 0.55], [0.99, 0.01]])
    rows, pseudo = most_confident(scores, per_class=2, exclude=np.array([5]))
    assert rows.tolist() == [2, 0, 3, 4]  # class 0 by margin, row 5 excluded; then class 1
    assert pseudo.tolist() == [0, 0, 1, 1]
    rows, _ = most_confident(scores, per_class=10, exclude=np.array([], dtype=int))
    assert sorted(rows.tolist()) == list(range(6))  # never more rows than there are


def test_self_training_recovers_the_clusters_from_two_labels_per_class():
    x, y, centres = clusters()
    labelled = np.concatenate([np.flatnonzero(y == c)[:2] for c in range(3)])
    prototypes = label_prior_prototypes(x[labelled], y[labelled], np.zeros_like(centres) + 1e-3 * centres)
    classifier, rows, pseudo = self_train(x, labelled, y[labelled], prototypes,
                                          SelfTrainingSettings(pseudo_per_class=100, rounds=2))
    assert not set(rows) & set(labelled)  # pseudo-labels only on unlabeled rows
    assert len(rows) == 300 and (pseudo == y[rows]).mean() > 0.95
    x_test, y_test, _ = clusters(seed=1)
    assert (classifier.predict(unit(x_test)) == y_test).mean() > 0.95


def test_self_training_cannot_fix_a_geometry_that_ignores_the_labels():
    """Labels independent of the embedding (like sentiment in a topic-shaped space): no better than chance."""
    x, _, centres = clusters()
    y = np.random.default_rng(2).integers(0, 3, len(x))
    labelled = np.concatenate([np.flatnonzero(y == c)[:8] for c in range(3)])
    prototypes = label_prior_prototypes(x[labelled], y[labelled], centres)
    classifier, rows, pseudo = self_train(x, labelled, y[labelled], prototypes, SelfTrainingSettings(pseudo_per_class=50))
    assert (pseudo == y[rows]).mean() < 0.5


def test_runners_record_the_frozen_semi_supervised_strategies():
    x, y, centres = clusters(n_per_class=40, n_classes=4, dim=8)
    names = ("World", "Sports", "Business", "Sci/Tech")
    train = TaskData("topic", "fake", "train", [f"text {i}" for i in range(len(y))], y, names)

    class DescriptionEncoder:  # stands in for SentenceEncoder.encode on the label descriptions
        def encode(self, texts):
            assert len(texts) == 4
            return centres

    recorder = Recorder("t", get_profile("smoke"), {})
    half = train.subset(np.arange(0, len(y), 2))  # the shared test subset; the full set is train itself
    scored = {"subset": (half, x[::2]), "full": (train, x)}
    prior = frozen_runs.run_label_prior(recorder, DescriptionEncoder(), train, x, scored, 2, 0)
    assert prior["strategy"] == "label_prior" and prior["trainable_params"] == 0 and prior["value"] > 0.9
    assert prior["n_test"] == len(half) and prior["n_full_test"] == len(y) and prior["full_test_value"] > 0.9
    row = frozen_runs.run_self_training(recorder, strategies.get("self_training"), DescriptionEncoder(), train, x,
                                        scored, 2, 0)
    assert row["n_unlabeled"] == len(y) - 8 and row["n_pseudo_labelled"] == len(y) - 8
    assert row["pseudo_label_accuracy"] > 0.9 and row["trainable_params"] == 4 * 8 + 4
    assert row["strategy_config"]["self_training"]["pseudo_per_class"] == 2048


def test_registry_declares_the_semi_supervised_strategies():
    assert strategies.get("label_prior").kind == "no_training"
    assert strategies.get("self_training").self_training == SelfTrainingSettings()
    with pytest.raises(ValueError, match="Unknown strategy"):
        strategies.get("self_train")


def test_unlabeled_pool_is_a_fixed_random_draw_that_never_holds_a_labelled_row():
    from sentence_mtl.semi_supervised import unlabeled_pool

    labelled = np.array([0, 5, 9])
    pool = unlabeled_pool(100, labelled, 20, seed=3)
    assert len(pool) == 20 and not set(pool) & set(labelled) and np.array_equal(pool, unlabeled_pool(100, labelled, 20, 3))
    assert len(unlabeled_pool(100, labelled, None, 0)) == 97 and len(unlabeled_pool(10, labelled, 50, 0)) == 7


def test_a_pool_setting_at_its_default_leaves_the_stored_keys_of_self_training_alone():
    from sentence_mtl.experiments.store import fingerprint

    assert "unlabeled_pool" not in fingerprint(SelfTrainingSettings())
    assert fingerprint(SelfTrainingSettings(unlabeled_pool=5))["unlabeled_pool"] == 5
