"""What each training step reads: the training sources, the task-sampling schemes, and the
length-bucketed batch plan of an epoch, a pure function of (seed, epoch) so that a resumed or
multi-process run takes exactly the batches the uninterrupted single-process run took."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .data import JointLabelData, TaskData

MISSING = -1  # label value meaning "this example has no label for this task"


@dataclass
class Source:
    """One training dataset. ``labels[task][i]`` is ``MISSING`` where text i has no label."""

    name: str
    texts: list[str]
    labels: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.texts)

    @classmethod
    def from_task_data(cls, data: TaskData) -> "Source":
        return cls(data.task, data.texts, {data.task: np.asarray(data.labels)})

    @classmethod
    def from_joint(cls, data: JointLabelData, tasks=None) -> "Source":
        return cls(data.dataset, data.texts, {t: np.asarray(data.labels[t]) for t in (tasks or data.labels)})


def load_training_data(config, source) -> tuple[list[Source], dict[str, TaskData]]:
    """Training sources and validation sets for ``config.tasks`` from a ``DataSource``.

    Validation sets are carved from the training data (``data.load_task``); the test sets are
    never touched here.
    """
    from .data import load_task, sample_per_class, stratified_subset

    sources, val_sets = [], {}
    for task in config.tasks:
        train = load_task(task, "train", source)
        if config.train_per_class is not None:
            train = sample_per_class(train, min(config.train_per_class, min(train.class_counts().values())),
                                     config.data_seed)
        sources.append(Source.from_task_data(train))
        val_sets[task] = stratified_subset(load_task(task, "val", source), config.val_max_per_task)
    return sources, val_sets


def sampling_probabilities(sizes: dict[str, int], scheme: str, alpha: float, epoch: int,
                           epochs: int) -> dict[str, float]:
    """p(source) for the proportional, temperature and annealed schemes.

    ``annealed`` is "BERT and PALs" (Stickland & Murray 2019): alpha = 1 - 0.8 (e - 1)/(E - 1)
    for epoch e = 1..E, from proportional towards uniform.
    """
    if scheme == "proportional":
        alpha = 1.0
    elif scheme == "annealed":
        alpha = 1.0 - 0.8 * (epoch / max(1, epochs - 1))
    elif scheme != "temperature":
        raise ValueError(f"no probabilities for sampling scheme {scheme!r}")
    weights = {name: n ** alpha for name, n in sizes.items()}
    total = sum(weights.values())
    return {name: w / total for name, w in weights.items()}


def length_grouped_batches(lengths: np.ndarray, batch_size: int, bucket_size: int,
                           rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch's batches: shuffle, sort by length inside pools of ``bucket_size`` batches,
    shuffle the batches (Hugging Face's ``group_by_length``). Little padding, yet every batch is
    still a random draw: a pool never spans more than half the epoch, so a small set (a few-shot
    sample of two or three batches) is not cut into the same length-sorted batches every epoch."""
    order = rng.permutation(len(lengths))
    n_batches = math.ceil(len(lengths) / batch_size)
    pool = batch_size * max(1, min(bucket_size, n_batches // 2))
    batches = []
    for start in range(0, len(order), pool):
        chunk = order[start:start + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def epoch_plan(sources: list[Source], lengths: dict[str, np.ndarray], config,
               epoch: int) -> list[tuple[str, np.ndarray]]:
    """The (source, example indices) of every step of an epoch: a pure function of (seed, epoch)."""
    rng = np.random.default_rng([config.seed, epoch])
    queues = {s.name: [] for s in sources}

    def next_batch(name: str) -> np.ndarray:
        if not queues[name]:  # exhausted: a fresh shuffle of that source
            queues[name] = length_grouped_batches(lengths[name], config.batch_size, config.bucket_size, rng)
        return queues[name].pop()

    names = [s.name for s in sources]
    total_batches = sum(math.ceil(len(s) / config.batch_size) for s in sources)
    steps = config.steps_per_epoch or total_batches
    if config.sampling == "round_robin":
        order = [names[i % len(names)] for i in range(steps)]
    else:
        p = sampling_probabilities({s.name: len(s) for s in sources}, config.sampling,
                                   config.temperature_alpha, epoch, config.epochs)
        order = rng.choice(names, size=steps, p=[p[n] for n in names]).tolist()
    return [(name, next_batch(name)) for name in order]
