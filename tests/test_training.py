import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from sentence_mtl.data import TaskData
from sentence_mtl.multitask import MultiTaskModel
from sentence_mtl.checkpoint import CheckpointError
from sentence_mtl.training import (MISSING, ConfigError, LossWeighting, MultiTaskObjective, Source, StopTraining,
                                   TrainConfig, Trainer, epoch_plan, json_line, parameter_groups,
                                   sampling_probabilities)

WORDS = {
    "topic": [["election", "minister", "war", "treaty"], ["match", "goal", "team", "coach"],
              ["stocks", "profit", "market", "shares"], ["software", "chip", "internet", "space"]],
    "sentiment": [["awful", "hate", "terrible"], ["today", "maybe", "ok"], ["love", "great", "wonderful"]],
}
LABELS = {"topic": ("World", "Sports", "Business", "Sci/Tech"), "sentiment": ("negative", "neutral", "positive")}


def synthetic(task, n, seed):
    """Separable toy data: each class has its own keywords."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(LABELS[task]), n)
    texts = [" ".join(rng.choice(WORDS[task][y], 4)) + f" item {i}" for i, y in enumerate(labels)]
    return TaskData(task, "toy", "train", texts, labels, LABELS[task])


def toy_config(tmp_path, tiny_model_dir, **overrides):
    values = dict(model=tiny_model_dir, batch_size=8, epochs=3, encoder_lr=1e-3, head_lr=1e-2,
                  max_seq_length=16, early_stopping_patience=None, log_every=1,
                  output_dir=str(tmp_path / "run"))
    values.update(overrides)
    return TrainConfig(**values)


def toy_data():
    sources = [Source.from_task_data(synthetic("topic", 96, 0)), Source.from_task_data(synthetic("sentiment", 48, 1))]
    val = {"topic": synthetic("topic", 40, 2), "sentiment": synthetic("sentiment", 30, 3)}
    return sources, val


# ---------------------------------------------------------------- sampling


def test_sampling_probabilities():
    sizes = {"a": 900, "b": 100}
    assert sampling_probabilities(sizes, "proportional", 0.5, 0, 3) == pytest.approx({"a": 0.9, "b": 0.1})
    assert sampling_probabilities(sizes, "temperature", 0.0, 0, 3) == pytest.approx({"a": 0.5, "b": 0.5})
    sqrt = sampling_probabilities(sizes, "temperature", 0.5, 0, 3)
    assert sqrt["a"] == pytest.approx(30 / 40)
    # annealed: proportional in the first epoch, alpha = 0.2 in the last
    assert sampling_probabilities(sizes, "annealed", 0.5, 0, 3) == pytest.approx({"a": 0.9, "b": 0.1})
    last = sampling_probabilities(sizes, "annealed", 0.5, 2, 3)
    assert last["a"] == pytest.approx(900 ** 0.2 / (900 ** 0.2 + 100 ** 0.2))


def _plan(config, epoch=0):
    sources, _ = toy_data()
    lengths = {s.name: np.array([len(t.split()) for t in s.texts]) for s in sources}
    return epoch_plan(sources, lengths, config, epoch)


def test_epoch_plan_is_deterministic_and_covers_each_source(tmp_path):
    config = TrainConfig(batch_size=8, sampling="round_robin", seed=3)
    a, b = _plan(config), _plan(config)
    assert [(n, i.tolist()) for n, i in a] == [(n, i.tolist()) for n, i in b]
    assert [n for n, _ in a[:4]] == ["topic", "sentiment", "topic", "sentiment"]
    assert len(a) == 96 // 8 + 48 // 8
    # 24 alternating steps: 12 topic batches are one full pass; sentiment's 6 batches go round twice
    long = _plan(TrainConfig(batch_size=8, sampling="round_robin", seed=3, steps_per_epoch=24))
    topic_seen = np.concatenate([i for n, i in long if n == "topic"])
    assert sorted(topic_seen.tolist()) == list(range(96))
    sentiment_seen = np.concatenate([i for n, i in long if n == "sentiment"])
    assert sorted(sentiment_seen.tolist()) == sorted(list(range(48)) * 2)
    other_epoch = _plan(config, epoch=1)
    assert [i.tolist() for _, i in other_epoch] != [i.tolist() for _, i in a]


def test_proportional_plan_follows_sizes():
    config = TrainConfig(batch_size=8, sampling="proportional", steps_per_epoch=3000)
    names = [n for n, _ in _plan(config)]
    assert names.count("topic") / len(names) == pytest.approx(96 / 144, abs=0.03)


def test_length_bucketing_reduces_padding():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 100, 4000)
    from sentence_mtl.training import length_grouped_batches

    bucketed = length_grouped_batches(lengths, 32, 50, np.random.default_rng(1))
    random_batches = np.array_split(rng.permutation(4000), 4000 // 32)
    pad = lambda batches: sum(lengths[b].max() * len(b) - lengths[b].sum() for b in batches)  # noqa: E731
    assert pad(bucketed) < 0.2 * pad(random_batches)
    assert sorted(np.concatenate(bucketed).tolist()) == list(range(4000))



def test_length_grouping_keeps_small_sets_random_across_epochs():
    """A few-shot sample of 32 texts in batches of 16: grouping by length over the whole sample
    would give the same two batches every epoch; the batches must change between epochs."""
    from sentence_mtl.batch_plan import length_grouped_batches

    lengths = np.arange(32)
    rng = np.random.default_rng(0)
    epochs = [frozenset(frozenset(b.tolist()) for b in length_grouped_batches(lengths, 16, 8, rng))
              for _ in range(6)]
    assert len(set(epochs)) > 1
    for batches in epochs:
        assert sorted(i for b in batches for i in b) == list(range(32))

# ---------------------------------------------------------------- losses


def test_loss_weighting_schemes():
    losses = {"topic": torch.tensor(2.0), "sentiment": torch.tensor(1.0)}
    assert float(LossWeighting(["topic", "sentiment"])(losses)) == pytest.approx(3.0)
    static = LossWeighting(["topic", "sentiment"], "static", {"topic": 0.5})
    assert float(static(losses)) == pytest.approx(2.0)
    uncertainty = LossWeighting(["topic", "sentiment"], "uncertainty")
    with torch.no_grad():
        uncertainty.log_vars["topic"].fill_(np.log(2.0))
    expected = 2.0 / 2.0 + 0.5 * np.log(2.0) + 1.0
    total = uncertainty(losses)
    assert float(total) == pytest.approx(expected, rel=1e-5)
    total.backward()
    assert uncertainty.log_vars["topic"].grad is not None
    with pytest.raises(ValueError):
        LossWeighting(["topic"], "gradnorm")


def test_loss_only_where_labels_exist(tiny_model_dir):
    model = MultiTaskModel.from_encoder_name(tiny_model_dir, ["topic", "sentiment"]).eval()
    objective = MultiTaskObjective(model, LossWeighting(model.tasks))
    batch = model.encoder.tokenize(["a b c", "d e", "f"])
    topic = torch.tensor([1, 2, 3])
    sentiment = torch.tensor([MISSING, 2, MISSING])
    total, losses = objective(batch, {"topic": topic, "sentiment": sentiment})
    logits = model(**batch)
    expected_sentiment = torch.nn.functional.cross_entropy(logits["sentiment"][1:2], sentiment[1:2])
    assert float(losses["sentiment"]) == pytest.approx(float(expected_sentiment), rel=1e-5)
    assert float(total) == pytest.approx(float(losses["topic"] + losses["sentiment"]), rel=1e-5)
    _, only_topic = objective(batch, {"topic": topic, "sentiment": torch.full((3,), MISSING)})
    assert set(only_topic) == {"topic"}


def test_layerwise_learning_rates(tiny_model_dir):
    model = MultiTaskModel.from_encoder_name(tiny_model_dir, ["topic"])
    config = TrainConfig(encoder_lr=1e-4, head_lr=1e-3, layer_decay=0.5)
    groups = parameter_groups(model, LossWeighting(model.tasks), config)
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    layers = model.encoder_layers()
    assert lr_of[id(next(layers[-1].parameters()))] == pytest.approx(1e-4)
    assert lr_of[id(next(layers[0].parameters()))] == pytest.approx(0.5e-4)
    assert lr_of[id(model.encoder.backbone.embeddings.word_embeddings.weight)] == pytest.approx(0.25e-4)
    assert lr_of[id(next(model.heads["topic"].parameters()))] == pytest.approx(1e-3)
    model.freeze("embeddings")
    groups = parameter_groups(model, LossWeighting(model.tasks), config)
    assert id(model.encoder.backbone.embeddings.word_embeddings.weight) not in {id(p) for g in groups for p in g["params"]}


def test_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match="Unknown training config"):
        TrainConfig.from_dict({"epochz": 3})


@pytest.mark.parametrize("values, fragments", [
    ({"epochs": "two"}, ["'epochs'", "an integer", "'two' (a string)"]),
    ({"batch_size": 0}, ["'batch_size'", "an integer from 1 to 2147483647", "got 0"]),
    ({"encoder_lr": -1e-5}, ["'encoder_lr'", "a number from 0 to 1", "-1e-05"]),
    ({"encoder_lr": 1e300}, ["'encoder_lr'", "a number from 0 to 1", "1e+300"]),
    ({"seed": 2**64}, ["'seed'", "an integer from 0 to 4294967295", str(2**64)]),
    ({"data_seed": -1}, ["'data_seed'", "an integer from 0 to 4294967295"]),
    ({"batch_size": 2**40}, ["'batch_size'", "an integer from 1 to 2147483647"]),
    ({"head_hidden_dim": 1.5}, ["'head_hidden_dim'", "an integer or null", "1.5"]),
    ({"epochs": True}, ["'epochs'", "an integer", "True (a boolean)"]),
    ({"tasks": "topic"}, ["'tasks'", "a list of non-empty strings", "'topic' (a string)"]),
    ({"tasks": ["topik"]}, ["'tasks'", "['topik']", "airline"]),
    ({"sampling": "random"}, ["'sampling'", "round_robin", "'random'"]),
    ({"normalize": "yes"}, ["'normalize'", "true or false", "'yes'"]),
    ({"dropout": 1.0}, ["'dropout'", "[0, 1)", "1.0"]),
    ({"static_weights": {"airline": 1}}, ["'static_weights'", "airline"]),
    ({"epochz": 3}, ["epochz", "did you mean 'epochs'"]),
])
def test_config_error_names_key_value_and_expectation(values, fragments):
    with pytest.raises(ConfigError) as error:
        TrainConfig.from_dict(values)
    for fragment in fragments:
        assert fragment in str(error.value)


@pytest.mark.parametrize("content, fragment", [
    (b"[1, 2]", "a JSON object of TrainConfig fields, not [1, 2]"),
    (b'{"epochs": 2,}', "not valid JSON"),
    (b'{"encoder_lr": NaN}', "NaN"),
    (b"\xff\xfe{}", "not UTF-8"),
])
def test_config_file_errors(tmp_path, content, fragment):
    path = tmp_path / "config.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        TrainConfig.from_file(path)
    with pytest.raises(ConfigError, match="is a directory"):
        TrainConfig.from_file(tmp_path)


def test_config_converts_json_types():
    config = TrainConfig.from_dict({"encoder_lr": 1, "tasks": ["topic"], "static_weights": {"topic": 2}})
    assert config.encoder_lr == 1.0 and isinstance(config.encoder_lr, float)
    assert config.tasks == ("topic",) and config.static_weights == {"topic": 2.0}


@pytest.mark.parametrize("content, fragment", [
    ('{"epochs": "two"}', "training config key 'epochs' must be an integer, got 'two'"),
    ('{"batch_size": 0}', "training config key 'batch_size' must be an integer from 1 to 2147483647, got 0"),
    ('{"seed": 18446744073709551616}', "training config key 'seed' must be an integer from 0 to 4294967295"),
    ('{"encoder_lr": 1e300}', "training config key 'encoder_lr' must be a number from 0 to 1"),
    ('{"a": ' * 100_000 + "1" + "}" * 100_000, "nested too deeply"),
    ('{"epochs": 2', "not valid JSON"),
])
def test_cli_train_rejects_bad_config_in_one_line(tmp_path, content, fragment):
    path = tmp_path / "config.json"
    path.write_text(content)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "sentence_mtl.cli", "train", "--config", str(path)],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith(f"error: {path}: ") or result.stderr.startswith(f"error: Training config {path}")
    assert fragment in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.parametrize("flag", ["--save-to", "--output-dir"])
def test_cli_train_refuses_an_output_folder_that_is_a_file(tmp_path, flag):
    """Checked before any data is read or any step is trained, not a traceback after training."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"epochs": 1}))
    occupied = tmp_path / "a_file"
    occupied.write_text("not a folder")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "sentence_mtl.cli", "train", "--config", str(config),
                             flag, str(occupied)], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines() == [f"error: {flag}{' (or the config' + chr(39) + 's output_dir)' if flag == '--output-dir' else ''} {occupied} is a file; give a folder path."]


