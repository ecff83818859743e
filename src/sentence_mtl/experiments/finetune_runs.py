"""Runs of the freezing study that change the encoder: cached top-k, full fine-tuning, gradual
unfreezing, layer-wise decay, LoRA, LP-FT; the peer (SetFit) and our recipe against it (anchored
contrastive); and one head frozen in sequence.

They score a fixed stratified subset of each official test set (``StudyGrid.test_subset``), the
same for every strategy, size and seed.
"""

from __future__ import annotations

import copy
import tempfile
import warnings
from dataclasses import asdict

import numpy as np

from ..cache import cached_layer_states
from ..config import DEFAULT_MODEL
from ..data import TASKS, TaskData
from ..evaluation import benchmark_metric, headline_fields
from ..memory import SavedActivations, training_memory_mb
from ..results import Recorder, encode_labels, measure
from ..strategies import Phase, Strategy
from ..strategy_training import (LayerInputs, TokenInputs, add_lora, new_model, predict, score, train_heads,
                                 train_steps, trainable_parameters)
from .frozen_runs import sample


def run_encoder_strategy(recorder: Recorder, strategy: Strategy, train: dict[str, TaskData],
                         test_subsets: dict[str, TaskData], k: int, seed: int, grid,
                         show_progress: bool = False, val_sets: dict[str, TaskData] | None = None) -> list[dict]:
    """Strategies that change the encoder: cached top-k, full, gradual, layer-wise decay, LoRA, LP-FT.

    ``train_seconds`` is the training itself; for top-k, computing the lower blocks' outputs of
    the sample once is recorded separately as ``cache_seconds`` (zero when already cached). For
    LP-FT it includes encoding the sample and the linear probe (``probe_steps``). With
    ``val_sets`` (a headline run), ``test_subsets`` are the full test sets and each record keeps
    its predictions and the validation metric (``evaluation.headline_fields``)."""
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
        val_inputs = {t: LayerInputs(cached_layer_states(model.encoder, d.texts, layer, show_progress=False), layer)
                      for t, d in (val_sets or {}).items()}
    else:
        tokenizer = model.encoder.tokenizer
        inputs = {t: TokenInputs(tokenizer, texts[t], grid.max_seq_length) for t in train}
        test_inputs = {t: TokenInputs(tokenizer, d.texts, grid.max_seq_length) for t, d in test_subsets.items()}
        val_inputs = {t: TokenInputs(tokenizer, d.texts, grid.max_seq_length) for t, d in (val_sets or {}).items()}
    trainable = trainable_parameters(model, strategy.phases)
    steps = grid.steps_for(k)
    extra = {}
    with measure() as cost:
        if strategy.linear_probe_first:  # the encoder is still the pretrained one: embed once, fit the heads
            embeddings = {t: model.encoder.encode(texts[t], batch_size=64) for t in train}
            _, extra["probe_steps"] = train_heads(model, embeddings, labels, strategy, seed)
        log = train_steps(model, inputs, labels, strategy, steps, grid.batch_size, seed,
                          show_progress=show_progress)
    return record_scores(recorder, strategy.name, model, test_inputs, test_subsets, k, seed, cost, trainable,
                          val=(val_inputs, val_sets) if val_sets else None, steps=steps, cache_seconds=cache_seconds, final_loss=float(np.mean(log.losses[-4:])),
                          strategy_config=asdict(strategy), **extra, **log.memory)


def record_scores(recorder, strategy_name, model, test_inputs, test, k, seed, cost, trainable, val=None,
                  **extra) -> list[dict]:
    """One record per task; ``val`` = (inputs, sets) of a headline run's validation subsets."""
    rows = []
    for task, data in test.items():
        if val:
            (val_inputs, val_sets) = val
            result = headline_fields(data, predict(model, test_inputs[task], task), val_sets[task],
                                     predict(model, val_inputs[task], task))
        else:
            metric, value = score(model, test_inputs[task], data)
            result = {"metric": metric, "value": value, "n_test": len(data)}
        rows.append(recorder.add(task=task, dataset=data.dataset, strategy=strategy_name, seed=seed, n_per_class=k,
                                 **result, train_seconds=cost.seconds,
                                 trainable_params=trainable, peak_memory_mb=cost.peak_memory_mb, **extra))
    return rows


