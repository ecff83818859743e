"""Freezing strategies (notebook 03) on a tiny random BERT: what each strategy trains, that
frozen parts stay bit-identical, that the cached paths compute what the full model computes,
and that the layer-state cache is content-addressed and survives a corrupt entry."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from sentence_mtl import strategy_training as st
from sentence_mtl.experiments import analysis, finetune_runs, frozen_runs, grids, speed
from sentence_mtl import strategies
from sentence_mtl.cache import LayerStates, cached_layer_states
from sentence_mtl.data import TaskData
from sentence_mtl.results import Recorder
from sentence_mtl.config import get_profile

TEXTS = ["stocks fell sharply today", "the team won the final", "a new phone chip was announced",
         "talks between the leaders stalled", "shares of the bank rose", "striker scores twice in derby",
         "scientists map a distant galaxy", "election results are disputed"]
TOPIC = np.array([2, 1, 3, 0, 2, 1, 3, 0])
SENTIMENT = np.array([0, 2, 1, 0, 2, 2, 1, 0])


def tiny_grid(tiny_model_dir):
    return replace(grids.GRIDS["smoke"], steps=((2, 6),), batch_size=4, model_name=tiny_model_dir)


def task_data(task, labels, names):
    return TaskData(task, "fake", "train", list(TEXTS), labels, names)


@pytest.fixture
def data():
    train = {"topic": task_data("topic", TOPIC, ("World", "Sports", "Business", "Sci/Tech")),
             "sentiment": task_data("sentiment", SENTIMENT, ("negative", "neutral", "positive"))}
    return train, {t: replace(d, split="test") for t, d in train.items()}


def snapshot(module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before: dict, module) -> set[str]:
    return {k for k, v in module.state_dict().items() if k in before and not torch.equal(before[k], v)}


# --------------------------------------------------------------------------- the split forward pass


def test_forward_from_any_layer_equals_the_full_forward(tiny_model_dir):
    model = st.new_model(0, 32, tiny_model_dir)
    batch = model.encoder.tokenize(TEXTS[:3])
    with torch.no_grad():
        full = model.encoder(**batch)
        for layer in range(len(model.encoder_layers()) + 1):
            hidden = model.encoder.hidden_states_at(layer, batch["input_ids"], batch["attention_mask"])
            torch.testing.assert_close(model.encoder.forward_from_layer(layer, hidden, batch["attention_mask"]), full)


def test_cached_layer_states_reproduce_the_full_forward(tiny_model_dir, tmp_path):
    model = st.new_model(0, 32, tiny_model_dir)
    states = cached_layer_states(model.encoder, TEXTS, 1, show_progress=False, root=tmp_path)
    assert isinstance(states, LayerStates) and len(states) == len(TEXTS)
    hidden, mask = states.batch([5, 0, 2])
    batch = model.encoder.tokenize([TEXTS[5], TEXTS[0], TEXTS[2]])
    with torch.no_grad():
        torch.testing.assert_close(model.encoder.forward_from_layer(1, hidden, mask), model.encoder(**batch))


def test_layer_cache_is_content_addressed_and_survives_corruption(tiny_model_dir, tmp_path, monkeypatch):
    import sentence_mtl.cache as cache

    model = st.new_model(0, 32, tiny_model_dir)
    calls = []
    compute = cache._compute_layer_states
    monkeypatch.setattr(cache, "_compute_layer_states", lambda *a, **k: calls.append(a[2]) or compute(*a, **k))
    first = cached_layer_states(model.encoder, TEXTS, 1, show_progress=False, root=tmp_path)
    again = cached_layer_states(model.encoder, TEXTS, 1, show_progress=False, root=tmp_path)
    assert calls == [1]
    np.testing.assert_array_equal(first.states, again.states)
    cached_layer_states(model.encoder, TEXTS, 0, show_progress=False, root=tmp_path)  # another layer: a new entry
    cached_layer_states(model.encoder, TEXTS[:4], 1, show_progress=False, root=tmp_path)  # other texts: new entry
    assert calls == [1, 0, 1]
    with torch.no_grad():  # changed weights: never served the old states
        model.encoder.backbone.encoder.layer[0].output.dense.bias.add_(1.0)
    cached_layer_states(model.encoder, TEXTS, 1, show_progress=False, root=tmp_path)
    assert len(calls) == 4
    entries = sorted((tmp_path / "layer_states").glob("*.npz"))
    assert len(entries) == 4 and not [p for p in (tmp_path / "layer_states").iterdir() if p.name.startswith(".")]
    for path in entries:  # unreadable entries are recomputed, never read
        path.write_bytes(b"half-written")
    model2 = st.new_model(0, 32, tiny_model_dir)
    states = cached_layer_states(model2.encoder, TEXTS, 1, show_progress=False, root=tmp_path)
    np.testing.assert_array_equal(states.states, first.states)


# --------------------------------------------------------------------------- what each strategy trains


def test_registry_and_unknown_names():
    assert set(strategies.STRATEGIES) >= {"zero_shot", "nearest_centroid", "frozen_backbone", "top1_unfrozen",
                                         "top2_unfrozen", "full_finetune", "gradual_unfreezing", "llrd_0.95",
                                         "llrd_2.6", "lora", "lp_ft"}
    with pytest.raises(ValueError, match="Unknown strategy"):
        strategies.get("freeze_everything_twice")
    phases = strategies.gradual_unfreezing_phases(4)
    assert [p.trainable for p in phases] == [("heads",), ("heads", "top.1"), ("heads", "top.2"), ("heads", "top.3")]


def test_trainable_parameter_counts(tiny_model_dir):
    model = st.new_model(0, 32, tiny_model_dir)
    counts = model.parameter_counts()
    heads = counts["head.topic"] + counts["head.sentiment"]
    get = lambda name: st.trainable_parameters(model, strategies.get(name).phases)  # noqa: E731
    assert get("frozen_backbone") == heads
    assert get("top1_unfrozen") == heads + counts["encoder.layer.1"]
    assert get("top2_unfrozen") == heads + counts["encoder.layer.0"] + counts["encoder.layer.1"]
    assert get("full_finetune") == counts["total"]
    assert get("lp_ft") == counts["total"]  # the probe trains the heads, then everything trains
    assert get("gradual_unfreezing") == heads + counts["encoder.layer.0"] + counts["encoder.layer.1"]
    with pytest.raises(ValueError, match="no LoRA adapters"):
        model.unfreeze("lora")
    st.add_lora(model, strategies.get("lora").lora)
    lora = st.trainable_parameters(model, strategies.get("lora").phases)
    assert heads < lora < counts["total"] / 2


@pytest.mark.parametrize("name,frozen_prefixes", [
    ("top1_unfrozen", ("backbone.embeddings.", "backbone.encoder.layer.0.")),
    ("full_finetune", ()),
    ("lora", ("backbone.embeddings.", "backbone.encoder.layer.0.attention.self.query.base_layer")),
])
def test_encoder_strategies_train_and_keep_frozen_parts_identical(name, frozen_prefixes, tiny_model_dir, data):
    train, test = data
    grid = tiny_grid(tiny_model_dir)
    recorder = Recorder("t", get_profile("smoke"), {})
    strategy = strategies.get(name)
    model = st.new_model(0, grid.max_seq_length, tiny_model_dir)
    if strategy.lora:
        st.add_lora(model, strategy.lora)
    before = snapshot(model.encoder)
    inputs = {t: st.TokenInputs(model.encoder.tokenizer, TEXTS, 32) for t in train}
    log = st.train_steps(model, inputs, {t: d.labels for t, d in train.items()}, strategy, 12, 4, 0)
    assert len(log.losses) == 12 and all(np.isfinite(log.losses))
    trainable = st.trainable_parameters(model, strategy.phases)
    assert 0 < log.memory["gradient_mb"] * 2**20 <= 4 * trainable  # fp32 gradients of what trains and is used
    assert log.memory["optimizer_state_mb"] == 2 * log.memory["gradient_mb"]  # AdamW's two moments
    assert log.memory["activation_mb"] > 0
    moved = changed(before, model.encoder)
    assert moved, "training changed nothing"
    if frozen_prefixes:
        assert not [k for k in moved if k.startswith(frozen_prefixes)]
    rows = finetune_runs.run_encoder_strategy(recorder, strategy, train, test, 2, 0, grid)
    assert {r["task"] for r in rows} == {"topic", "sentiment"}
    assert all(0 <= r["value"] <= 1 and r["n_test"] == len(TEXTS) and r["trainable_params"] > 0 for r in rows)


def test_training_memory_orders_the_strategies_by_what_runs_backward(tiny_model_dir, data):
    """Saved activations: the whole encoder > the top two blocks on a cache; LoRA trains the fewest
    weights but keeps about as many activations as full fine-tuning (every block runs backward)."""
    train, test = data
    grid = tiny_grid(tiny_model_dir)
    memory = {}
    for name in ("full_finetune", "top2_unfrozen", "lora"):
        rows = finetune_runs.run_encoder_strategy(Recorder("t", get_profile("smoke"), {}), strategies.get(name), train,
                                          test, 2, 0, grid)
        memory[name] = rows[0]
    assert memory["full_finetune"]["activation_mb"] > memory["top2_unfrozen"]["activation_mb"] > 0
    assert memory["lora"]["gradient_mb"] < memory["top2_unfrozen"]["gradient_mb"] < memory["full_finetune"]["gradient_mb"]
    assert memory["lora"]["activation_mb"] >= 0.9 * memory["full_finetune"]["activation_mb"]


def test_frozen_backbone_trains_heads_on_cached_embeddings_only(tiny_model_dir, data):
    train, test = data
    grid = tiny_grid(tiny_model_dir)
    recorder = Recorder("t", get_profile("smoke"), {})
    rng = np.random.default_rng(0)
    embeddings = {t: rng.standard_normal((len(TEXTS), 32)).astype(np.float32) for t in train}
    # separable "embeddings": the class index written into the first coordinates
    for t, d in train.items():
        embeddings[t][np.arange(len(TEXTS)), d.labels] += 5.0
    scored = {t: {"subset": (test[t], embeddings[t]), "full": (test[t], embeddings[t])} for t in test}
    rows = frozen_runs.run_frozen_backbone(recorder, strategies.get("frozen_backbone"), train, embeddings, scored,
                                           2, 0, grid)
    assert all(r["value"] == 1.0 == r["full_test_value"] and r["trainable_params"] == 32 * 4 + 4 + 32 * 3 + 3
               for r in rows)


def test_nearest_centroid_and_zero_shot(data, tiny_model_dir):
    train, test = data
    recorder = Recorder("t", get_profile("smoke"), {})
    x = np.eye(4, dtype=np.float32)[TOPIC] + 0.01
    scored = {"subset": (test["topic"], x), "full": (test["topic"], x)}
    row = frozen_runs.run_nearest_centroid(recorder, train["topic"], x, scored, 2, 0)
    assert row["value"] == 1.0 and row["trainable_params"] == 0
    model = st.new_model(0, 32, tiny_model_dir)
    vectors = model.encoder.encode(TEXTS)
    zero = frozen_runs.run_zero_shot(recorder, model.encoder, "topic",
                                     {"subset": (test["topic"], vectors), "full": (test["topic"], vectors)})
    assert zero["n_per_class"] == 0 and 0 <= zero["value"] <= 1
    floor = frozen_runs.run_majority_class(recorder, train["topic"], scored)
    counts = np.bincount(test["topic"].labels)
    assert floor["value"] == counts[np.bincount(train["topic"].labels).argmax()] / counts.sum()


def test_sequential_freezes_the_topic_head_and_measures_forgetting(tiny_model_dir, data):
    train, test = data
    grid = tiny_grid(tiny_model_dir)
    recorder = Recorder("t", get_profile("smoke"), {})
    rows = finetune_runs.run_sequential(recorder, train, test, 2, 0, grid, strategies.get("full_finetune"),
                                strategies.get("lora"))
    assert len(rows) == 3 * len(finetune_runs.SEQUENTIAL_VARIANTS)
    table = analysis.forgetting(rows)
    assert set(table.strategy) == set(finetune_runs.SEQUENTIAL_VARIANTS)
    frozen = table[table.strategy == "sequential_frozen_backbone"].iloc[0]
    assert frozen.forgetting == 0.0  # neither the encoder nor the topic head may move
    np.testing.assert_allclose(table.forgetting, table.after_topic - table.after_sentiment)


def test_cache_speedups_reports_both_ratios(tiny_model_dir):
    result = speed.cache_speedups(TEXTS, TOPIC, batch_size=4, steps=3, epochs=1, model_name=tiny_model_dir)
    assert result["heads_epoch_ratio"] > 0 and result["top2_step_ratio"] > 0
    # the bound: what the step would cost with the lower blocks' forward removed entirely
    full, lower = result["top2_step_full_forward_s"], result["top2_lower_forward_s"]
    assert lower > 0
    assert result["top2_step_ratio_bound"] == pytest.approx(full / max(full - lower, 1e-9))
    assert result["n_texts"] == len(TEXTS)


def test_lp_ft_probes_the_heads_on_the_frozen_encoder_then_trains_everything(tiny_model_dir, data):
    """LP-FT's first stage fits the heads alone on the pretrained encoder's embeddings (the encoder
    unchanged, the heads' loss down); the run then records the probe and changes the encoder."""
    train, test = data
    model = st.new_model(0, 32, tiny_model_dir)
    before = snapshot(model.encoder)
    embeddings = {t: model.encoder.encode(TEXTS) for t in train}
    labels = {t: d.labels for t, d in train.items()}
    log, steps = st.train_heads(model, embeddings, labels, strategies.get("lp_ft"), seed=0)
    assert steps == st.PROBE_STEPS and not changed(before, model.encoder)
    assert np.mean(log.losses[-10:]) < np.mean(log.losses[:10])
    rows = finetune_runs.run_encoder_strategy(Recorder("t", get_profile("smoke"), {}), strategies.get("lp_ft"), train,
                                      test, 2, 0, tiny_grid(tiny_model_dir))
    assert all(r["probe_steps"] == st.PROBE_STEPS and r["strategy"] == "lp_ft" for r in rows)


def test_a_trained_model_can_be_freed(tiny_model_dir, data):
    """Counting saved activations must not keep the model alive (it once did, through a pack hook
    that returned the saved tensor itself: about 90 MB per run, until notebook 03 ran out of memory)."""
    import gc
    import weakref

    train, _ = data

    def train_once():
        model = st.new_model(0, 32, tiny_model_dir)
        inputs = {t: st.TokenInputs(model.encoder.tokenizer, TEXTS, 32) for t in train}
        st.train_steps(model, inputs, {t: d.labels for t, d in train.items()}, strategies.get("full_finetune"), 3, 4, 0)
        return weakref.ref(next(model.parameters()))

    parameter = train_once()
    gc.collect()
    assert parameter() is None


def test_a_run_recorded_twice_is_reported():
    run = {"task": "topic", "strategy": "top2_unfrozen", "n_per_class": 64, "seed": 0}
    staged = {**run, "strategy": "sequential_lora", "stage": "after_topic"}
    records = [run, {**run, "seed": 1}, staged, {**staged, "stage": "after_sentiment"}, dict(run)]
    assert analysis.duplicate_runs(records) == [("topic", "top2_unfrozen", 64, 0, None)]
