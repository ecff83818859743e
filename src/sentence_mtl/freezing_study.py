"""Notebook 03's experiment: every strategy of ``strategies.py`` trained, scored and recorded.

The training loop here is deliberately smaller than ``training.Trainer``: the study needs
phase schedules (gradual unfreezing) and inputs that are cached tensors rather than tokens
(heads on cached embeddings, top-k blocks on cached lower-block outputs), and it does not
need checkpoints, validation or several processes. Both tasks share one encoder and train in
alternating (round-robin) batches; the optimiser groups and layer-wise decay are
``training.parameter_groups``.

Same samples for every strategy: ``data.few_shot_indices(train, k, seed)``. Frozen strategies
score the full official test sets from cached embeddings; strategies that change the encoder
score a fixed stratified subset of them (``StudyGrid.test_subset`` per task), the same for
every strategy, size and seed.
"""

from __future__ import annotations

import copy
import math
import tempfile
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .cache import cached_encode, cached_layer_states
from .config import DEFAULT_MODEL
from .data import TASKS, TaskData, few_shot_indices
from .evaluation import benchmark_metric
from .multitask import MultiTaskModel
from .results import Recorder, measure
from .memory import SavedActivations, training_memory_mb
from .semi_supervised import class_centroids, label_prior_prototypes, self_train, unit
from .strategies import Phase, Strategy

TASK_NAMES = ("topic", "sentiment")


# --------------------------------------------------------------------------- how big a run is


@dataclass(frozen=True)
class StudyGrid:
    """Sizes, seeds and steps of the study in one profile (``GRIDS``)."""

    sizes: tuple[int | None, ...]  # examples per class for the cheap (frozen / cached) strategies
    finetune_sizes: tuple[int, ...]  # sizes at which every encoder-changing strategy runs
    target_sizes: tuple[int, ...]  # extra sizes for full fine-tuning and top-2 (published comparisons)
    seeds: tuple[int, ...]  # seeds above 32 per class, and for the encoder-changing strategies
    small_seeds: tuple[int, ...]  # seeds of the cheap strategies at 32 per class and fewer
    steps: tuple[tuple[int, int], ...]  # (examples per class, optimiser steps), both tasks together
    batch_size: int
    test_subset: int  # test items per task for strategies that change the encoder
    setfit_sizes: tuple[int, ...]
    setfit_steps: tuple[tuple[int, int], ...]  # (examples per class, pair batches of 16)
    sequential_size: int
    max_seq_length: int = 128
    model_name: str = DEFAULT_MODEL

    def seeds_for(self, k: int | None) -> tuple[int, ...]:
        return self.small_seeds if k is not None and k <= 32 else self.seeds

    def steps_for(self, k: int) -> int:
        return dict(self.steps)[k]


GRIDS = {
    "smoke": StudyGrid(sizes=(8,), finetune_sizes=(8,), target_sizes=(), seeds=(0,), small_seeds=(0,),
                       steps=((8, 4),), batch_size=8, test_subset=48, setfit_sizes=(8,), setfit_steps=((8, 2),),
                       sequential_size=8, max_seq_length=64),
    "standard": StudyGrid(sizes=(8, 32, 64, 128, 512, None), finetune_sizes=(8, 32, 128, 512), target_sizes=(64,),
                          seeds=(0, 1, 2), small_seeds=(0, 1, 2, 3, 4),
                          steps=((8, 32), (32, 48), (64, 64), (128, 80), (512, 128)),
                          batch_size=16, test_subset=800, setfit_sizes=(8, 64),
                          setfit_steps=((8, 80), (64, 60)), sequential_size=64),
    "large": StudyGrid(sizes=(8, 32, 64, 128, 512, None), finetune_sizes=(8, 32, 64, 128, 512), target_sizes=(),
                       seeds=(0, 1, 2, 3, 4), small_seeds=(0, 1, 2, 3, 4),
                       steps=((8, 40), (32, 80), (64, 120), (128, 200), (512, 600)),
                       batch_size=16, test_subset=4000, setfit_sizes=(8, 64),
                       setfit_steps=((8, 80), (64, 640)), sequential_size=256),
}


