"""The freezing study (notebook 03) over the run store: one call per run, dispatched by strategy
kind, computed only when the store lacks it.

A run's key holds everything it reads: the strategy (its dataclass), the task, examples per
class, seed, the few-shot sample's indices, the contents of the training and test sets, the
backbone's weights and the settings of the grid that the run uses (steps, batch, length).
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field, replace

import numpy as np

from ..cache import cached_encode, texts_digest
from ..data import DataSource, TaskData, load_task, stratified_subset
from ..encoder import SentenceEncoder
from ..results import Recorder
from ..strategies import get as get_strategy
from . import finetune_runs, frozen_runs
from .frozen_runs import sample
from .grids import StudyGrid
from .store import NotStored, RunStore, backbone_digest


def data_digest(data: TaskData) -> str:
    """The texts and labels of a split: what a run reads from it."""
    labels = hashlib.sha256(np.ascontiguousarray(data.labels, dtype=np.int64).tobytes()).hexdigest()
    return f"{texts_digest(data.texts)}:{labels}"


@dataclass
class StudyData:
    """The splits, the pretrained encoder and its cached embeddings, loaded once per notebook."""

    grid: StudyGrid
    train: dict[str, TaskData]
    test: dict[str, TaskData]  # what the frozen strategies score (the full official test sets in standard)
    test_subsets: dict[str, TaskData]  # what the encoder-changing strategies score
    val: dict[str, TaskData] = field(default_factory=dict)  # what headline runs choose on
    digests: dict = field(default_factory=dict)
    val_digests: dict = field(default_factory=dict)  # apart from ``digests``: keys of other runs unchanged
    _vectors: dict = field(default_factory=dict)
    _encoder: SentenceEncoder | None = None

    @property
    def encoder(self) -> SentenceEncoder:
        """The pretrained encoder with sentence-transformers' settings, loaded when a run needs it."""
        if self._encoder is None:
            self._encoder = SentenceEncoder.from_pretrained(self.grid.model_name)
        return self._encoder

    def embed(self, split: str, task: str) -> np.ndarray:
        """The pretrained encoder's vectors of ``split`` ("train", "test", "subset"), encoded only
        when a run that needs them is computed (``cache.cached_encode``: read from disk after once)."""
        if (split, task) not in self._vectors:
            sets = {"train": self.train, "test": self.test, "subset": self.test_subsets, "val": self.val}[split]
            self._vectors[split, task] = cached_encode(self.encoder, sets[task].texts, batch_size=64)
        return self._vectors[split, task]

    def embed_all(self, split: str) -> dict[str, np.ndarray]:
        return {t: self.embed(split, t) for t in self.grid.tasks}

    @classmethod
    def load(cls, grid: StudyGrid, profile, source: DataSource) -> "StudyData":
        """The profile caps the pools (smoke: a few dozen items); standard uses whole sets."""
        train = {t: stratified_subset(load_task(t, "train", source), profile.max_train_per_task) for t in grid.tasks}
        test = {t: stratified_subset(load_task(t, "test", source), profile.max_test_per_task) for t in grid.tasks}
        subsets = {t: stratified_subset(test[t], grid.test_subset) for t in grid.tasks}
        val_items = grid.headline.val_items if grid.headline else None
        val = {t: stratified_subset(load_task(t, "val", source), val_items) for t in grid.tasks} if val_items else {}
        data = cls(grid, train, test, subsets, val)
        data.val_digests = {f"val/{t}": data_digest(d) for t, d in val.items()}
        data.digests = {"backbone": backbone_digest(grid.model_name),
                        **{f"{split}/{t}": data_digest(d) for split, sets in
                           (("train", train), ("test", test), ("subset", subsets)) for t, d in sets.items()}}
        return data


def _scored(study: "FreezingStudy", task: str) -> dict:
    """What a frozen strategy scores: the shared test subset and the full test set, as vectors; in
    a headline run, the full test set and the validation subset."""
    d = study.data
    if study.headline:
        return {"test": (d.test[task], d.embed("test", task)), "val": (d.val[task], d.embed("val", task))}
    return {"subset": (d.test_subsets[task], d.embed("subset", task)), "full": (d.test[task], d.embed("test", task))}


def _evaluated(study: "FreezingStudy", task: str | None = None) -> dict:
    """What an encoder-changing strategy is scored on: ``test_subsets`` and, in a headline run,
    the full test sets with ``val`` (validation subsets); ``task``: that task's alone."""
    d = study.data
    sets = {"test_subsets": d.test, "val": d.val} if study.headline else {"test_subsets": d.test_subsets, "val": None}
    if task is None:
        return {"test_subsets" if name == "test_subsets" else "val_sets": v for name, v in sets.items()}
    return {"test": sets["test_subsets"][task], "val": sets["val"][task] if sets["val"] else None}


