"""Notebook 04's experiment: one multi-task configuration trained, scored and recorded, through
the run store (a configuration already trained on the same data is read back, not retrained).

The same function trains every variant (sampling schemes, loss weightings, single-task baselines).
"""

from __future__ import annotations

import tempfile
from dataclasses import replace

from ..data import TASKS, DataSource, load_task, sample_per_class, stratified_subset
from ..results import Recorder, measure
from ..training import Source, TrainConfig, Trainer, evaluate
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
                val_sets, test_sets, n_per_class: dict[str, int], keep_log: bool = False, **extra) -> list[dict]:
    """Train one configuration, score it on the test subsets, add one record per task.

    Only validation scores pick the best checkpoint; the test subsets are scored once, at the end.
    Each record carries ``validation_metric`` (``mean_validation``); ``keep_log``: also the whole
    training log (``training_log``), for the training-curve figure.
    """
    tasks = config.tasks
    parts = {"config": replace(config, output_dir="temporary"), "backbone": backbone_digest(config.model),
             "train": {s.name: content_digest(s.texts, *s.labels.values()) for s in sources},
             "val": {t: content_digest(val_sets[t].texts, val_sets[t].labels) for t in tasks},
             "test": {t: content_digest(test_sets[t].texts, test_sets[t].labels) for t in tasks},
             "n_per_class": n_per_class, "strategy": strategy, "keep_log": keep_log, "extra": extra}

    def compute(rec: Recorder) -> None:
        with tempfile.TemporaryDirectory() as out:
            trainer = Trainer(replace(config, output_dir=out), sources, {t: val_sets[t] for t in tasks})
            trainable = trainer.model.parameter_counts()["trainable"]
            with measure() as cost:
                model, log = trainer.run(resume=False)
        scores = evaluate(model, {t: test_sets[t] for t in tasks})
        logged = {"training_log": log} if keep_log else {}
        for task, m in scores.items():
            rec.add(task=task, dataset=TASKS[task].dataset, strategy=strategy, seed=config.seed,
                    n_per_class=n_per_class[task],
                    metric=m["benchmark_metric"], value=m["benchmark_value"], n_test=m["n"],
                    train_seconds=cost.seconds, trainable_params=trainable, peak_memory_mb=cost.peak_memory_mb,
                    macro_f1=m["macro_f1"], accuracy=m["accuracy"], confusion_matrix=m["confusion_matrix"],
                    steps=trainer.state["global_step"], best_step=trainer.state["best_step"],
                    validation_metric=mean_validation(log), train_config=config.to_dict(), **logged, **extra)
    return store.run(recorder, parts, compute)