# --------------------------------------------------------------------------- inputs


class TokenInputs:
    """Texts, tokenised once; a batch runs the whole encoder."""

    def __init__(self, tokenizer, texts: list[str], max_length: int):
        self.tokenizer = tokenizer
        self.features = tokenizer(list(texts), truncation=True, max_length=max_length)
        self.lengths = np.array([len(ids) for ids in self.features["input_ids"]])

    def __len__(self) -> int:
        return len(self.lengths)

    def batch(self, idx) -> dict[str, torch.Tensor]:
        """Rows ``idx``, padded to their longest."""
        return self.tokenizer.pad({k: [self.features[k][i] for i in idx] for k in self.features},
                                  return_tensors="pt")

    def logits(self, model: MultiTaskModel, idx, task: str) -> torch.Tensor:
        return model(**self.batch(idx), tasks=[task])[task]


class LayerInputs:
    """Cached outputs of the frozen lower blocks; a batch runs only the blocks above ``layer``."""

    def __init__(self, states, layer: int):
        self.states = states
        self.layer = layer
        self.lengths = states.lengths

    def __len__(self) -> int:
        return len(self.states)

    def logits(self, model: MultiTaskModel, idx, task: str) -> torch.Tensor:
        hidden, mask = self.states.batch(idx)
        return model.heads[task](model.encoder.forward_from_layer(self.layer, hidden, mask))


class EmbeddingInputs:
    """Cached sentence embeddings; a batch runs only the head."""

    def __init__(self, embeddings: np.ndarray):
        self.embeddings = torch.from_numpy(np.ascontiguousarray(embeddings, dtype=np.float32))
        self.lengths = np.ones(len(embeddings), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.embeddings)

    def logits(self, model: MultiTaskModel, idx, task: str) -> torch.Tensor:
        return model.heads[task](self.embeddings[torch.as_tensor(np.asarray(idx))])


# --------------------------------------------------------------------------- the loop


def set_phase(model: MultiTaskModel, phase: Phase) -> None:
    model.freeze("encoder", "heads")
    model.unfreeze(*phase.trainable)


def trainable_parameters(model: MultiTaskModel, phases) -> int:
    """Parameters trained in at least one phase (for gradual unfreezing: all of the last phase)."""
    ids = set()
    for phase in phases:
        set_phase(model, phase)
        ids |= {id(p) for p in model.parameters() if p.requires_grad}
    return sum(p.numel() for p in model.parameters() if id(p) in ids)


@dataclass
class TrainLog:
    losses: list[float]  # one per step
    memory: dict[str, float]  # ``memory.training_memory_mb``: activations, gradients, optimiser state