# A runner per strategy name or kind: (recorder, study, strategy, task, k, seed) -> records.
# A new strategy of an existing kind needs no entry; a new kind needs one line here.
RUNNERS = {
    "majority_class": lambda rec, s, strategy, task, k, seed: frozen_runs.run_majority_class(
        rec, s.data.train[task], _scored(s, task)),
    "zero_shot": lambda rec, s, strategy, task, k, seed: frozen_runs.run_zero_shot(
        rec, s.data.encoder, task, _scored(s, task)),
    "nearest_centroid": lambda rec, s, strategy, task, k, seed: frozen_runs.run_nearest_centroid(
        rec, s.data.train[task], s.data.embed("train", task), _scored(s, task), k, seed),
    "label_prior": lambda rec, s, strategy, task, k, seed: frozen_runs.run_label_prior(
        rec, s.data.encoder, s.data.train[task], s.data.embed("train", task), _scored(s, task), k, seed),
    "self_training": lambda rec, s, strategy, task, k, seed: frozen_runs.run_self_training(
        rec, strategy, s.data.encoder, s.data.train[task], s.data.embed("train", task), _scored(s, task), k, seed),
    "frozen_encoder": lambda rec, s, strategy, task, k, seed: frozen_runs.run_frozen_backbone(
        rec, strategy, s.data.train, s.data.embed_all("train"), {t: _scored(s, t) for t in s.grid.tasks},
        k, seed, s.grid),
    "cached_top_k": lambda rec, s, strategy, task, k, seed: finetune_runs.run_encoder_strategy(
        rec, strategy, s.data.train, k=k, seed=seed, grid=s.grid, **_evaluated(s)),
}
RUNNERS["finetune"] = RUNNERS["cached_top_k"]
RUNNERS["contrastive"] = lambda rec, s, strategy, task, k, seed: finetune_runs.run_anchored_contrastive(
    rec, strategy, s.data.train[task], k=k, seed=seed, grid=s.grid, **_evaluated(s, task))


