"""Notebook 04's experiment: one multi-task configuration trained, scored and recorded, through
the run store (a configuration already trained on the same data is read back, not retrained).

The same function trains every variant (sampling schemes, loss weightings, single-task baselines).
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import replace

import numpy as np
import torch

from ..cache import cached_layer_states
from ..data import TASKS, DataSource, load_task, sample_per_class, stratified_subset
from ..evaluation import task_metrics
from ..results import Recorder, encode_labels, measure
from ..strategy_training import LayerInputs, new_model
from ..training import Source, TrainConfig, Trainer
from .grids import StudySize
from .store import RunStore, backbone_digest, content_digest

LOWER_LAYERS = ("embeddings", "layer.0", "layer.1", "layer.2", "layer.3")


def load_study_data(source: DataSource, size: StudySize, data_seed: int = 0):
    """Training sources, validation sets (carved from training data) and test subsets."""
    sources, val_sets, test_sets = {}, {}, {}
    for task, k in size.train_per_class:
        sources[task] = Source.from_task_data(sample_per_class(load_task(task, "train", source), k, data_seed))
        val_sets[task] = stratified_subset(load_task(task, "val", source), size.val_per_task)
        test_sets[task] = stratified_subset(load_task(task, "test", source), size.test_per_task)
    return sources, val_sets, test_sets


def mean_validation(log: list[dict]) -> float:
    """The best mean validation metric over the run's evaluations."""
    return max(e["mean_metric"] for e in log if e["type"] == "eval")


def run_variant(store: RunStore, recorder: Recorder, strategy: str, config: TrainConfig, sources: list[Source],
                val_sets, test_sets, n_per_class: dict[str, int], keep_log: bool = False, headline: bool = False,
                **extra) -> list[dict]:
    """Train one configuration, score it on the test subsets, add one record per task.

    Only validation scores pick the best checkpoint; the test subsets are scored once, at the end.
    Each record carries ``validation_metric`` (``mean_validation``); ``keep_log``: also the whole
    training log (``training_log``), for the training-curve figure. ``headline``: ``test_sets`` are
    the full test sets, scored through the trained blocks only (``probabilities_above_frozen``),
    and each record keeps every predicted test label (``predictions``) and is marked ``headline``,
    so comparisons are paired on seeds and items (``analysis.paired_items``).
    """
    tasks = config.tasks
    parts = {"config": replace(config, output_dir="temporary"), "backbone": backbone_digest(config.model),
             "train": {s.name: content_digest(s.texts, *s.labels.values()) for s in sources},
             "val": {t: content_digest(val_sets[t].texts, val_sets[t].labels) for t in tasks},
             "test": {t: content_digest(test_sets[t].texts, test_sets[t].labels) for t in tasks},
             "n_per_class": n_per_class, "strategy": strategy, "keep_log": keep_log, "extra": extra,
             **({"scored_on": "full test+predictions, above the frozen blocks"} if headline else {})}

    def compute(rec: Recorder) -> None:
        with tempfile.TemporaryDirectory() as out:
            trainer = Trainer(replace(config, output_dir=out), sources, {t: val_sets[t] for t in tasks})
            trainable = trainer.model.parameter_counts()["trainable"]
            with measure() as cost:
                model, log = trainer.run(resume=False)
        if headline:
            probabilities = {t: probabilities_above_frozen(model, config, test_sets[t], t) for t in tasks}
        else:
            probabilities = {t: model.predict_proba(test_sets[t].texts, batch_size=64)[t] for t in tasks}
        scores = {t: task_metrics(t, test_sets[t], probabilities[t]) for t in tasks}
        logged = {"training_log": log} if keep_log else {}
        for task, m in scores.items():
            kept = ({"predictions": encode_labels(probabilities[task].argmax(1)), "headline": True}
                    if headline else {})
            rec.add(task=task, dataset=TASKS[task].dataset, strategy=strategy, seed=config.seed,
                    n_per_class=n_per_class[task],
                    metric=m["benchmark_metric"], value=m["benchmark_value"], n_test=m["n"],
                    train_seconds=cost.seconds, trainable_params=trainable, peak_memory_mb=cost.peak_memory_mb,
                    macro_f1=m["macro_f1"], accuracy=m["accuracy"], confusion_matrix=m["confusion_matrix"],
                    steps=trainer.state["global_step"], best_step=trainer.state["best_step"],
                    validation_metric=mean_validation(log), train_config=config.to_dict(), **logged, **kept,
                    **extra)
    return store.run(recorder, parts, compute)