def train_steps(model: MultiTaskModel, inputs: dict, labels: dict[str, np.ndarray], strategy: Strategy,
                steps: int, batch_size: int, seed: int, phases=None, show_progress: bool = False) -> TrainLog:
    """Round-robin over tasks, one batch per step; AdamW with warm-up and linear decay over all
    phases; the trainable parts switch at phase boundaries. Logs every step's loss and the
    training memory (the largest step's saved activations, counted by ``memory.SavedActivations``)."""
    from transformers import get_linear_schedule_with_warmup

    from .training import LossWeighting, TrainConfig, parameter_groups

    phases = phases or strategy.phases
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    tasks = list(inputs)
    model.freeze("encoder", "heads")
    for phase in phases:  # the optimiser knows every parameter that will ever train
        model.unfreeze(*phase.trainable)
    config = TrainConfig(encoder_lr=strategy.encoder_lr, head_lr=strategy.head_lr,
                         layer_decay=strategy.layer_decay)
    optimizer = torch.optim.AdamW(parameter_groups(model, LossWeighting(tasks), config))
    ever_trainable = [p for p in model.parameters() if p.requires_grad]
    activations = SavedActivations(model.parameters())
    scheduler = get_linear_schedule_with_warmup(optimizer, max(1, int(0.1 * steps)), steps)
    queues = {t: [] for t in tasks}
    boundaries = np.round(np.cumsum([p.share for p in phases]) / sum(p.share for p in phases) * steps).astype(int)
    losses = []
    model.train()
    step = 0
    bar = tqdm(total=steps, desc=strategy.name, disable=not show_progress, leave=False)
    for phase, end in zip(phases, boundaries):
        set_phase(model, phase)
        trainable = [p for p in model.parameters() if p.requires_grad]
        while step < end:
            task = tasks[step % len(tasks)]
            if len(queues[task]) < batch_size:  # epoch over: a fresh shuffle
                queues[task] = queues[task] + rng.permutation(len(inputs[task])).tolist()
            idx, queues[task] = queues[task][:batch_size], queues[task][batch_size:]
            with activations.recording():
                logits = inputs[task].logits(model, idx, task)
                loss = nn.functional.cross_entropy(logits, torch.as_tensor(labels[task][idx]))
            loss.backward()
            nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            step += 1
            bar.update(1)
    bar.close()
    model.eval()
    return TrainLog(losses, training_memory_mb(activations.peak_bytes, ever_trainable, optimizer))


@torch.inference_mode()
def predict(model: MultiTaskModel, inputs, task: str, batch_size: int = 64) -> np.ndarray:
    """Predicted classes, batched by length so each batch pads to its own longest item."""
    model.eval()
    order = np.argsort(-inputs.lengths, kind="stable")
    out = np.empty(len(inputs), dtype=np.int64)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        out[idx] = inputs.logits(model, idx, task).argmax(-1).numpy()
    return out


def score(model: MultiTaskModel, inputs, test: TaskData) -> tuple[str, float]:
    return benchmark_metric(test.task, test.labels, predict(model, inputs, test.task))


# --------------------------------------------------------------------------- model set-up


def new_model(seed: int, max_seq_length: int, model_name: str = DEFAULT_MODEL) -> MultiTaskModel:
    """Both heads on the un-normalised mean-pooled vector (see ``MultiTaskModel``)."""
    return MultiTaskModel.from_encoder_name(model_name, TASK_NAMES, seed=seed, normalize=False,
                                            max_seq_length=max_seq_length).eval()


def add_lora(model: MultiTaskModel, settings) -> MultiTaskModel:
    """Inject LoRA adapters into the backbone in place (peft), B initialised to zero as usual,
    so the model starts exactly where it was."""
    from peft import LoraConfig, inject_adapter_in_model

    config = LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                        target_modules=list(settings.target_modules))
    inject_adapter_in_model(config, model.encoder.backbone)
    return model


# --------------------------------------------------------------------------- runners


def sample(train: TaskData, k: int | None, seed: int) -> np.ndarray:
    return np.arange(len(train)) if k is None else few_shot_indices(train, k, seed)


def description_vectors(encoder, task: str) -> np.ndarray:
    """The embedding of each label's description (``data.TASKS[task].description``), in class order."""
    spec = TASKS[task]
    return encoder.encode([spec.description[name] for name in spec.label_names])


def run_zero_shot(recorder: Recorder, encoder, test: TaskData, test_embeddings: np.ndarray) -> dict:
    """Whole network frozen, no examples: the label whose description is most similar."""
    spec = TASKS[test.task]
    labels = description_vectors(encoder, test.task)
    with measure() as cost:
        predictions = (unit(test_embeddings) @ unit(labels).T).argmax(1)
    metric, value = benchmark_metric(test.task, test.labels, predictions)
    return recorder.add(task=test.task, dataset=spec.dataset, strategy="zero_shot", seed=0, n_per_class=0,
                        metric=metric, value=value, n_test=len(test), train_seconds=cost.seconds,
                        trainable_params=0, peak_memory_mb=cost.peak_memory_mb,
                        label_descriptions=[spec.description[n] for n in spec.label_names])


