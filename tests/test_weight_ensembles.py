"""WiSE-FT's interpolation and its pretrained end; the out-of-domain sets' loading and scoring."""

import numpy as np
import pytest
import torch

from sentence_mtl.data import DataError, DataSource
from sentence_mtl.multitask import MultiTaskModel
from sentence_mtl.out_of_domain import NEGATIVE, NEUTRAL, POSITIVE, OutOfDomainSet, correct, load_uci_sentences, score
from sentence_mtl.weight_ensembles import CheckpointAverage, interpolate, pretrained_start


@pytest.fixture
def two_models(tiny_model_dir):
    start = MultiTaskModel.from_encoder_name(tiny_model_dir, ["topic", "sentiment"], seed=0)
    end = MultiTaskModel.from_encoder_name(tiny_model_dir, ["topic", "sentiment"], seed=1)
    with torch.no_grad():
        for p in end.parameters():
            p.add_(torch.randn_like(p))
    return start, end


def test_interpolation_ends_and_midpoint(two_models):
    start, end = two_models
    a, b = start.state_dict(), end.state_dict()
    for alpha, expected in ((0.0, a), (1.0, b)):
        mixed = interpolate(start, end, alpha).state_dict()
        assert all(torch.allclose(mixed[k].float(), expected[k].float()) for k in b)
    half = interpolate(start, end, 0.5).state_dict()
    key = next(k for k in b if b[k].is_floating_point() and not torch.equal(a[k], b[k]))
    assert torch.allclose(half[key], (a[key] + b[key]) / 2)
    assert torch.equal(end.state_dict()[key], b[key])  # the inputs are left as they were


def test_interpolation_refuses_bad_alpha_and_other_architectures(two_models, tiny_model_dir):
    start, end = two_models
    with pytest.raises(ValueError, match="alpha"):
        interpolate(start, end, 1.5)
    other = MultiTaskModel.from_encoder_name(tiny_model_dir, ["topic"])
    with pytest.raises(ValueError, match="architecture"):
        interpolate(other, end, 0.5)


class _FakeTrainer:
    """What CheckpointAverage reads from a Trainer: the model, the step count and the interval."""

    def __init__(self, model, total_steps=10, eval_every=3):
        from types import SimpleNamespace

        self.objective = SimpleNamespace(model=model)
        self.accelerator = SimpleNamespace(unwrap_model=lambda objective: objective)
        self.config = SimpleNamespace(eval_every=eval_every)
        self.total_steps, self.steps_per_epoch = total_steps, total_steps


def test_checkpoint_average_is_the_mean_of_the_last_snapshots(two_models):
    start, end = two_models
    model = start
    trainer = _FakeTrainer(model)
    average = CheckpointAverage(n=2)
    weights = {}
    for step in range(1, 11):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(float(step))
        weights[step] = {k: v.clone() for k, v in model.state_dict().items()}
        average(trainer, step)
    assert list(average.steps) == [9, 10]  # every 3 steps (eval_every), and the last step
    key = next(k for k, v in weights[10].items() if v.is_floating_point())
    mean = average.averaged(end).state_dict()[key]
    assert torch.allclose(mean, (weights[9][key] + weights[10][key]) / 2)
    with pytest.raises(ValueError, match="no snapshot"):
        CheckpointAverage(n=3).averaged(end)
    with pytest.raises(ValueError, match="n >= 1"):
        CheckpointAverage(n=0)


def test_pretrained_start_restores_the_encoder_and_fits_probe_heads(two_models, tiny_model_dir):
    start, fine_tuned = two_models
    texts = {"topic": [f"topic text {i}" for i in range(16)], "sentiment": [f"mood {i}!" for i in range(12)]}
    labels = {"topic": np.arange(16) % 4, "sentiment": np.arange(12) % 3}
    probe = pretrained_start(fine_tuned, tiny_model_dir, texts, labels)
    encoder_keys = [k for k in probe.encoder.state_dict()]
    assert all(torch.equal(probe.encoder.state_dict()[k], start.encoder.state_dict()[k]) for k in encoder_keys)
    assert not torch.equal(probe.heads["topic"].net[-1].weight, fine_tuned.heads["topic"].net[-1].weight)
    proba = probe.predict_proba(texts["topic"])["topic"]
    assert proba.shape == (16, 4) and np.allclose(proba.sum(1), 1, atol=1e-5)
    with pytest.raises(ValueError, match="cover"):
        pretrained_start(fine_tuned, tiny_model_dir, texts, {**labels, "sentiment": np.zeros(12, dtype=int)})


def test_binary_sets_score_the_positive_negative_decision():
    dataset = OutOfDomainSet("x", ["a", "b", "c"], np.array([POSITIVE, NEGATIVE, POSITIVE]), True, ["s"] * 3)
    proba = np.zeros((3, 3))
    proba[0, [NEGATIVE, NEUTRAL, POSITIVE]] = (0.2, 0.5, 0.3)  # neutral argmax, positive over negative: right
    proba[1, [NEGATIVE, NEUTRAL, POSITIVE]] = (0.1, 0.1, 0.8)  # wrong
    proba[2, [NEGATIVE, NEUTRAL, POSITIVE]] = (0.1, 0.2, 0.7)  # right
    assert correct(proba, dataset).tolist() == [1.0, 0.0, 1.0]
    result = score(proba, dataset)
    assert result["value"] == pytest.approx(2 / 3) and result["neutral_share"] == pytest.approx(1 / 3)


def test_uci_loader_reports_a_bad_label(tmp_path):
    folder = tmp_path / "uci_sentiment_sentences"
    folder.mkdir()
    (folder / "test.csv").write_text("text,sentiment,source\nGreat phone.,positive,amazon\nMeh.,neutral,amazon\n")
    with pytest.raises(DataError, match="line 3.*neutral"):
        load_uci_sentences(DataSource(tmp_path))
    (folder / "test.csv").write_text("text,sentiment,source\nGreat phone.,positive,amazon\n")
    loaded = load_uci_sentences(DataSource(tmp_path))
    assert loaded.binary and loaded.labels.tolist() == [POSITIVE]