def test_freezing_every_weight_is_a_config_error(tmp_path, tiny_model_dir):
    sources, val = toy_data()
    with pytest.raises(ConfigError, match="'freeze'.*freezes every weight"):
        Trainer(toy_config(tmp_path, tiny_model_dir, freeze=("encoder", "heads")), sources, val, show_progress=False)


def test_max_seq_length_past_the_models_positions_is_a_config_error(tmp_path, tiny_model_dir):
    sources, val = toy_data()  # the tiny BERT has 128 positions
    with pytest.raises(ConfigError, match="'max_seq_length' must be at most the model's 128 positions, got 129"):
        Trainer(toy_config(tmp_path, tiny_model_dir, max_seq_length=129), sources, val, show_progress=False)


def test_unknown_freeze_part_is_a_config_error(tmp_path, tiny_model_dir):
    sources, val = toy_data()
    with pytest.raises(ConfigError, match="'freeze'.*'layer.9'"):
        Trainer(toy_config(tmp_path, tiny_model_dir, freeze=("layer.9",)), sources, val, show_progress=False)


def test_log_lines_are_strict_json():
    line = json_line({"loss": float("nan"), "tasks": {"a": float("inf")}, "lr": [1.0, float("-inf")]})
    assert line == '{"loss": null, "tasks": {"a": null}, "lr": [1.0, null]}'