def run_nearest_centroid(recorder: Recorder, train: TaskData, train_embeddings: np.ndarray, test: TaskData,
                         test_embeddings: np.ndarray, k: int | None, seed: int) -> dict:
    """Whole network frozen: each class is the mean of its examples' unit vectors."""
    idx = sample(train, k, seed)
    with measure() as cost:
        centroids = class_centroids(train_embeddings[idx], train.labels[idx], len(train.label_names))
        predictions = (unit(test_embeddings) @ centroids.T).argmax(1)
    metric, value = benchmark_metric(test.task, test.labels, predictions)
    return recorder.add(task=test.task, dataset=train.dataset, strategy="nearest_centroid", seed=seed,
                        n_per_class=k, metric=metric, value=value, n_test=len(test), n_train=len(idx),
                        train_seconds=cost.seconds, trainable_params=0, peak_memory_mb=cost.peak_memory_mb)


def run_label_prior(recorder: Recorder, encoder, train: TaskData, train_embeddings: np.ndarray, test: TaskData,
                    test_embeddings: np.ndarray, k: int, seed: int) -> dict:
    """Whole network frozen: nearest prototype, each the class's centroid plus its label description."""
    idx = sample(train, k, seed)
    descriptions = description_vectors(encoder, train.task)
    with measure() as cost:
        prototypes = label_prior_prototypes(train_embeddings[idx], train.labels[idx], descriptions)
        predictions = (unit(test_embeddings) @ prototypes.T).argmax(1)
    metric, value = benchmark_metric(test.task, test.labels, predictions)
    return recorder.add(task=test.task, dataset=train.dataset, strategy="label_prior", seed=seed,
                        n_per_class=k, metric=metric, value=value, n_test=len(test), n_train=len(idx),
                        train_seconds=cost.seconds, trainable_params=0, peak_memory_mb=cost.peak_memory_mb)


def run_self_training(recorder: Recorder, strategy: Strategy, encoder, train: TaskData,
                      train_embeddings: np.ndarray, test: TaskData, test_embeddings: np.ndarray, k: int,
                      seed: int, subset: tuple[TaskData, np.ndarray] | None = None) -> dict:
    """Backbone frozen; the rest of the training set, labels hidden, is the unlabeled pool.

    ``pseudo_label_accuracy`` (the last round's pseudo-labels against the hidden gold labels) is
    a diagnostic the method never sees. ``subset`` (test subset, its embeddings): also record
    ``subset_value``, the metric on the items the encoder-changing strategies and SetFit see."""
    idx = sample(train, k, seed)
    descriptions = description_vectors(encoder, train.task)
    with measure() as cost:
        prototypes = label_prior_prototypes(train_embeddings[idx], train.labels[idx], descriptions)
        classifier, rows, pseudo = self_train(train_embeddings, idx, train.labels[idx], prototypes,
                                              strategy.self_training)
        predictions = classifier.predict(unit(test_embeddings))
    metric, value = benchmark_metric(test.task, test.labels, predictions)
    extra = {}
    if subset is not None:
        data, embeddings = subset
        extra = {"subset_value": benchmark_metric(data.task, data.labels, classifier.predict(unit(embeddings)))[1],
                 "n_subset": len(data)}
    return recorder.add(task=test.task, dataset=train.dataset, strategy=strategy.name, seed=seed,
                        n_per_class=k, metric=metric, value=value, n_test=len(test), n_train=len(idx), **extra,
                        n_unlabeled=len(train) - len(idx), n_pseudo_labelled=len(rows),
                        pseudo_label_accuracy=float((pseudo == train.labels[rows]).mean()),
                        train_seconds=cost.seconds,
                        trainable_params=int(classifier.coef_.size + classifier.intercept_.size),
                        peak_memory_mb=cost.peak_memory_mb, strategy_config=asdict(strategy))