def train_setfit(train: TaskData, k: int, seed: int, max_steps: int, learning_rate: float = 2e-5,
                 model_name: str = DEFAULT_MODEL):
    """SetFit (contrastive fine-tuning of the backbone on pairs from the k-per-class sample, then a
    logistic-regression head), capped at ``max_steps`` pair batches of 16; ``learning_rate`` is the
    body's (SetFit's default 2e-5). Returns the model, the cost, the training memory and the
    number of trainable parameters."""
    import logging

    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments
    from transformers import TrainerCallback

    from ..encoder import resolve_model_path

    logging.getLogger("setfit").setLevel(logging.ERROR)
    # SetFit's data loader asks for pinned memory, which a CPU-only machine cannot give: harmless
    warnings.filterwarnings("ignore", message=".*'pin_memory' argument is set as true.*")
    idx = sample(train, k, seed)
    data = Dataset.from_dict({"text": [train.texts[i] for i in idx], "label": train.labels[idx].tolist()})
    model = SetFitModel.from_pretrained(resolve_model_path(model_name))
    trainable = sum(p.numel() for p in model.model_body.parameters())
    activations = SavedActivations(model.model_body.parameters())

    class OneStepAtATime(TrainerCallback):  # a step's saved tensors are freed by its backward pass
        def on_step_end(self, *args, **kwargs):
            activations.reset()

    with tempfile.TemporaryDirectory() as out:  # SetFit's trainer writes checkpoints there
        rates = {} if learning_rate == 2e-5 else {"body_learning_rate": learning_rate}
        args = TrainingArguments(output_dir=out, batch_size=16, num_epochs=1, max_steps=max_steps, seed=seed,
                                 report_to="none", show_progress_bar=False, **rates)
        trainer = Trainer(model=model, args=args, train_dataset=data, callbacks=[OneStepAtATime()])
        with measure() as cost, activations.recording():
            trainer.train()
    memory = training_memory_mb(activations.peak_bytes, model.model_body.parameters())  # AdamW, as SetFit uses
    trainable += int(model.model_head.coef_.size + model.model_head.intercept_.size)
    return model, cost, memory, trainable


def run_setfit(recorder: Recorder, train: TaskData, test: TaskData, k: int, seed: int, max_steps: int,
               model_name: str = DEFAULT_MODEL, learning_rate: float = 2e-5, val: TaskData | None = None) -> dict:
    """The peer on one task's sample, scored on ``test``; with ``val`` (a headline run) the record
    keeps every predicted test label and the validation metric (``evaluation.headline_fields``)."""
    model, cost, memory, trainable = train_setfit(train, k, seed, max_steps, learning_rate, model_name)
    predict = lambda texts: np.asarray(model.predict(texts, batch_size=64, show_progress_bar=False))  # noqa: E731
    if val is not None:
        result = {**headline_fields(test, predict(test.texts), val, predict(val.texts)),
                  "learning_rate": learning_rate}
    else:
        metric, value = benchmark_metric(test.task, test.labels, predict(test.texts))
        result = {"metric": metric, "value": value, "n_test": len(test)}
    return recorder.add(task=test.task, dataset=test.dataset, strategy="setfit", seed=seed, n_per_class=k,
                        **result, train_seconds=cost.seconds,
                        trainable_params=trainable, peak_memory_mb=cost.peak_memory_mb, steps=max_steps,
                        **memory)