# ---------------------------------------------------------------- the loop


def _final_eval(log):
    return [e for e in log if e["type"] == "eval"][-1]


def test_training_learns_and_keeps_best_checkpoint(tmp_path, tiny_model_dir):
    sources, val = toy_data()
    config = toy_config(tmp_path, tiny_model_dir, loss_weighting="uncertainty", sampling="temperature")
    model, log = Trainer(config, sources, val, show_progress=False).run()
    steps = [e for e in log if e["type"] == "step"]
    first, last = np.mean([e["loss"] for e in steps[:5]]), np.mean([e["loss"] for e in steps[-5:]])
    assert last < 0.7 * first, (first, last)
    evals = [e for e in log if e["type"] == "eval"]
    assert len(evals) == 3 and evals[-1]["tasks"]["topic"]["accuracy"] > 0.5
    assert set(evals[0]["tasks"]["topic"]) >= {"accuracy", "macro_precision", "macro_recall", "macro_f1",
                                               "confusion_matrix", "benchmark_value"}
    assert (tmp_path / "run" / "best" / "model" / "multitask_config.json").is_file()
    assert json.loads((tmp_path / "run" / "config.json").read_text())["loss_weighting"] == "uncertainty"
    best_mean = max(e["mean_metric"] for e in evals)
    reloaded = MultiTaskModel.from_pretrained(tmp_path / "run" / "best" / "model")
    from sentence_mtl.training import evaluate
    scores = evaluate(reloaded, val)
    assert np.mean([m["benchmark_value"] for m in scores.values()]) == pytest.approx(best_mean, abs=1e-6)