def run_frozen_backbone(recorder: Recorder, strategy: Strategy, train: dict[str, TaskData], train_embeddings: dict,
                        test: dict[str, TaskData], test_embeddings: dict, k: int | None, seed: int,
                        grid: StudyGrid) -> list[dict]:
    """Both heads trained on cached sentence embeddings: the encoder never runs during training.

    The heads get several epochs (they are cheap): ``PROBE_STEPS`` or 3 epochs, whichever is more."""
    model = new_model(seed, grid.max_seq_length, grid.model_name)
    idx = {t: sample(train[t], k, seed) for t in train}
    embeddings = {t: train_embeddings[t][idx[t]] for t in train}
    labels = {t: train[t].labels[idx[t]] for t in train}
    with measure() as cost:
        log, steps = train_heads(model, embeddings, labels, strategy, seed)
    return _record_scores(recorder, strategy.name, model, {t: EmbeddingInputs(test_embeddings[t]) for t in test},
                          test, k, seed, cost, trainable_parameters(model, strategy.phases), steps=steps,
                          final_loss=float(np.mean(log.losses[-10:])), **log.memory)


PROBE_STEPS, PROBE_BATCH = 300, 64


def train_heads(model: MultiTaskModel, embeddings: dict[str, np.ndarray], labels: dict[str, np.ndarray],
                strategy: Strategy, seed: int) -> tuple[TrainLog, int]:
    """The heads alone on fixed sentence embeddings: ``PROBE_STEPS`` steps or 3 epochs, whichever is more."""
    steps = max(PROBE_STEPS, 3 * math.ceil(sum(len(e) for e in embeddings.values()) / PROBE_BATCH))
    inputs = {t: EmbeddingInputs(e) for t, e in embeddings.items()}
    return train_steps(model, inputs, labels, strategy, steps, PROBE_BATCH, seed, phases=(Phase(("heads",)),)), steps


def _record_scores(recorder, strategy_name, model, test_inputs, test, k, seed, cost, trainable, **extra) -> list[dict]:
    rows = []
    for task, data in test.items():
        metric, value = score(model, test_inputs[task], data)
        rows.append(recorder.add(task=task, dataset=data.dataset, strategy=strategy_name, seed=seed, n_per_class=k,
                                 metric=metric, value=value, n_test=len(data), train_seconds=cost.seconds,
                                 trainable_params=trainable, peak_memory_mb=cost.peak_memory_mb, **extra))
    return rows


def run_encoder_strategy(recorder: Recorder, strategy: Strategy, train: dict[str, TaskData],
                         test_subsets: dict[str, TaskData], k: int, seed: int, grid: StudyGrid,
                         show_progress: bool = False) -> list[dict]:
    """Strategies that change the encoder: cached top-k, full, gradual, layer-wise decay, LoRA, LP-FT.

    ``train_seconds`` is the training itself; for top-k, computing the lower blocks' outputs of
    the sample once is recorded separately as ``cache_seconds`` (zero when already cached). For
    LP-FT it includes encoding the sample and the linear probe (``probe_steps``)."""
    model = new_model(seed, grid.max_seq_length, grid.model_name)
    if strategy.lora:
        add_lora(model, strategy.lora)
    idx = {t: sample(train[t], k, seed) for t in train}
    texts = {t: [train[t].texts[i] for i in idx[t]] for t in train}
    labels = {t: train[t].labels[idx[t]] for t in train}
    cache_seconds = 0.0
    if strategy.kind == "cached_top_k":
        layer = len(model.encoder_layers()) - strategy.top_k
        with measure() as prep:
            inputs = {t: LayerInputs(cached_layer_states(model.encoder, texts[t], layer, show_progress=False), layer)
                      for t in train}
            test_inputs = {t: LayerInputs(cached_layer_states(model.encoder, d.texts, layer, show_progress=False), layer)
                           for t, d in test_subsets.items()}
        cache_seconds = prep.seconds
    else:
        tokenizer = model.encoder.tokenizer
        inputs = {t: TokenInputs(tokenizer, texts[t], grid.max_seq_length) for t in train}
        test_inputs = {t: TokenInputs(tokenizer, d.texts, grid.max_seq_length) for t, d in test_subsets.items()}
    trainable = trainable_parameters(model, strategy.phases)
    steps = grid.steps_for(k)
    extra = {}
    with measure() as cost:
        if strategy.linear_probe_first:  # the encoder is still the pretrained one: embed once, fit the heads
            embeddings = {t: model.encoder.encode(texts[t], batch_size=64) for t in train}
            _, extra["probe_steps"] = train_heads(model, embeddings, labels, strategy, seed)
        log = train_steps(model, inputs, labels, strategy, steps, grid.batch_size, seed,
                          show_progress=show_progress)
    return _record_scores(recorder, strategy.name, model, test_inputs, test_subsets, k, seed, cost, trainable,
                          steps=steps, cache_seconds=cache_seconds, final_loss=float(np.mean(log.losses[-4:])),
                          strategy_config=asdict(strategy), **extra, **log.memory)


