"""The labelled-only few-shot recipe (``anchored_contrastive``): the loss, the batches, the run.

The loss is checked against a direct transcription of Khosla et al.'s formula; the run on the
tiny random BERT checks mechanics (the loss falls, the encoder changes, the record says what
was read), never quality."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from sentence_mtl import strategies
from sentence_mtl.anchored_contrastive import balanced_batches, supervised_contrastive_loss, train_anchored
from sentence_mtl.config import get_profile
from sentence_mtl.data import TaskData
from sentence_mtl.encoder import SentenceEncoder
from sentence_mtl.experiments import finetune_runs, grids
from sentence_mtl.results import Recorder
from sentence_mtl.semi_supervised import label_prior_prototypes, nearest_prototype

TEXTS = ["stocks fell sharply today", "the team won the final", "a new phone chip was announced",
         "talks between the leaders stalled", "shares of the bank rose", "striker scores twice in derby",
         "scientists map a distant galaxy", "election results are disputed"]
TOPIC = np.array([2, 1, 3, 0, 2, 1, 3, 0])


def supcon_by_the_formula(z: torch.Tensor, labels: list[int], temperature: float) -> float:
    """L_out of Khosla et al. (2020), eq. 2, one anchor at a time."""
    z = torch.nn.functional.normalize(z, dim=-1)
    total, anchors = 0.0, 0
    for i in range(len(z)):
        others = [a for a in range(len(z)) if a != i]
        positives = [p for p in others if labels[p] == labels[i]]
        if not positives:
            continue
        denominator = sum(torch.exp(z[i] @ z[a] / temperature) for a in others)
        total += -sum(torch.log(torch.exp(z[i] @ z[p] / temperature) / denominator) for p in positives) / len(positives)
        anchors += 1
    return float(total / anchors)


def test_loss_matches_the_published_formula():
    torch.manual_seed(0)
    z = torch.randn(7, 5)
    labels = [0, 0, 1, 1, 1, 2, 3]  # classes 2 and 3 have no positive: they only serve as negatives
    got = supervised_contrastive_loss(z, torch.tensor(labels), 0.1)
    assert float(got) == pytest.approx(supcon_by_the_formula(z, labels, 0.1), rel=1e-5)


def test_loss_is_lower_when_classes_cluster():
    labels = torch.tensor([0, 0, 1, 1])
    clustered = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    mixed = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.1, 0.9]])
    assert supervised_contrastive_loss(clustered, labels, 0.1) < supervised_contrastive_loss(mixed, labels, 0.1)


def test_batches_are_class_balanced_and_cycle_every_example():
    labels = np.array([0] * 5 + [1] * 3 + [2] * 12)
    batches = balanced_batches(labels, per_class=4, steps=6, rng=np.random.default_rng(0))
    for rows in batches:
        assert np.bincount(labels[rows], minlength=3).tolist() == [4, 3, 4]  # a class with fewer: all of it
    seen = np.concatenate(batches)
    counts = np.bincount(seen[labels[seen] == 2], minlength=20)[8:]
    assert counts.min() == counts.max() == 2  # 24 draws of class 2 = every example twice


def test_training_pulls_each_class_towards_its_description(tiny_model_dir):
    encoder = SentenceEncoder.from_pretrained(tiny_model_dir, max_seq_length=32)
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    descriptions = ["world news", "sports news", "business news", "science news"]
    settings = strategies.ContrastiveSettings(steps=30, per_class=2, lr=1e-3)
    losses = train_anchored(encoder, TEXTS, TOPIC, descriptions, settings, seed=0)
    assert len(losses) == 30 and np.mean(losses[-5:]) < np.mean(losses[:5])
    assert any(not torch.equal(before[k], v) for k, v in encoder.state_dict().items())
    prototypes = label_prior_prototypes(encoder.encode(TEXTS), TOPIC, encoder.encode(descriptions))
    assert prototypes.shape == (4, encoder.dim)
    assert (nearest_prototype(encoder.encode(TEXTS), prototypes) == TOPIC).mean() >= 0.75  # it fits what it was trained on


def test_the_study_runs_it_per_task_and_records_what_it_read(tiny_model_dir, tmp_path):
    grid = replace(grids.GRIDS["smoke"], model_name=tiny_model_dir, max_seq_length=32)
    strategy = replace(strategies.get("anchored_contrastive"),
                       contrastive=strategies.ContrastiveSettings(steps=3, per_class=2))
    train = TaskData("topic", "fake", "train", list(TEXTS), TOPIC, ("World", "Sports", "Business", "Sci/Tech"))
    record = finetune_runs.run_anchored_contrastive(Recorder("t", get_profile("smoke"), {}), strategy, train,
                                                    replace(train, split="test"), 2, 0, grid)
    assert record["strategy"] == "anchored_contrastive" and record["task"] == "topic" and record["steps"] == 3
    assert 0 <= record["value"] <= 1 and record["n_test"] == len(TEXTS) and record["activation_mb"] > 0
    assert not strategies.get("anchored_contrastive").reads_unlabeled and strategies.get("self_training").reads_unlabeled


def test_every_peer_run_pairs_setfit_with_our_recipe_on_the_same_seeds():
    grid = grids.GRIDS["standard"]
    runs = grid.peer_runs()
    assert {(t, k) for t, k, _ in runs} == {(t, k) for t in grid.tasks for k in grid.setfit_sizes}
    assert {s for *_, s in runs} == set(grid.peer_seeds)
    assert set(dict(grid.setfit_steps)) == set(grid.setfit_sizes)


def test_with_self_training_it_reads_a_pool_of_unlabeled_texts_and_says_so(tiny_model_dir):
    grid = replace(grids.GRIDS["smoke"], model_name=tiny_model_dir, max_seq_length=32)
    base = strategies.get("anchored_self_training")
    assert base.reads_unlabeled and base.self_training.unlabeled_pool == 20_000
    strategy = replace(base, contrastive=strategies.ContrastiveSettings(steps=2, per_class=2),
                       self_training=replace(base.self_training, unlabeled_pool=3, pseudo_per_class=1))
    train = TaskData("topic", "fake", "train", list(TEXTS), TOPIC, ("World", "Sports", "Business", "Sci/Tech"))
    record = finetune_runs.run_anchored_contrastive(Recorder("t", get_profile("smoke"), {}), strategy, train,
                                                    replace(train, split="test"), 1, 0, grid)
    assert record["strategy"] == "anchored_self_training" and record["n_unlabeled"] == 3
    assert 0 < record["n_pseudo_labelled"] <= 4 and 0 <= record["pseudo_label_accuracy"] <= 1


def test_the_unlabeled_variant_runs_at_the_low_data_end_of_the_peer_grid():
    grid = grids.GRIDS["standard"]
    assert set(grid.unlabeled_peer_runs()) <= set(grid.peer_runs())
    assert {k for _, k, _ in grid.unlabeled_peer_runs()} == {8} and {t for t, *_ in grid.unlabeled_peer_runs()} == set(grid.tasks)