class FreezingStudy:
    """``run(name, k, seed)`` records one run of the study, from the store when it holds it."""

    PER_TASK = ("no_training", "self_training", "contrastive")  # kinds that train one task at a time
    FROZEN = ("no_training", "self_training", "frozen_encoder")  # scored on the subset and the full test set

    def __init__(self, data: StudyData, recorder: Recorder, store: RunStore | None = None,
                 headline: bool = False):
        self.data, self.recorder, self.store = data, recorder, store or RunStore()
        self.grid = data.grid
        self.headline = headline  # full test sets, validation subsets, every prediction kept

    def headline_runs(self) -> "FreezingStudy":
        """The same study scoring its runs as the headline grid does (``grids.HeadlineGrid``):
        on the full official test sets, keeping every predicted label, and on the validation
        subsets that choices are made on. Their keys differ from the other runs' keys."""
        if not self.grid.headline:
            raise ValueError("this profile's grid declares no headline runs (StudyGrid.headline)")
        return FreezingStudy(self.data, self.recorder, self.store, headline=True)

    def read_headline(self, compute_missing: bool) -> dict:
        """Every run of the headline grid into the recorder, read from the store; the runs it lacks
        are computed when ``compute_missing``, else skipped (the standard grid takes hours on 2
        cores: ``make headline`` computes it apart from the notebook). Says how many it holds."""
        store = copy.copy(self.store)
        store.compute_missing = compute_missing
        study = FreezingStudy(self.data, self.recorder, store, headline=True)
        runs = self.grid.headline.runs()
        held = 0
        for name, k, seed in runs:
            try:
                study.run_any(name, k, seed)
                held += 1
            except NotStored:
                pass
        return {"runs": len(runs), "held": held}

    def _scoring(self) -> dict:
        """What the key records about how a run is scored (nothing for the other runs: their keys
        predate the headline grid)."""
        return {"scored_on": "test+val", "predictions": True, "val": self.data.val_digests} if self.headline else {}

    def _parts(self, runner: str, k, seed: int, **extra) -> dict:
        grid = self.grid
        samples = {t: sample(self.data.train[t], k, seed) for t in grid.tasks} if k is not None else {}
        return {"runner": runner, "k": k, "seed": seed, "samples": samples, "data": self.data.digests,
                "settings": {"batch_size": grid.batch_size, "max_seq_length": grid.max_seq_length,
                             "model_name": grid.model_name}, **extra}

    def _store(self, parts: dict, compute, uses_unlabeled: bool = False) -> list[dict]:
        """The run's records, each saying whether it read unlabeled texts (the strategy's declaration)."""
        records = self.store.run(self.recorder, parts, compute)
        for record in records:
            record["uses_unlabeled"] = uses_unlabeled
        return records

    def run(self, name: str, k: int | None = None, seed: int = 0, task: str | None = None) -> list[dict]:
        """One strategy of ``strategies.py`` at k examples per class (None: all) and one seed; the
        kinds that train one task at a time run for ``task`` (default: every task of the grid)."""
        strategy = get_strategy(name)
        if strategy.contrastive and self.grid.contrastive_steps:  # a profile's shorter budget
            strategy = replace(strategy, contrastive=replace(strategy.contrastive, steps=self.grid.contrastive_steps))
        if strategy.kind in self.PER_TASK and task is None:
            return [r for t in self.grid.tasks for r in self.run(name, k, seed, t)]
        steps = self.grid.steps_for(k) if strategy.kind in ("cached_top_k", "finetune") else None
        scored_on = {"scored_on": "subset+full"} if strategy.kind in self.FROZEN else {}
        parts = self._parts(strategy.kind, k, seed, strategy=strategy, task=task, steps=steps,
                            **{**scored_on, **self._scoring()})
        runner = RUNNERS.get(name) or RUNNERS.get(strategy.kind)
        if runner is None:
            raise ValueError(f"no runner for strategy {name!r} of kind {strategy.kind!r}: add one to RUNNERS")
        compute = lambda rec: runner(rec, self, strategy, task, k, seed)  # noqa: E731
        return self._store(parts, compute, strategy.reads_unlabeled)

    def run_setfit(self, k: int, seed: int, task: str = "topic") -> list[dict]:
        """The peer, on one task's sample and test subset; in a headline run, with the headline
        grid's settings (chosen on validation) on the full test set and the validation subset."""
        d = self.data
        if self.headline:
            steps, rate = dict(self.grid.headline.setfit_steps)[k], self.grid.headline.setfit_learning_rate
            return self._store(self._parts("setfit", k, seed, steps=steps, learning_rate=rate, task=task,
                                           **self._scoring()),
                               lambda rec: finetune_runs.run_setfit(rec, d.train[task], d.test[task], k, seed, steps,
                                                                    self.grid.model_name, rate, d.val[task]))
        steps = dict(self.grid.setfit_steps)[k]
        on_task = {} if task == "topic" else {"task": task}  # topic runs were keyed before SetFit ran other tasks
        return self._store(self._parts("setfit", k, seed, steps=steps, **on_task),
                           lambda rec: finetune_runs.run_setfit(rec, d.train[task], d.test_subsets[task], k,
                                                                seed, steps, self.grid.model_name))

    def run_any(self, name: str, k: int | None, seed: int) -> list[dict]:
        """A strategy of ``strategies.py``, the peer (``setfit``) or one head frozen in sequence
        (``sequential``, at the grid's ``sequential_size`` whatever ``k``), on every task of the grid."""
        if name == "sequential":
            return self.run_sequential(seed)
        if name == "setfit":
            return [r for t in self.grid.tasks for r in self.run_setfit(k, seed, t)]
        return self.run(name, k, seed)

    def run_sequential(self, seed: int) -> list[dict]:
        """Topic first, then sentiment with the topic head frozen (``finetune_runs.run_sequential``)."""
        k, full, lora = self.grid.sequential_size, get_strategy("full_finetune"), get_strategy("lora")
        d = self.data
        tests = d.test if self.headline else d.test_subsets
        return self._store(self._parts("sequential", k, seed, steps=self.grid.steps_for(k) // 2,
                                       strategies=[full, lora], **self._scoring()),
                           lambda rec: finetune_runs.run_sequential(rec, d.train, tests, k, seed, self.grid, full,
                                                                    lora, keep_predictions=self.headline))

    def measure_cache_speedups(self) -> list[dict]:
        """The cache benchmark (``speed.cache_speedups``), stored like a run; its values are
        timings, so a spot check never compares them."""
        from .speed import cache_speedups

        bench = stratified_subset(self.data.train["topic"], self.grid.cache_bench_texts)

        def compute(rec):
            speed = cache_speedups(bench.texts, bench.labels, steps=self.grid.cache_bench_steps,
                                   max_seq_length=self.grid.max_seq_length, model_name=self.grid.model_name)
            for key, target in (("heads_epoch_ratio", 100), ("top2_step_ratio", 2)):
                rec.add(task="cache_benchmark", dataset="ag_news", split="train", strategy=key, metric="speedup",
                        value=speed[key], target=target, **{k: v for k, v in speed.items() if not k.endswith("ratio")})
        parts = self._parts("cache_speedups", None, 0, texts=data_digest(bench), steps=self.grid.cache_bench_steps)
        return self.store.run(self.recorder, parts, compute, check=False)