def run_setfit(recorder: Recorder, train: TaskData, test: TaskData, k: int, seed: int, max_steps: int,
               model_name: str = DEFAULT_MODEL) -> dict:
    """The peer: SetFit (contrastive fine-tuning of the same backbone on pairs from the same
    sample, then a logistic-regression head), capped at ``max_steps`` pair batches."""
    import logging

    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments
    from transformers import TrainerCallback

    from .encoder import resolve_model_path

    logging.getLogger("setfit").setLevel(logging.ERROR)
    idx = sample(train, k, seed)
    data = Dataset.from_dict({"text": [train.texts[i] for i in idx], "label": train.labels[idx].tolist()})
    model = SetFitModel.from_pretrained(resolve_model_path(model_name))
    trainable = sum(p.numel() for p in model.model_body.parameters())
    activations = SavedActivations(model.model_body.parameters())

    class OneStepAtATime(TrainerCallback):  # a step's saved tensors are freed by its backward pass
        def on_step_end(self, *args, **kwargs):
            activations.reset()

    with tempfile.TemporaryDirectory() as out:  # SetFit's trainer writes checkpoints there
        args = TrainingArguments(output_dir=out, batch_size=16, num_epochs=1, max_steps=max_steps, seed=seed,
                                 report_to="none", show_progress_bar=False)
        trainer = Trainer(model=model, args=args, train_dataset=data, callbacks=[OneStepAtATime()])
        with measure() as cost, activations.recording():
            trainer.train()
    memory = training_memory_mb(activations.peak_bytes, model.model_body.parameters())  # AdamW, as SetFit uses
    predictions = np.asarray(model.predict(test.texts, batch_size=64, show_progress_bar=False))
    metric, value = benchmark_metric(test.task, test.labels, predictions)
    trainable += int(model.model_head.coef_.size + model.model_head.intercept_.size)
    return recorder.add(task=test.task, dataset=test.dataset, strategy="setfit", seed=seed, n_per_class=k,
                        metric=metric, value=value, n_test=len(test), train_seconds=cost.seconds,
                        trainable_params=trainable, peak_memory_mb=cost.peak_memory_mb, steps=max_steps, **memory)


SEQUENTIAL_VARIANTS = {
    "sequential_frozen_backbone": ("head.sentiment",),
    "sequential_trainable_backbone": ("head.sentiment", "encoder"),
    "sequential_lora": ("head.sentiment", "lora"),
}


