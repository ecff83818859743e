"""Notebook 04's headline runs score the full test sets through the trained blocks only, from
cached states of the frozen ones (``multitask_runs.probabilities_above_frozen``). These tests check
that this gives what the whole forward pass gives, and that it refuses a model whose frozen
weights moved."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from sentence_mtl.data import TaskData
from sentence_mtl.experiments.multitask_runs import LOWER_LAYERS, probabilities_above_frozen
from sentence_mtl.strategy_training import new_model
from sentence_mtl.training import TrainConfig

TEXTS = ["Stocks rallied after the earnings call.", "What a day!", "The match ended in a draw.",
         "New phone, same old battery problems, honestly.", "Rain again.",
         "Scientists found water ice near the lunar south pole, the agency said on Tuesday."]


@pytest.fixture(scope="module")
def six_block_bert(tmp_path_factory):
    from serve_support import build_tiny_bert

    return str(build_tiny_bert(tmp_path_factory.mktemp("six-blocks"), layers=6))


@pytest.fixture
def trained(six_block_bert, tmp_path, monkeypatch):
    """A model whose top two blocks and heads moved, as notebook 04's training moves them."""
    monkeypatch.setenv("SENTENCE_MTL_CACHE", str(tmp_path / "cache"))
    model = new_model(0, 64, six_block_bert)
    torch.manual_seed(1)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "layer.4." in name or "layer.5." in name or name.startswith("heads."):
                parameter.add_(0.05 * torch.randn_like(parameter))
    config = TrainConfig(tasks=("topic", "sentiment"), model=six_block_bert, max_seq_length=64,
                         freeze=LOWER_LAYERS)
    return model, config


def test_scoring_above_the_frozen_blocks_matches_the_whole_forward_pass(trained):
    model, config = trained
    data = TaskData("sentiment", "tweet_eval", "test", TEXTS, np.zeros(len(TEXTS), dtype=np.int64),
                    ("negative", "neutral", "positive"))
    whole = model.predict_proba(TEXTS, batch_size=4)["sentiment"]
    for _ in range(2):  # computed, then read from the cache
        above = probabilities_above_frozen(model, config, data, "sentiment", batch_size=4)
        np.testing.assert_allclose(above, whole, atol=1e-6)
        assert (above.argmax(1) == whole.argmax(1)).all()


def test_a_moved_frozen_weight_is_refused(trained):
    model, config = trained
    data = TaskData("topic", "ag_news", "test", TEXTS, np.zeros(len(TEXTS), dtype=np.int64),
                    ("World", "Sports", "Business", "Sci/Tech"))
    with torch.no_grad():
        model.encoder.backbone.encoder.layer[1].output.dense.bias.add_(1e-3)
    with pytest.raises(RuntimeError, match="frozen weights changed"):
        probabilities_above_frozen(model, config, data, "topic")
    with pytest.raises(ValueError, match="needs freeze"):
        probabilities_above_frozen(model, replace(config, freeze=("embeddings",)), data, "topic")
