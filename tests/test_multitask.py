import numpy as np
import pytest
import torch

from sentence_mtl.multitask import HeadSpec, MultiTaskModel, heads_for

TEXTS = ["Stocks fell sharply on Monday.", "What a great game last night!", "New chip doubles battery life."]


@pytest.fixture()
def model(tiny_model_dir):
    return MultiTaskModel.from_encoder_name(tiny_model_dir, ["topic", "sentiment"], seed=0)


def test_heads_for_uses_registered_label_names():
    specs = heads_for(["topic", "sentiment", "airline"], hidden_dim=16)
    assert [s.n_classes for s in specs] == [4, 3, 6]
    assert specs[1].label_names == ("negative", "neutral", "positive")
    with pytest.raises(KeyError):
        heads_for(["no_such_task"])


def test_forward_returns_logits_for_requested_tasks(model):
    batch = model.encoder.tokenize(TEXTS)
    out = model(**batch)
    assert set(out) == {"topic", "sentiment"}
    assert out["topic"].shape == (3, 4) and out["sentiment"].shape == (3, 3)
    only = model(**batch, tasks=["sentiment"])
    assert set(only) == {"sentiment"}


def test_third_task_is_one_entry_away(tiny_model_dir):
    model = MultiTaskModel.from_encoder_name(tiny_model_dir, ["topic", "sentiment", "airline"])
    out = model(**model.encoder.tokenize(TEXTS))
    assert out["airline"].shape == (3, 6)


def test_predict_gives_label_names_and_probabilities(model):
    pred = model.predict(TEXTS)
    assert set(pred) == {"topic", "sentiment"}
    assert all(label in ("World", "Sports", "Business", "Sci/Tech") for label in pred["topic"]["label"])
    proba = model.predict_proba(TEXTS)
    np.testing.assert_allclose(proba["topic"].sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(pred["sentiment"]["probability"], proba["sentiment"].max(1), atol=1e-6)


def test_hidden_layer_head(tiny_model_dir):
    model = MultiTaskModel(MultiTaskModel.from_encoder_name(tiny_model_dir, ["topic"]).encoder,
                           [HeadSpec("topic", ("a", "b"), hidden_dim=8)])
    assert model.parameter_counts()["head.topic"] == 32 * 8 + 8 + 8 * 2 + 2


def test_freeze_helpers(model):
    counts = model.parameter_counts()
    assert counts["trainable"] == counts["total"]
    model.freeze("encoder")
    assert model.parameter_counts()["trainable"] == counts["head.topic"] + counts["head.sentiment"]
    model.unfreeze("top.1")
    assert model.parameter_counts()["trainable"] == counts["head.topic"] + counts["head.sentiment"] + counts["encoder.layer.1"]
    model.freeze("head.topic")
    assert not any(p.requires_grad for p in model.heads["topic"].parameters())
    assert all(p.requires_grad for p in model.heads["sentiment"].parameters())
    model.unfreeze("encoder").freeze("embeddings")
    assert not any(p.requires_grad for p in model.encoder.backbone.embeddings.parameters())
    assert all(p.requires_grad for p in model.encoder_layers()[0].parameters())
    with pytest.raises(ValueError, match="Unknown part"):
        model.freeze("decoder")


def test_save_and_load_round_trip(model, tmp_path):
    model.training_config = {"epochs": 3, "tasks": ["topic", "sentiment"]}
    with torch.no_grad():
        model.heads["topic"].net[-1].bias.add_(0.5)  # make sure trained-looking weights survive
    model.save_pretrained(tmp_path / "saved")
    loaded = MultiTaskModel.from_pretrained(tmp_path / "saved")
    assert loaded.training_config == model.training_config
    assert loaded.specs == model.specs
    for task in ("topic", "sentiment"):
        np.testing.assert_allclose(loaded.predict_proba(TEXTS)[task], model.predict_proba(TEXTS)[task], atol=1e-6)
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir()), "temporary folder left behind"


def test_loading_a_missing_model_says_how_to_build_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="make train"):
        MultiTaskModel.from_pretrained(tmp_path / "nothing")


def test_saved_model_is_readable_by_every_user(tiny_model_dir, tmp_path):
    """A service running as another user (a container's non-root user) must be able to load it."""
    import os
    import stat

    MultiTaskModel.from_encoder_name(tiny_model_dir, ["topic"]).save_pretrained(tmp_path / "saved")
    for root, dirs, files in os.walk(tmp_path / "saved"):
        assert stat.S_IMODE(os.stat(root).st_mode) & 0o055 == 0o055, root
        for name in files:
            assert stat.S_IMODE(os.stat(os.path.join(root, name)).st_mode) & 0o044 == 0o044, name