def run_anchored_contrastive(recorder: Recorder, strategy: Strategy, train: TaskData, test: TaskData, k: int,
                             seed: int, grid, val: TaskData | None = None) -> dict:
    """Our recipe against the peer (``anchored_contrastive``): one task, SetFit's setting (the same
    sample, backbone and test subset), the label descriptions as its only extra input. With
    ``strategy.self_training`` (``anchored_self_training``), self-training on the tuned encoder
    follows, reading a pool of unlabeled training texts: a different setting from SetFit's."""
    from ..anchored_contrastive import train_anchored
    from ..encoder import SentenceEncoder
    from ..semi_supervised import label_prior_prototypes, nearest_prototype, self_train, unit, unlabeled_pool

    encoder = SentenceEncoder.from_pretrained(grid.model_name, max_seq_length=grid.max_seq_length)
    idx = sample(train, k, seed)
    texts, labels = [train.texts[i] for i in idx], train.labels[idx]
    descriptions = TASKS[train.task].label_descriptions
    activations = SavedActivations(encoder.parameters())
    extra = {}
    with measure() as cost:
        losses = train_anchored(encoder, texts, labels, descriptions, strategy.contrastive, seed, activations)
        labelled_vectors = encoder.encode(texts, batch_size=64)
        prototypes = label_prior_prototypes(labelled_vectors, labels, encoder.encode(descriptions))
        predict = lambda vectors: nearest_prototype(vectors, prototypes)  # noqa: E731
        if strategy.self_training:
            settings = strategy.self_training
            pool = unlabeled_pool(len(train), idx, settings.unlabeled_pool, seed)
            vectors = np.concatenate([labelled_vectors, encoder.encode([train.texts[i] for i in pool], batch_size=64)])
            classifier, rows, pseudo = self_train(vectors, np.arange(len(idx)), labels, prototypes, settings)
            predict = lambda vectors: classifier.predict(unit(vectors))  # noqa: E731
            gold = np.concatenate([labels, train.labels[pool]])  # hidden from the method: a diagnostic
            extra = {"n_unlabeled": len(pool), "n_pseudo_labelled": len(rows),
                     "pseudo_label_accuracy": float((pseudo == gold[rows]).mean())}
    predictions = predict(encoder.encode(test.texts, batch_size=64))
    if val is not None:  # a headline run
        result = headline_fields(test, predictions, val, predict(encoder.encode(val.texts, batch_size=64)))
    else:
        metric, value = benchmark_metric(test.task, test.labels, predictions)
        result = {"metric": metric, "value": value, "n_test": len(test)}
    return recorder.add(task=test.task, dataset=test.dataset, strategy=strategy.name, seed=seed, n_per_class=k,
                        **result, train_seconds=cost.seconds,
                        trainable_params=sum(p.numel() for p in encoder.parameters()),
                        peak_memory_mb=cost.peak_memory_mb, steps=strategy.contrastive.steps,
                        final_loss=float(np.mean(losses[-4:])), **extra,
                        strategy_config=asdict(strategy),
                        **training_memory_mb(activations.peak_bytes, encoder.parameters()))


SEQUENTIAL_VARIANTS = {
    "sequential_frozen_backbone": ("head.sentiment",),
    "sequential_trainable_backbone": ("head.sentiment", "encoder"),
    "sequential_lora": ("head.sentiment", "lora"),
}


def run_sequential(recorder: Recorder, train: dict[str, TaskData], test_subsets: dict[str, TaskData], k: int,
                   seed: int, grid, full: Strategy, lora: Strategy, keep_predictions: bool = False) -> list[dict]:
    """One head frozen, in sequence: topic first (full fine-tuning), then sentiment is added with
    the topic head frozen and the backbone frozen / trainable / LoRA. Forgetting = topic metric
    after stage 1 minus topic metric after stage 2. ``keep_predictions`` (a headline run, on the
    full test sets): every record keeps its predicted test labels, so forgetting is paired on items."""
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
    topic_predictions = predict(model, test_inputs["topic"], "topic")
    topic_before = benchmark_metric("topic", test_subsets["topic"].labels, topic_predictions)[1]
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
            predicted = predict(stage2, test_inputs[task], task) if value is None else topic_predictions
            metric, measured = benchmark_metric(task, test_subsets[task].labels, predicted)
            kept = {"predictions": encode_labels(predicted), "headline": True} if keep_predictions else {}
            rows.append(recorder.add(task=task, dataset=TASKS[task].dataset, strategy=name, seed=seed, n_per_class=k,
                                     metric=metric, value=measured, n_test=len(test_subsets[task]), stage=stage, **kept,
                                     train_seconds=cost.seconds, peak_memory_mb=cost.peak_memory_mb,
                                     trainable_params=trainable, steps=steps, **log.memory))
    return rows
