"""Notebook 04's experiment: one multi-task configuration trained, scored and recorded.

Kept in the package so the notebook reads as a sequence of questions and so the same
function trains every variant (sampling schemes, loss weightings, single-task baselines).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace


from .data import TASKS, DataSource, load_task, sample_per_class, stratified_subset
from .results import Recorder, measure
from .training import Source, TrainConfig, Trainer, evaluate

LOWER_LAYERS = ("embeddings", "layer.0", "layer.1", "layer.2", "layer.3")


@dataclass(frozen=True)
class StudySize:
    """How much data each run of the study sees (training examples are per class)."""

    train_per_class: tuple[tuple[str, int], ...]
    val_per_task: int
    test_per_task: int  # a fixed stratified subset of the official test set, same for every run


STUDY_SIZES = {
    "smoke": StudySize((("topic", 8), ("sentiment", 8)), 32, 64),
    "standard": StudySize((("topic", 256), ("sentiment", 128)), 200, 600),
    "large": StudySize((("topic", 2048), ("sentiment", 2048)), 1000, 4000),
}


def load_study_data(source: DataSource, size: StudySize, data_seed: int = 0):
    """Training sources, validation sets (carved from training data) and test subsets."""
    sources, val_sets, test_sets = {}, {}, {}
    for task, k in size.train_per_class:
        sources[task] = Source.from_task_data(sample_per_class(load_task(task, "train", source), k, data_seed))
        val_sets[task] = stratified_subset(load_task(task, "val", source), size.val_per_task)
        test_sets[task] = stratified_subset(load_task(task, "test", source), size.test_per_task)
    return sources, val_sets, test_sets


def run_variant(recorder: Recorder, strategy: str, config: TrainConfig, sources: list[Source], val_sets,
                test_sets, n_per_class: dict[str, int], show_progress: bool = False, **extra):
    """Train one configuration, score it on the test subsets, add one record per task.

    Only validation scores pick the best checkpoint; the test subsets are scored once, at the end.
    """
    with tempfile.TemporaryDirectory() as out:
        config = replace(config, output_dir=out)
        trainer = Trainer(config, sources, {t: val_sets[t] for t in config.tasks}, show_progress=show_progress)
        trainable = trainer.model.parameter_counts()["trainable"]
        with measure() as cost:
            model, log = trainer.run(resume=False)
    scores = evaluate(model, {t: test_sets[t] for t in config.tasks})
    for task, m in scores.items():
        recorder.add(task=task, dataset=TASKS[task].dataset, strategy=strategy, seed=config.seed,
                     n_per_class=n_per_class[task],
                     metric=m["benchmark_metric"], value=m["benchmark_value"], n_test=m["n"],
                     train_seconds=cost.seconds, trainable_params=trainable, peak_memory_mb=cost.peak_memory_mb,
                     macro_f1=m["macro_f1"], accuracy=m["accuracy"], confusion_matrix=m["confusion_matrix"],
                     steps=trainer.state["global_step"], best_step=trainer.state["best_step"],
                     train_config=config.to_dict(), **extra)
    return model, log, scores


def mean_validation(log: list[dict]) -> float:
    return max(e["mean_metric"] for e in log if e["type"] == "eval")