def run_sequential(recorder: Recorder, train: dict[str, TaskData], test_subsets: dict[str, TaskData], k: int,
                   seed: int, grid: StudyGrid, full: Strategy, lora: Strategy) -> list[dict]:
    """One head frozen, in sequence: topic first (full fine-tuning), then sentiment is added with
    the topic head frozen and the backbone frozen / trainable / LoRA. Forgetting = topic metric
    after stage 1 minus topic metric after stage 2."""
    steps = grid.steps_for(k) // 2  # one task per stage: the steps of one task in the joint runs
    model = new_model(seed, grid.max_seq_length, grid.model_name)
    tokenizer = model.encoder.tokenizer
    idx = {t: sample(train[t], k, seed) for t in train}
    inputs = {t: TokenInputs(tokenizer, [train[t].texts[i] for i in idx[t]], grid.max_seq_length) for t in train}
    labels = {t: train[t].labels[idx[t]] for t in train}
    test_inputs = {t: TokenInputs(tokenizer, d.texts, grid.max_seq_length) for t, d in test_subsets.items()}
    stage1 = (Phase(("head.topic", "encoder")),)
    trainable1 = trainable_parameters(model, stage1)
    with measure() as cost1:
        log1 = train_steps(model, {"topic": inputs["topic"]}, labels, full, steps, grid.batch_size, seed,
                           phases=stage1)
    _, topic_before = score(model, test_inputs["topic"], test_subsets["topic"])
    rows = []
    for name, trainable_parts in SEQUENTIAL_VARIANTS.items():
        stage2 = copy.deepcopy(model)
        strategy = full
        if "lora" in trainable_parts:
            add_lora(stage2, lora.lora)
            strategy = lora
        phase = Phase(trainable_parts)
        with measure() as cost2:
            log2 = train_steps(stage2, {"sentiment": inputs["sentiment"]}, labels, strategy, steps,
                               grid.batch_size, seed, phases=(phase,))
        trainable2 = trainable_parameters(stage2, (phase,))
        for task, stage, value, cost, trainable, log in (
                ("topic", "after_topic", topic_before, cost1, trainable1, log1),
                ("topic", "after_sentiment", None, cost2, trainable2, log2),
                ("sentiment", "after_sentiment", None, cost2, trainable2, log2)):
            metric, measured = score(stage2, test_inputs[task], test_subsets[task]) if value is None \
                else (TASKS[task].metric, value)
            rows.append(recorder.add(task=task, dataset=TASKS[task].dataset, strategy=name, seed=seed, n_per_class=k,
                                     metric=metric, value=measured, n_test=len(test_subsets[task]), stage=stage,
                                     train_seconds=cost.seconds, peak_memory_mb=cost.peak_memory_mb,
                                     trainable_params=trainable, steps=steps, **log.memory))
    return rows


def duplicate_runs(records: list[dict]) -> list[tuple]:
    """Runs recorded more than once (same task, strategy, size, seed, stage): a grid that
    schedules a run twice would count it as two seeds in every summary."""
    from collections import Counter

    counts = Counter((r["task"], r["strategy"], r["n_per_class"], r["seed"], r.get("stage")) for r in records)
    return [key for key, n in counts.items() if n > 1]


def forgetting(records: list[dict]) -> "pd.DataFrame":
    """Topic metric after stage 1 minus after stage 2, per sequential variant and seed."""
    import pandas as pd

    df = pd.DataFrame([r for r in records if r.get("stage") and r["task"] == "topic"])
    wide = df.pivot_table(index=["strategy", "seed"], columns="stage", values="value").reset_index()
    wide["forgetting"] = wide["after_topic"] - wide["after_sentiment"]
    return wide


# --------------------------------------------------------------------------- what the cache buys