@torch.inference_mode()
def probabilities_above_frozen(model, config: TrainConfig, data, task: str,
                               batch_size: int = 64) -> np.ndarray:
    """``task``'s class probabilities on ``data``, running only the blocks above the frozen ones.

    The frozen blocks (``LOWER_LAYERS``) keep their pretrained weights, so their token states are
    computed once per text set with the pretrained encoder and cached on disk
    (``cache.cached_layer_states``); a headline run then scores its full test sets through the
    trained blocks only, about a third of the forward pass. Checked, not assumed: the run's frozen
    weights must equal the pretrained ones."""
    if tuple(config.freeze) != LOWER_LAYERS:
        raise ValueError(f"scoring above the frozen blocks needs freeze={LOWER_LAYERS}, not {config.freeze}")
    pretrained = new_model(0, config.max_seq_length, config.model).encoder
    start, trained = pretrained.state_dict(), model.encoder.state_dict()
    prefixes = ("backbone.embeddings.", *(f"backbone.encoder.{part}." for part in LOWER_LAYERS[1:]))
    frozen = [name for name in start if name.startswith(prefixes)]
    changed = [name for name in frozen if not torch.equal(start[name], trained[name])]
    if not frozen or changed:
        raise RuntimeError(f"frozen weights changed in training ({changed[:1]} of {len(frozen)}); "
                           "score with predict_proba instead")
    layer = len(LOWER_LAYERS) - 1  # the embeddings, then blocks 0..layer-1
    inputs = LayerInputs(cached_layer_states(pretrained, data.texts, layer, show_progress=False), layer)
    model.eval()
    order = np.argsort(-inputs.lengths, kind="stable")
    out = np.empty((len(inputs), len(data.label_names)), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        out[idx] = torch.softmax(inputs.logits(model, idx, task), dim=-1).numpy()
    return out


def base_config(size: StudySize) -> TrainConfig:
    """Notebook 04's base configuration: the top two blocks and the heads train (the lower blocks
    and the embeddings frozen), one epoch, proportional sampling, equal loss weights."""
    return TrainConfig(tasks=("topic", "sentiment"), freeze=LOWER_LAYERS, encoder_lr=1e-4, head_lr=2e-3,
                       epochs=1, batch_size=size.batch_size, max_seq_length=128,
                       eval_every=size.steps_per_eval, early_stopping_patience=None, log_every=1,
                       sampling="proportional", loss_weighting="equal")


# Notebook 04's configurations: each one change to ``base_config`` (its sampling or weighting).
VARIANTS = {
    "round_robin+equal": dict(sampling="round_robin"),
    "proportional+equal": dict(sampling="proportional"),
    "temperature+equal": dict(sampling="temperature", temperature_alpha=0.5),
    "annealed+equal": dict(sampling="annealed", epochs=2),
    "proportional+static": dict(loss_weighting="static", static_weights={"topic": 1.0, "sentiment": 2.0}),
    "proportional+uncertainty": dict(loss_weighting="uncertainty"),
}


def base_steps(config: TrainConfig, sources: dict[str, Source]) -> int:
    """Optimiser steps of one epoch of the base configuration: what a single-task model gets."""
    return sum(int(math.ceil(len(s) / config.batch_size)) for s in sources.values())


def loop_headline_run(store: RunStore, recorder: Recorder, name: str, seed: int, size: StudySize,
                      sources: dict[str, Source], val_sets, test_sets, n_per_class) -> list[dict]:
    """One run of notebook 04's headline grid (``grids.LoopHeadline``): a configuration of
    ``VARIANTS``, or ``single_task_<task>`` given the base configuration's steps, scored on the full
    test sets ``test_sets`` with every prediction kept."""
    base = base_config(size)
    if name.startswith("single_task_"):
        task = name.removeprefix("single_task_")
        config = replace(base, tasks=(task,), seed=seed, steps_per_epoch=base_steps(base, sources))
        return run_variant(store, recorder, name, config, [sources[task]], val_sets, test_sets, n_per_class,
                           headline=True, sampling="single_task", weighting="equal")
    config = replace(base, seed=seed, **VARIANTS[name])
    return run_variant(store, recorder, name, config, list(sources.values()), val_sets, test_sets, n_per_class,
                       headline=True, sampling=config.sampling, weighting=config.loss_weighting)


def full_test_sets(source: DataSource, tasks, cap: int | None) -> dict:
    """The official test sets (``cap``: a profile's limit on test items, None for all of them)."""
    return {t: stratified_subset(load_task(t, "test", source), cap) for t in tasks}