def test_same_seed_same_metrics(tmp_path, tiny_model_dir):
    sources, val = toy_data()
    runs = [Trainer(toy_config(tmp_path / str(i), tiny_model_dir, epochs=2), sources, val,
                    show_progress=False).run()[1] for i in range(2)]
    assert _final_eval(runs[0])["tasks"] == _final_eval(runs[1])["tasks"]
    assert [e["loss"] for e in runs[0] if e["type"] == "step"] == [e["loss"] for e in runs[1] if e["type"] == "step"]


def test_resume_after_kill_matches_uninterrupted_run(tmp_path, tiny_model_dir):
    sources, val = toy_data()
    full = Trainer(toy_config(tmp_path / "full", tiny_model_dir), sources, val, show_progress=False).run()[1]

    killed_config = toy_config(tmp_path / "killed", tiny_model_dir)
    steps_per_epoch = len([e for e in full if e["type"] == "step" and e["epoch"] == 0])

    def kill(trainer, step):  # dies in the middle of the second epoch, after a checkpoint
        if step == steps_per_epoch + steps_per_epoch // 2:
            raise StopTraining

    with pytest.raises(StopTraining):
        Trainer(killed_config, sources, val, show_progress=False, step_callback=kill).run()
    assert (tmp_path / "killed" / "run" / "checkpoint" / "manifest.json").is_file()
    resumed = Trainer(killed_config, sources, val, show_progress=False).run()[1]
    assert _final_eval(resumed)["tasks"] == _final_eval(full)["tasks"]
    assert [e["loss"] for e in resumed if e["type"] == "step"] == [e["loss"] for e in full if e["type"] == "step"]


def test_early_stopping(tmp_path, tiny_model_dir):
    sources, val = toy_data()
    config = toy_config(tmp_path, tiny_model_dir, epochs=6, encoder_lr=0.0, head_lr=0.0, early_stopping_patience=1)
    trainer = Trainer(config, sources, val, show_progress=False)
    _, log = trainer.run()
    assert trainer.state["stopped_early"]
    assert len([e for e in log if e["type"] == "eval"]) == 2  # no improvement after the first
    # started again, a finished run resumes from its last checkpoint and has nothing left to do
    again = Trainer(config, sources, val, show_progress=False, step_callback=lambda *_: pytest.fail("trained"))
    assert again.run()[1] == log and again.state == trainer.state


def test_a_damaged_best_model_is_refused_not_returned(tmp_path, tiny_model_dir):
    """A finished run hands back its best model only after checking it against its manifest."""
    sources, val = toy_data()
    config = toy_config(tmp_path, tiny_model_dir, epochs=2, early_stopping_patience=1)
    trainer = Trainer(config, sources, val, show_progress=False)
    trainer.run()
    weights = next((trainer.best_dir / "model").rglob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="best"):
        Trainer(config, sources, val, show_progress=False).run()