def cache_speedups(texts: list[str], labels: np.ndarray, task: str = "topic", batch_size: int = 16,
                   steps: int = 10, epochs: int = 3, seed: int = 0, max_seq_length: int = 128,
                   model_name: str = DEFAULT_MODEL) -> dict:
    """Two ratios, each against its peer measured here on the same texts and the same loop body:

    1. a heads-only epoch (batch 64, as ``run_frozen_backbone``) on cached embeddings vs the same
       epoch re-encoding the texts first (mean of ``epochs`` epochs);
    2. a training step of the top 2 blocks on cached block-4 outputs vs a full forward/backward
       with blocks 0-3 and the embeddings frozen (median of ``steps`` steps, same batches).

    Also the most any cache of the lower blocks could give for 2: the full step divided by the
    full step minus the lower blocks' own forward (timed alone, in training mode, on the same
    batches), i.e. the ratio if reading the cache cost nothing (``top2_step_ratio_bound``).
    """
    import time

    from .strategies import get

    model = new_model(seed, max_seq_length, model_name)
    n = len(texts)
    y = torch.as_tensor(np.asarray(labels))

    def run_steps(inputs, batches, phase: Phase) -> list[float]:
        set_phase(model, phase)
        return timed_steps(model, inputs, batches, y, task)

    heads = get("frozen_backbone").phases[0]
    epoch = [np.arange(n)[i:i + 64] for i in range(0, n, 64)]
    cached = EmbeddingInputs(cached_encode(model.encoder, texts, show_progress=False))
    run_steps(cached, epoch, heads)  # warm-up
    cached_epoch = float(np.mean([sum(run_steps(cached, epoch, heads)) for _ in range(epochs)]))
    reencode = []
    for _ in range(epochs):
        start = time.perf_counter()
        run_steps(EmbeddingInputs(model.encoder.encode(texts, batch_size=64)), epoch, heads)
        reencode.append(time.perf_counter() - start)
    reencode_epoch = float(np.mean(reencode))

    layer = len(model.encoder_layers()) - 2
    top2 = get("top2_unfrozen").phases[0]
    cached_layers = LayerInputs(cached_layer_states(model.encoder, texts, layer, show_progress=False), layer)
    tokens = TokenInputs(model.encoder.tokenizer, texts, max_seq_length)
    batches = [np.random.default_rng([seed, i]).choice(n, batch_size, replace=False) for i in range(steps + 2)]
    cached_step = float(np.median(run_steps(cached_layers, batches, top2)[2:]))  # 2 warm-up steps
    full_step = float(np.median(run_steps(tokens, batches, top2)[2:]))
    lower_forward = float(np.median(lower_forward_seconds(model, tokens, batches, layer)[2:]))
    return {"n_texts": n, "batch_size": batch_size,
            "heads_epoch_cached_s": cached_epoch, "heads_epoch_reencode_s": reencode_epoch,
            "heads_epoch_ratio": reencode_epoch / cached_epoch,
            "top2_step_cached_s": cached_step, "top2_step_full_forward_s": full_step,
            "top2_step_ratio": full_step / cached_step, "top2_lower_forward_s": lower_forward,
            "top2_step_ratio_bound": full_step / max(full_step - lower_forward, 1e-9)}


def timed_steps(model: MultiTaskModel, inputs, batches, labels: torch.Tensor, task: str) -> list[float]:
    """Seconds of each training step (forward, backward, AdamW update) on ``batches``, training
    whatever is trainable now: the bare step, for timing benchmarks."""
    import time

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    model.train()
    times = []
    for idx in batches:
        start = time.perf_counter()
        loss = nn.functional.cross_entropy(inputs.logits(model, idx, task), labels[idx])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
    return times


@torch.no_grad()
def lower_forward_seconds(model: MultiTaskModel, tokens: TokenInputs, batches, layer: int) -> list[float]:
    """Seconds of collating the token batch, the embeddings and the first ``layer`` blocks alone,
    per batch, in training mode (dropout on, as inside a full training step): the work a cache of
    their outputs removes (without the collation the bound comes out low and can fall below the
    measured ratio)."""
    import time

    model.train()
    times = []
    for idx in batches:
        start = time.perf_counter()
        batch = tokens.batch(idx)
        model.encoder.hidden_states_at(layer, batch["input_ids"], batch["attention_mask"],
                                       batch.get("token_type_ids"))
        times.append(time.perf_counter() - start)
    model.eval()
    return times
